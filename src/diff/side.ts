// One side of a diff: what a bundle (its file or a split bundle's volumes) or a lock holds, in the
// terms a reviewer compares — images, charts, files, tools, blobs and the signer. A bundle is read
// from its metadata only (no blob is hashed): a diff says what changed, `verify` says it is intact.
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.ts';
import type { Digest } from '../core/digest.ts';
import { allBlobs } from '../bundle/format.ts';
import { inspectBundle } from '../bundle/inspect.ts';
import { openBundle } from '../bundle/read.ts';
import { verifySignature } from '../bundle/sign.ts';
import { parseLock, readLock, type Lock, type LockedChartDependency } from '../spec/lock.ts';
import { formatMode } from '../files/artifact.ts';
import type { VerifyingKey } from '../sign/keys.ts';

export interface SideImage {
  reference: string;
  digest: Digest;
  /** `os/arch[/variant]`, sorted. */
  platforms: string[];
  /** Bytes of its unique blobs. */
  size: number;
  /** Signatures, attestations, SBOMs carried for it. */
  referrers: number;
}

export interface SideChart {
  name: string;
  version: string;
  reference: string;
  /** Its OCI manifest in the bundle. */
  digest: Digest;
  size: number;
  /** `name version` of each dependency (nested ones as `parent/name version`), from the lock. */
  dependencies: string[];
}

export interface SideFile {
  name: string;
  digest: Digest;
  size: number;
  mode: string;
  version?: string;
}

export interface SideTool {
  path: string;
  platform: string;
  name: string;
  digest: Digest;
  size: number;
}

/** Who signed: a key given verified it, or only what airlock/signature.json claims. */
export interface SideSigner {
  key: string;
  algorithm: string;
  verified: boolean;
}

export interface DiffSide {
  kind: 'bundle' | 'lock';
  /** The file (a split bundle: the name its volumes share). */
  path: string;
  name: string;
  version: string;
  /** The airlock version that packed it (bundles only). */
  toolVersion?: string;
  /** sha256 of airlock/inventory.json (bundles only): the bundle's identity. */
  inventory?: Digest;
  images: SideImage[];
  charts: SideChart[];
  files: SideFile[];
  tools: SideTool[];
  /** Every blob its images are made of, digest → size (bundles only: a lock lists no blobs). */
  blobs?: Map<string, number>;
  signer?: SideSigner;
}

/** A lock is named by its file name (`airlock.lock`, `*.lock`, `*.yaml`); anything else is a bundle. */
export function isLockPath(path: string): boolean {
  return /(^|[/\\])airlock\.lock$|\.(lock|ya?ml)$/.test(path);
}

export async function loadSide(spec: string | readonly string[], keys: readonly VerifyingKey[]): Promise<DiffSide> {
  if (typeof spec === 'string' && isLockPath(spec)) {
    const abs = resolve(spec);
    return lockSide(abs, (await readLock(abs)).lock);
  }
  return await bundleSide(typeof spec === 'string' ? resolve(spec) : spec.map((p) => resolve(p)), keys);
}

async function bundleSide(spec: string | readonly string[], keys: readonly VerifyingKey[]): Promise<DiffSide> {
  // inspect checks what can be checked of the metadata and refuses a malformed bundle.
  const summary = await inspectBundle(spec);
  const bundle = await openBundle(spec);
  try {
    let signer: SideSigner | undefined;
    if (bundle.signature) {
      const by = keys.find((k) => {
        try {
          verifySignature(bundle, k);
          return true;
        } catch {
          return false;
        }
      });
      signer = by ? { key: by.fingerprint, algorithm: by.algorithm, verified: true } : { key: bundle.signature.info.key, algorithm: bundle.signature.info.algorithm, verified: false };
    }
    const deps = chartDependencies(bundle.lockText, bundle.path);
    return {
      kind: 'bundle',
      path: summary.path,
      name: summary.name,
      version: summary.version,
      toolVersion: summary.toolVersion,
      inventory: summary.inventoryDigest,
      images: summary.images.map((i) => ({ reference: i.reference, digest: i.digest, platforms: [...i.platforms].sort(), size: i.size, referrers: i.referrers.length })),
      charts: summary.charts.map((c) => ({ name: c.name, version: c.version, reference: c.reference, digest: c.digest, size: c.size, dependencies: deps.get(c.reference) ?? [] })),
      files: summary.files.map((f) => ({ name: f.name, digest: f.digest, size: f.size, mode: f.mode, ...(f.version !== undefined ? { version: f.version } : {}) })),
      tools: summary.tools.map((t) => ({ path: t.path, platform: t.platform, name: t.name, digest: t.digest, size: t.size })),
      blobs: new Map(allBlobs(bundle.inventory).map((b) => [b.digest, b.size])),
      ...(signer ? { signer } : {}),
    };
  } finally {
    await bundle.close();
  }
}

/** The dependencies of each chart (by its bundle reference), from the lock the bundle carries. */
export function chartDependencies(lockText: string | undefined, path: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (lockText === undefined || lockText === '') return out;
  let lock: Lock;
  try {
    lock = parseLock(lockText, `${path}: airlock/airlock.lock`);
  } catch {
    // inspect pinned the lock to the inventory; a lock this airlock cannot read only loses the dependencies.
    return out;
  }
  for (const c of lock.charts ?? []) out.set(c.reference, flattenDependencies(c.dependencies));
  return out;
}

export function flattenDependencies(deps: readonly LockedChartDependency[], parent = ''): string[] {
  return deps.flatMap((d) => [`${parent}${d.alias ?? d.name} ${d.version}`, ...flattenDependencies(d.dependencies, `${parent}${d.alias ?? d.name}/`)]);
}

/** A lock as a side: what `pack` would put in the bundle (the reduced index where platforms were cut). */
export function lockSide(path: string, lock: Lock): DiffSide {
  if (!Array.isArray(lock.images)) throw new UsageError(`${path} is not an airlock.lock`, { code: 'LOCK_INVALID' });
  return {
    kind: 'lock',
    path,
    name: lock.name,
    version: lock.version,
    images: lock.images.map((i) => ({
      reference: i.reference,
      digest: i.bundled?.digest ?? i.digest,
      platforms: [...new Set((i.platforms ?? []).map((p) => p.platform))].sort(),
      size: i.totalSize,
      referrers: (i.referrers ?? []).length,
    })),
    charts: (lock.charts ?? []).map((c) => ({ name: c.name, version: c.version, reference: c.reference, digest: c.artifact.digest, size: (c.archive ?? c).size, dependencies: flattenDependencies(c.dependencies) })),
    files: (lock.files ?? []).map((f) => ({ name: f.name, digest: f.digest, size: f.size, mode: formatMode(f.mode), ...(f.version !== undefined ? { version: f.version } : {}) })),
    tools: [],
  };
}
