// airlock.lock: every image of the spec pinned to a digest. Deterministic, sorted YAML that reads
// well in a diff; `pack` trusts only the lock, never a tag.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml, stringify } from 'yaml';
import { NotFoundError, UsageError } from '../core/errors.ts';
import { parseDigest, type Digest } from '../core/digest.ts';
import { formatReference, parseReference } from '../core/reference.ts';
import { formatPlatform } from '../core/platform.ts';
import { API_VERSION, compareStrings, type Spec } from './spec.ts';

export interface LockedPlatform {
  platform: string;
  digest: Digest;
  /** Size of the platform's image manifest. */
  size: number;
}

export interface LockedImage {
  /** The normalised reference from the spec. */
  reference: string;
  /** What the tag points at upstream (an index or a manifest). */
  digest: Digest;
  mediaType: string;
  size: number;
  /** Unique bytes of everything carried for this image (manifests, configs, layers). */
  totalSize: number;
  /** For an index: the children chosen by the spec's platforms (all of them by default). */
  platforms?: LockedPlatform[];
  /**
   * Present when the spec's platforms leave out some of an index's children: the reduced index
   * airlock carries instead (same document with only the chosen manifests). Its digest differs.
   */
  bundled?: { digest: Digest; size: number };
}

export interface Lock {
  name: string;
  version: string;
  platforms: string[] | undefined;
  images: LockedImage[];
}

const HEADER = '# airlock.lock: every image of airlock.yaml pinned to a digest.\n# Written by `airlock lock`; commit it beside airlock.yaml and do not edit it by hand.\n';

/** The lock as text: fixed key order, images sorted by reference. Same lock → same bytes. */
export function formatLock(lock: Lock): string {
  const images = [...lock.images].sort((a, b) => compareStrings(a.reference, b.reference));
  const doc = {
    apiVersion: API_VERSION,
    kind: 'Lock',
    metadata: { name: lock.name, version: lock.version },
    ...(lock.platforms ? { platforms: lock.platforms } : {}),
    images: images.map((i) => ({
      reference: i.reference,
      digest: i.digest,
      mediaType: i.mediaType,
      size: i.size,
      totalSize: i.totalSize,
      ...(i.platforms ? { platforms: i.platforms.map((p) => ({ platform: p.platform, digest: p.digest, size: p.size })) } : {}),
      ...(i.bundled ? { bundled: { digest: i.bundled.digest, size: i.bundled.size } } : {}),
    })),
  };
  return HEADER + stringify(doc, { lineWidth: 0, indent: 2 });
}

export async function readLock(path: string): Promise<{ lock: Lock; text: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`lock file ${path} does not exist`, {
        code: 'LOCK_MISSING',
        hint: 'run `airlock lock` first, or `airlock pack --lock` to lock and pack in one step',
      });
    }
    throw new UsageError(`cannot read lock file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return { lock: parseLock(text, path), text };
}

export function parseLock(text: string, path = 'airlock.lock'): Lock {
  const fail = (msg: string): never => {
    throw new UsageError(`${path}: ${msg}`, { code: 'LOCK_INVALID', hint: 'regenerate it with `airlock lock`' });
  };
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    return fail(`not valid YAML: ${(e as Error).message}`);
  }
  const o = raw as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || o.apiVersion !== API_VERSION || o.kind !== 'Lock') fail(`not an airlock lock (expected apiVersion ${API_VERSION}, kind Lock)`);
  const meta = (o!.metadata ?? {}) as Record<string, unknown>;
  const images = o!.images;
  if (!Array.isArray(images)) return fail('images must be a list');
  const num = (v: unknown, what: string): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(`${what} must be a non-negative integer`));
  const dig = (v: unknown, what: string): Digest => {
    if (typeof v !== 'string') return fail(`${what} must be a digest`);
    try {
      return parseDigest(v, what);
    } catch (e) {
      return fail((e as Error).message);
    }
  };
  return {
    name: String(meta.name ?? ''),
    version: String(meta.version ?? ''),
    platforms: Array.isArray(o!.platforms) ? (o!.platforms as unknown[]).map(String) : undefined,
    images: images.map((i: Record<string, unknown>, n) => {
      const where = `images[${n}]`;
      if (typeof i?.reference !== 'string') return fail(`${where}.reference must be a string`);
      try {
        parseReference(i.reference);
      } catch (e) {
        return fail(`${where}: ${(e as Error).message}`);
      }
      const img: LockedImage = {
        reference: i.reference,
        digest: dig(i.digest, `${where}.digest`),
        mediaType: typeof i.mediaType === 'string' ? i.mediaType : fail(`${where}.mediaType must be a string`),
        size: num(i.size, `${where}.size`),
        totalSize: num(i.totalSize, `${where}.totalSize`),
      };
      if (Array.isArray(i.platforms)) {
        img.platforms = (i.platforms as Record<string, unknown>[]).map((p, k) => ({
          platform: String(p.platform),
          digest: dig(p.digest, `${where}.platforms[${k}].digest`),
          size: num(p.size, `${where}.platforms[${k}].size`),
        }));
      }
      if (i.bundled && typeof i.bundled === 'object') {
        const b = i.bundled as Record<string, unknown>;
        img.bundled = { digest: dig(b.digest, `${where}.bundled.digest`), size: num(b.size, `${where}.bundled.size`) };
      }
      return img;
    }),
  };
}

/** Differences between a spec and its lock, one readable line each; empty when they match. */
export function diffLock(spec: Spec, lock: Lock): string[] {
  const out: string[] = [];
  if (spec.name !== lock.name || spec.version !== lock.version) {
    out.push(`metadata is ${spec.name} ${spec.version} in the spec but ${lock.name} ${lock.version} in the lock`);
  }
  const want = spec.platforms?.map(formatPlatform).join(',') ?? '(all)';
  const have = lock.platforms?.join(',') ?? '(all)';
  if (want !== have) out.push(`platforms are ${want} in the spec but ${have} in the lock`);
  const specRefs = new Set(spec.images.map(formatReference));
  const lockRefs = new Set(lock.images.map((i) => i.reference));
  for (const r of specRefs) if (!lockRefs.has(r)) out.push(`${r} is in the spec but not in the lock`);
  for (const r of lockRefs) if (!specRefs.has(r)) out.push(`${r} is in the lock but no longer in the spec`);
  return out;
}
