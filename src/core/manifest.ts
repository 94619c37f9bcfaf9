// Manifests and indexes: parsed from their exact bytes (which are never re-serialised), with the
// descriptors they reference. Unknown media types are kept as opaque blobs.
import { IntegrityError, UsageError } from './errors.ts';
import { type Digest, parseDigest } from './digest.ts';
import { MediaType, SCHEMA1_MEDIA_TYPES, isIndexMediaType, isManifestMediaType } from './media-types.ts';
import type { Platform } from './platform.ts';

/** The largest manifest airlock will hold in memory (distribution's own limit is 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
  urls?: string[];
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; value: Index }
  | { kind: 'manifest'; mediaType: string; value: Manifest };

function validateDescriptor(d: unknown, where: string): Descriptor {
  if (typeof d !== 'object' || d === null) throw new IntegrityError(`${where}: descriptor is not an object`, { code: 'MANIFEST_INVALID' });
  const o = d as Record<string, unknown>;
  if (typeof o.mediaType !== 'string') throw new IntegrityError(`${where}: descriptor has no mediaType`, { code: 'MANIFEST_INVALID' });
  if (typeof o.digest !== 'string') throw new IntegrityError(`${where}: descriptor has no digest`, { code: 'MANIFEST_INVALID' });
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw new IntegrityError(`${where}: descriptor ${o.digest} has no valid size`, { code: 'MANIFEST_INVALID' });
  }
  try {
    parseDigest(o.digest, 'descriptor digest');
  } catch (e) {
    throw new IntegrityError(`${where}: ${(e as Error).message}`, { code: 'MANIFEST_INVALID', cause: e });
  }
  return o as unknown as Descriptor;
}

/**
 * Parse manifest bytes. `mediaType` is what the registry or the parent descriptor said; the
 * document's own `mediaType` wins when present. Schema 1 is refused (MANIFEST_SCHEMA1); a document
 * that is neither an index nor an image manifest throws MANIFEST_UNSUPPORTED, so callers that meet
 * unknown media types should treat such content as an opaque blob rather than parse it.
 */
export function parseManifest(bytes: Uint8Array, mediaType: string, what: string): ParsedManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new IntegrityError(`${what}: manifest is ${bytes.byteLength} bytes, more than the ${MAX_MANIFEST_BYTES}-byte limit`, {
      code: 'MANIFEST_TOO_LARGE',
    });
  }
  if (SCHEMA1_MEDIA_TYPES.includes(mediaType)) throw schema1(what);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new IntegrityError(`${what}: manifest is not valid JSON`, { code: 'MANIFEST_INVALID', cause: e });
  }
  if (typeof doc !== 'object' || doc === null) throw new IntegrityError(`${what}: manifest is not a JSON object`, { code: 'MANIFEST_INVALID' });
  const o = doc as Record<string, unknown>;
  if (o.schemaVersion === 1) throw schema1(what);
  if (o.schemaVersion !== 2) throw new IntegrityError(`${what}: unsupported schemaVersion ${String(o.schemaVersion)}`, { code: 'MANIFEST_INVALID' });
  const mt = typeof o.mediaType === 'string' ? o.mediaType : mediaType;

  if (Array.isArray(o.manifests) || isIndexMediaType(mt)) {
    if (!Array.isArray(o.manifests)) throw new IntegrityError(`${what}: index has no manifests list`, { code: 'MANIFEST_INVALID' });
    o.manifests.forEach((d, i) => validateDescriptor(d, `${what} manifests[${i}]`));
    if (o.subject !== undefined) validateDescriptor(o.subject, `${what} subject`);
    return { kind: 'index', mediaType: mt, value: o as unknown as Index };
  }
  if (o.config !== undefined || isManifestMediaType(mt)) {
    validateDescriptor(o.config, `${what} config`);
    if (!Array.isArray(o.layers)) throw new IntegrityError(`${what}: manifest has no layers list`, { code: 'MANIFEST_INVALID' });
    o.layers.forEach((d, i) => validateDescriptor(d, `${what} layers[${i}]`));
    if (o.subject !== undefined) validateDescriptor(o.subject, `${what} subject`);
    return { kind: 'manifest', mediaType: mt, value: o as unknown as Manifest };
  }
  throw new UsageError(`${what}: media type "${mt}" is neither an image manifest nor an index`, { code: 'MANIFEST_UNSUPPORTED' });
}

function schema1(what: string): UsageError {
  return new UsageError(`${what}: Docker image manifest schema 1 is not supported (deprecated since 2017, refused by current registries)`, {
    code: 'MANIFEST_SCHEMA1',
    hint: 'rebuild or re-push the image with a current client so the registry serves schema 2 or OCI',
  });
}

/**
 * The descriptors a manifest points at, in document order: for an index its manifests, for an
 * image its config then layers. `subject` is not a child (it is the thing referred to).
 * Foreign layers with `urls` that are not pushable are still listed; the copier decides.
 */
export function childrenOf(parsed: ParsedManifest): Descriptor[] {
  return parsed.kind === 'index' ? [...parsed.value.manifests] : [parsed.value.config, ...parsed.value.layers];
}

/** Is this descriptor a manifest to be fetched and walked (rather than a plain blob)? */
export function isManifestDescriptor(d: Pick<Descriptor, 'mediaType'>): boolean {
  return isManifestMediaType(d.mediaType);
}

export { MediaType };
