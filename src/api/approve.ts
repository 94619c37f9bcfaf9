// approve: a reviewer's signed approval of a bundle, written beside it (BUNDLE.approvals/), never
// into it. `verify`, `push` and `serve` --approved-by demand it on the isolated side.
import { resolve } from 'node:path';
import { throwIfAborted } from '../core/errors.ts';
import { inspectBundle } from '../bundle/inspect.ts';
import { locateBundle } from '../bundle/volumes.ts';
import { checkNote, writeApproval, type ApprovalStatement } from '../approve/approval.ts';
import { bundleName } from '../approve/demand.ts';
import { loadSigningKey, readPassphrase } from '../sign/keys.ts';
import type { BaseOptions } from './options.ts';

export type { ApprovalStatement };
export type { VerifiedApproval, CarriedApproval } from '../approve/approval.ts';

export interface ApproveOptions extends BaseOptions {
  /** The reviewer's private key (a NAME.key from keygen). */
  key: string;
  /** Its passphrase, when it is encrypted. Default: $AIRLOCK_KEY_PASSPHRASE when set. */
  passphrase?: string | undefined;
  /** Why, or the review record it stands on (at most 4096 characters). */
  note?: string | undefined;
}

export interface ApproveReport {
  /** The bundle approved (a split bundle: the name its volumes share). */
  bundle: string;
  /** BUNDLE.approvals/<key hex>.json: the signed statement. */
  file: string;
  /** …json.sig: the raw signature over it. */
  signatureFile: string;
  statement: ApprovalStatement;
}

/**
 * Approve a bundle (its file, or a split bundle's volumes): sign a statement naming its inventory
 * digest, the key, the time and the note, and write it beside the bundle. A malformed bundle is
 * refused (the same checks as inspect); approving again with the same key replaces the approval.
 */
export async function approve(bundle: string | readonly string[], options: ApproveOptions): Promise<ApproveReport> {
  throwIfAborted(options.signal);
  checkNote(options.note);
  const spec = typeof bundle === 'string' ? resolve(bundle) : bundle.map((p) => resolve(p));
  const key = await loadSigningKey(options.key, options.passphrase ?? (await readPassphrase(undefined)));
  const files = await locateBundle(spec);
  const summary = await inspectBundle(spec);
  throwIfAborted(options.signal);
  const name = bundleName(files);
  const w = await writeApproval(name, { name: summary.name, version: summary.version, inventory: summary.inventoryDigest }, key, { note: options.note });
  return { bundle: name, ...w };
}
