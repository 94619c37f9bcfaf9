// What a review report shows, gathered from the bundle: its identity and signer, the images with the
// layers they share, charts, files, tools, every blob with the verifier's verdict, and — when given
// — the diff against the bundle before and the audit's findings. Pure data: html.ts renders it.
import { inspectBundle, type BundleSummary, type BundleSummaryReferrer } from '../bundle/inspect.ts';
import { allBlobs, type InventoryBlob } from '../bundle/format.ts';
import { openBundle } from '../bundle/read.ts';
import { verifyBundle, type VerifyReport } from '../bundle/verify.ts';
import { locateBundle } from '../bundle/volumes.ts';
import { carriedApprovals, type CarriedApproval } from '../approve/approval.ts';
import { bundleName } from '../approve/demand.ts';
import type { BundleDiff } from '../diff/compare.ts';
import { diffBundles } from '../diff/diff.ts';
import { chartDependencies } from '../diff/side.ts';
import type { VerifyingKey } from '../sign/keys.ts';
import { readFindings, type ReportFinding } from './findings.ts';

export interface ReportImage {
  reference: string;
  /** `registry` the image comes from: the group it is listed under. */
  registry: string;
  digest: string;
  platforms: string[];
  size: number;
  /** Bytes of blobs no other image uses. */
  ownBytes: number;
  /** Bytes of blobs other images use too, and how many such blobs. */
  sharedBytes: number;
  sharedBlobs: number;
  /** How many other images share at least one blob with it. */
  sharesWith: number;
  original?: string;
  referrers: BundleSummaryReferrer[];
}

export interface ReportBlob {
  digest: string;
  size: number;
  mediaType: string;
  images: string[];
  /** ok, a problem the verifier found, or relied on from a delta's base (not carried). */
  status: 'ok' | 'bad' | 'relied';
  problem?: string;
}

export interface ReportModel {
  summary: BundleSummary;
  images: ReportImage[];
  charts: (BundleSummary['charts'][number] & { dependencies: string[] })[];
  blobs: ReportBlob[];
  verify: VerifyReport;
  /** Approvals found beside the bundle (BUNDLE.approvals/): claims, `verify --approved-by` checks them. */
  approvals: CarriedApproval[];
  diff?: BundleDiff;
  findings?: ReportFinding[];
  /** The audit file the findings came from. */
  auditFile?: string;
  generated: string;
  toolVersion: string;
}

export interface ReportModelOptions {
  base?: string | readonly string[] | undefined;
  audit?: string | undefined;
  key?: VerifyingKey | undefined;
  signal?: AbortSignal | undefined;
  toolVersion: string;
  now?: Date | undefined;
}

export async function buildReportModel(spec: string | readonly string[], opts: ReportModelOptions): Promise<ReportModel> {
  const findings = opts.audit !== undefined ? await readFindings(opts.audit) : undefined;
  const files = await locateBundle(spec);
  const summary = await inspectBundle(spec);
  const bundle = await openBundle(files, { signal: opts.signal });
  let blobsIn: InventoryBlob[];
  let relied: Set<string>;
  let deps: Map<string, string[]>;
  try {
    blobsIn = allBlobs(bundle.inventory);
    relied = new Set((bundle.inventory.delta?.blobs ?? []).map((b) => b.digest));
    deps = chartDependencies(bundle.lockText, bundle.path);
  } finally {
    await bundle.close();
  }
  const bases = opts.base === undefined ? [] : [opts.base];
  // The verifier checks a delta against its base when that is the base given.
  const verify = await verifyBundle(spec, { signal: opts.signal, key: opts.key, ...(summary.delta && bases.length > 0 ? { base: bases } : {}) });
  const diff = opts.base !== undefined ? await diffBundles(opts.base, spec, { keys: opts.key ? [opts.key] : [], signal: opts.signal }) : undefined;
  const bad = new Map<string, string>();
  for (const p of verify.problems) if (p.digest) bad.set(p.digest, p.message);
  const imageRefs = new Set(summary.images.map((i) => i.reference));
  const usedBy = new Map<string, InventoryBlob[]>();
  for (const b of blobsIn) for (const r of b.images) usedBy.set(r, [...(usedBy.get(r) ?? []), b]);
  const images: ReportImage[] = summary.images.map((i) => {
    let ownBytes = 0;
    let sharedBytes = 0;
    let sharedBlobs = 0;
    const partners = new Set<string>();
    for (const b of usedBy.get(i.reference) ?? []) {
      const others = b.images.filter((r) => r !== i.reference && imageRefs.has(r));
      if (others.length === 0) ownBytes += b.size;
      else {
        sharedBytes += b.size;
        sharedBlobs++;
        for (const o of others) partners.add(o);
      }
    }
    return {
      reference: i.reference,
      registry: registryOf(i.reference),
      digest: i.digest,
      platforms: i.platforms,
      size: i.size,
      ownBytes,
      sharedBytes,
      sharedBlobs,
      sharesWith: partners.size,
      ...(i.original ? { original: i.original } : {}),
      referrers: i.referrers,
    };
  });
  const blobs: ReportBlob[] = blobsIn.map((b) => {
    const problem = bad.get(b.digest);
    return { digest: b.digest, size: b.size, mediaType: b.mediaType, images: b.images, status: problem !== undefined ? 'bad' : relied.has(b.digest) ? 'relied' : 'ok', ...(problem !== undefined ? { problem } : {}) };
  });
  return {
    summary,
    images,
    charts: summary.charts.map((c) => ({ ...c, dependencies: deps.get(c.reference) ?? [] })),
    blobs,
    verify,
    approvals: await carriedApprovals(bundleName(files), summary.inventoryDigest, []),
    ...(diff ? { diff } : {}),
    ...(findings ? { findings, auditFile: opts.audit } : {}),
    generated: (opts.now ?? new Date()).toISOString(),
    toolVersion: opts.toolVersion,
  };
}

function registryOf(reference: string): string {
  const slash = reference.indexOf('/');
  return slash < 0 ? reference : reference.slice(0, slash);
}
