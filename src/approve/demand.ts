// What verify, push and serve share for --approved-by: the keys, loaded once (a bad key file is a
// usage error before any work), and the check of one bundle — by its own metadata, so the digest
// approved is the digest of the bundle about to be used.
import { openBundle } from '../bundle/read.ts';
import { locateBundle, type BundleFiles } from '../bundle/volumes.ts';
import { loadVerifyingKey, type VerifyingKey } from '../sign/keys.ts';
import { carriedApprovals, requireApprovals, type CarriedApproval, type VerifiedApproval } from './approval.ts';

export async function loadApprovers(paths: string | readonly string[] | undefined): Promise<VerifyingKey[]> {
  const list = typeof paths === 'string' ? [paths] : (paths ?? []);
  return await Promise.all(list.map((p) => loadVerifyingKey(p)));
}

/** The name a bundle's approvals sit beside: its file, or the name a split bundle's volumes share. */
export function bundleName(files: BundleFiles): string {
  return files.kind === 'file' ? files.path : files.base;
}

export interface DemandedApprovals {
  /** The bundle's inventory digest the approvals were checked against. */
  inventory: string;
  approved: VerifiedApproval[];
  /** For the import history: the approvals verified, and any other found beside the bundle (claims). */
  carried: CarriedApproval[];
}

/** Throw IntegrityError (APPROVAL_MISSING / APPROVAL_INVALID, naming each key) unless every key approved the bundle. */
export async function demandApprovals(spec: string | readonly string[] | BundleFiles, keys: readonly VerifyingKey[], signal?: AbortSignal): Promise<DemandedApprovals> {
  const files = typeof spec === 'object' && 'kind' in spec ? spec : await locateBundle(spec);
  const bundle = await openBundle(files, { signal });
  try {
    const name = bundleName(files);
    const approved = await requireApprovals(name, bundle.inventoryDigest, keys);
    return { inventory: bundle.inventoryDigest, approved, carried: await carriedApprovals(name, bundle.inventoryDigest, approved) };
  } finally {
    await bundle.close();
  }
}
