// airlock.yaml: what the user wants carried. Parsed once into a validated value.
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { NotFoundError, UsageError } from '../core/errors.ts';
import { formatReference, parseReference, type Reference } from '../core/reference.ts';
import { formatPlatform, parsePlatform, type Platform } from '../core/platform.ts';

export const API_VERSION = 'airlock.dev/v1alpha1';

export interface Spec {
  name: string;
  version: string;
  /** Wanted platforms; undefined = every platform an index carries. */
  platforms: Platform[] | undefined;
  /** Normalised references, sorted by their string form, no duplicates. */
  images: Reference[];
}

/** Read and validate airlock.yaml; errors name the file and the offending entry. */
export async function loadSpec(path: string): Promise<Spec> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`spec file ${path} does not exist`, { code: 'SPEC_NOT_FOUND', hint: 'create airlock.yaml (see README) or pass -f FILE' });
    }
    throw new UsageError(`cannot read spec file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseSpec(text, path);
}

export function parseSpec(text: string, path = 'airlock.yaml'): Spec {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new UsageError(`${path}: not valid YAML: ${doc.errors[0]!.message}`, { code: 'SPEC_INVALID' });
  }
  const raw: unknown = doc.toJS();
  const fail = (msg: string): never => {
    throw new UsageError(`${path}: ${msg}`, { code: 'SPEC_INVALID' });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('expected a mapping with apiVersion, kind, metadata and images');
  const o = raw as Record<string, unknown>;
  if (o.apiVersion !== API_VERSION) fail(`apiVersion must be ${API_VERSION}, got ${JSON.stringify(o.apiVersion)}`);
  if (o.kind !== 'Bundle') fail(`kind must be Bundle, got ${JSON.stringify(o.kind)}`);
  const meta = (o.metadata ?? {}) as Record<string, unknown>;
  if (typeof meta !== 'object' || Array.isArray(meta)) fail('metadata must be a mapping {name, version}');
  const name = meta.name;
  if (typeof name !== 'string' || !/^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/.test(name)) {
    fail(`metadata.name must be a lowercase name (letters, digits, . _ -), got ${JSON.stringify(name)}`);
  }
  const version = meta.version === undefined ? '0.0.0' : String(meta.version);

  let platforms: Platform[] | undefined;
  if (o.platforms !== undefined) {
    if (!Array.isArray(o.platforms) || o.platforms.length === 0) fail('platforms must be a non-empty list like [linux/amd64]');
    platforms = (o.platforms as unknown[]).map((p, i) => {
      if (typeof p !== 'string') return fail(`platforms[${i}] must be a string like linux/amd64`);
      try {
        return parsePlatform(p);
      } catch (e) {
        return fail(`platforms[${i}]: ${(e as Error).message}`);
      }
    });
    platforms.sort((a, b) => compareStrings(formatPlatform(a), formatPlatform(b)));
  }

  if (!Array.isArray(o.images) || o.images.length === 0) fail('images must be a non-empty list of image references');
  const seen = new Map<string, string>();
  const images: Reference[] = [];
  (o.images as unknown[]).forEach((entry, i) => {
    if (typeof entry !== 'string') return fail(`images[${i}] must be a string image reference, got ${JSON.stringify(entry)}`);
    let ref: Reference;
    try {
      ref = parseReference(entry);
    } catch (e) {
      return fail(`images[${i}]: ${(e as Error).message}`);
    }
    const key = formatReference(ref);
    const before = seen.get(key);
    if (before !== undefined) return fail(`images[${i}] "${entry}" is the same image as "${before}"`);
    seen.set(key, entry);
    images.push(ref);
  });
  images.sort((a, b) => compareStrings(formatReference(a), formatReference(b)));
  return { name: name as string, version, platforms, images };
}

/** Byte-wise string order: the same on every machine and locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
