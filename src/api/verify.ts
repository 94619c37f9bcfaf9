// verify: a bundle's every blob, manifest and metadata entry, its volumes, signature and base. A
// damaged bundle is a report ({ ok: false, problems }), never an exception: only misuse throws (no
// such file, a key that is not a public key).
import { basename, resolve } from 'node:path';
import { IntegrityError } from '../core/errors.ts';
import { verifyBundle, type VerifyProblem, type VerifyReport as BundleVerifyReport } from '../bundle/verify.ts';
import { locateBundle } from '../bundle/volumes.ts';
import { loadVerifyingKey } from '../sign/keys.ts';
import { loadApprovers } from '../approve/demand.ts';
import { checkApprovals, type VerifiedApproval } from '../approve/approval.ts';
import { openBundle } from '../bundle/read.ts';
import { sinkOf, type VerifyEvent } from './events.ts';
import type { BaseOptions, EventOptions } from './options.ts';

export type { VerifyProblem };
export type { VerifyDeltaReport, VerifySignatureReport } from '../bundle/verify.ts';
export type { VolumeFileReport, VolumeSetReport } from '../bundle/volume-check.ts';

export interface VerifyOptions extends BaseOptions, EventOptions<VerifyEvent> {
  /**
   * A delta's base bundle (each a .tar file or a split bundle's volumes): it must be the base the
   * delta names and hold every blob the delta relies on. Several for a chain of deltas.
   */
  base?: string | readonly string[] | undefined;
  /** Demand a self-sufficient bundle: a delta fails. */
  complete?: boolean | undefined;
  /** Demand a signature by this public key (a NAME.pub from keygen). */
  key?: string | undefined;
  /**
   * Demand an approval by each of these public keys (REVIEWER.pub), beside the bundle in
   * BUNDLE.approvals/ (`airlock approve`): a missing or bad one is a problem naming the key.
   */
  approvedBy?: string | readonly string[] | undefined;
}

export interface VerifyReport extends BundleVerifyReport {
  /** The bundle verified: its file, or the name its volumes share. */
  bundle: string;
  /** With approvedBy: the approvals that hold (each key's; a failing one is among the problems). */
  approvals?: VerifiedApproval[];
}

/**
 * Verify a bundle: its file, or a split bundle's shared name, any of its volumes, or all of them.
 * Resolves to a report; `ok` is false and `problems` names each bad blob (digest, entry, the images
 * using it) when anything is wrong.
 */
export async function verify(bundle: string | readonly string[], options: VerifyOptions = {}): Promise<VerifyReport> {
  const spec = typeof bundle === 'string' ? resolve(bundle) : bundle.map((p) => resolve(p));
  const key = options.key !== undefined ? await loadVerifyingKey(options.key) : undefined;
  const approvers = await loadApprovers(options.approvedBy);
  const files = await locateBundle(spec);
  const name = files.kind === 'file' ? files.path : files.base;
  const onEvent = sinkOf(options);
  const bases = typeof options.base === 'string' ? [options.base] : (options.base ?? []);
  try {
    const report = await verifyBundle(spec, {
      signal: options.signal,
      base: bases.map((b) => resolve(b)),
      complete: options.complete === true,
      key,
      onProgress: (p) => onEvent({ type: 'progress', done: p.done, total: p.total, ...(p.phase ? { phase: p.phase } : {}) }),
    });
    if (approvers.length === 0) return { bundle: name, ...report };
    return { bundle: name, ...(await withApprovals(report, files, name, approvers, options.signal)) };
  } catch (e) {
    // A tar too damaged to read is a finding about the bundle, like any other.
    if (!(e instanceof IntegrityError) || options.signal?.aborted) throw e;
    return { bundle: name, ok: false, blobs: 0, bytes: 0, problems: [{ entry: basename(name), images: [], message: e.message }] };
  }
}

/** The report with each demanded approval checked against the bundle's inventory: one that fails is a problem naming the key. */
async function withApprovals(
  report: BundleVerifyReport,
  files: Awaited<ReturnType<typeof locateBundle>>,
  name: string,
  approvers: Awaited<ReturnType<typeof loadApprovers>>,
  signal: AbortSignal | undefined,
): Promise<BundleVerifyReport & { approvals: VerifiedApproval[] }> {
  let inventory: string;
  try {
    const bundle = await openBundle(files, { signal });
    inventory = bundle.inventoryDigest;
    await bundle.close();
  } catch (e) {
    // Its problems are reported already; an approval of a bundle that cannot be read counts for nothing.
    if (!(e instanceof IntegrityError) || signal?.aborted) throw e;
    return { ...report, ok: false, problems: [...report.problems, { entry: 'approvals', images: [], message: `not checked: the bundle's inventory cannot be read (${e.message})` }], approvals: [] };
  }
  const { approved, problems } = await checkApprovals(name, inventory, approvers);
  const more: VerifyProblem[] = problems.map((p) => ({ entry: 'approvals', images: [], message: p.message }));
  return { ...report, ok: report.ok && more.length === 0, problems: [...report.problems, ...more], approvals: approved };
}
