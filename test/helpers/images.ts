// Synthetic, valid OCI and Docker images for tests and benchmarks, built without a container
// engine: real ustar layers, gzip-compressed, configs with correct rootfs.diff_ids, manifests,
// indexes and artifacts. Everything is deterministic: the same options give the same digests.
//
//   const app = buildImage({ layers: [{ files: { 'etc/app.conf': 'x=1\n' } }] });
//   const multi = buildIndex([app, buildImage({ layers: [...], platform: 'linux/arm64' })]);
//   await seedRegistry(reg.url, 'team/app', 'v1', multi);
//   await writeOciLayout(dir, [{ refName: 'v1', image: multi }]);
//
// Small blobs live in memory (`bytes`). With `workDir`, layers above FILE_LAYER_THRESHOLD are
// written there (`path`) and streamed when seeded, so hundreds of MiB never sit in memory; such
// layers are cached in workDir by their spec, so building the same spec again is instant.
import { createCipheriv, createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { constants as zlibConstants, crc32, deflateRawSync } from 'node:zlib';
import { request, type Dispatcher } from 'undici';
import { type Digest, digestAlgorithm, digestEncoded, digestOf } from '../../src/core/digest.ts';
import type { Descriptor } from '../../src/core/manifest.ts';
import { MediaType, isIndexMediaType, isManifestMediaType } from '../../src/core/media-types.ts';
import { parsePlatform, type Platform } from '../../src/core/platform.ts';

export interface BlobData {
  descriptor: Descriptor;
  /** The content, for everything held in memory: all manifests and configs, and small layers. */
  bytes?: Buffer;
  /** A file with the content, for large layers built with `workDir` (never read whole). */
  path?: string;
  /** Layers only: sha256 of the uncompressed tar, as listed in the config's rootfs.diff_ids. */
  diffId?: Digest;
}

export interface BuiltImage {
  /** The manifest or index descriptor. */
  root: Descriptor;
  /** Every blob, manifests included, root included; each digest once. */
  blobs: BlobData[];
  /** e.g. ['linux/amd64']; one per child for an index; [] for an artifact. */
  platforms: string[];
}

export interface LayerSpec {
  /** Files by path inside the layer (parent directories are added). Mode 0644, owner root, mtime 0. */
  files?: Record<string, string | Buffer>;
  /**
   * One file of deterministic, incompressible pseudo-random bytes (AES-CTR keystream of the seed),
   * at `path` (default `random/<seed>.bin`). The same seed and size give the same layer digest.
   */
  random?: { bytes: number; seed: number; path?: string };
}

export interface BuildImageOptions {
  layers: LayerSpec[];
  /** `os/arch[/variant]`, default linux/amd64. */
  platform?: string;
  format?: 'oci' | 'docker';
  /** Image labels (config.Labels): an easy way to make otherwise equal images differ. */
  labels?: Record<string, string>;
  /** Layers of another image (see layersOf) placed below `layers`: shared bytes, shared digests. */
  baseLayers?: BlobData[];
  /** Where layers above FILE_LAYER_THRESHOLD are written (and cached by spec) instead of memory. */
  workDir?: string;
}

/** Layers estimated above this many bytes go to `workDir` when one is given. */
export const FILE_LAYER_THRESHOLD = 4 * 1024 * 1024;

const EPOCH = '1970-01-01T00:00:00Z';
const CHUNK = 1024 * 1024;
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);
// A final, empty, fixed-Huffman deflate block: ends a stream of sync-flushed segments.
const DEFLATE_END = Buffer.from([0x03, 0x00]);
const ZEROS = Buffer.alloc(CHUNK);

const FORMATS = {
  oci: { manifest: MediaType.ociManifest, index: MediaType.ociIndex, config: MediaType.ociConfig, layer: MediaType.ociLayerGzip },
  docker: {
    manifest: MediaType.dockerManifest,
    index: MediaType.dockerManifestList,
    config: MediaType.dockerConfig,
    layer: MediaType.dockerLayerGzip,
  },
} as const;

/** One image manifest (+ config + layers) for one platform. */
export function buildImage(opts: BuildImageOptions): BuiltImage {
  const f = FORMATS[opts.format ?? 'oci'];
  const platformText = opts.platform ?? 'linux/amd64';
  const platform = parsePlatform(platformText);
  const layers: BlobData[] = [];
  for (const base of opts.baseLayers ?? []) {
    if (base.diffId === undefined) throw new Error(`baseLayers: blob ${base.descriptor.digest} is not a layer built by buildImage (no diffId)`);
    // Docker and OCI gzip layers are the same bytes under another media type.
    layers.push({ ...base, descriptor: { mediaType: f.layer, digest: base.descriptor.digest, size: base.descriptor.size } });
  }
  for (const spec of opts.layers) layers.push(buildLayer(spec, f.layer, opts.workDir));

  const config = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    created: EPOCH,
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...(opts.labels ? { Labels: opts.labels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: EPOCH, created_by: `airlock synthetic layer ${i}` })),
  };
  const configBlob = jsonBlob(f.config, config);
  const manifest = {
    schemaVersion: 2,
    mediaType: f.manifest,
    config: configBlob.descriptor,
    layers: layers.map((l) => l.descriptor),
  };
  const manifestBlob = jsonBlob(f.manifest, manifest);
  return { root: manifestBlob.descriptor, blobs: dedupe([...layers, configBlob, manifestBlob]), platforms: [platformText] };
}

/** A multi-platform index (OCI) or manifest list (Docker) over images built by buildImage. */
export function buildIndex(images: BuiltImage[], opts: { format?: 'oci' | 'docker' } = {}): BuiltImage {
  const f = FORMATS[opts.format ?? 'oci'];
  const manifests = images.map((img) => {
    const d: Descriptor = { mediaType: img.root.mediaType, digest: img.root.digest, size: img.root.size };
    const only = img.platforms.length === 1 && !isIndexMediaType(img.root.mediaType) ? img.platforms[0] : undefined;
    if (only !== undefined) d.platform = platformObject(parsePlatform(only));
    if (img.root.artifactType !== undefined) d.artifactType = img.root.artifactType;
    return d;
  });
  const indexBlob = jsonBlob(f.index, { schemaVersion: 2, mediaType: f.index, manifests });
  return {
    root: indexBlob.descriptor,
    blobs: dedupe([...images.flatMap((i) => i.blobs), indexBlob]),
    platforms: images.flatMap((i) => i.platforms),
  };
}

/**
 * An OCI 1.1 artifact: an image manifest with `artifactType`, the empty config and one layer per
 * file, each under its own (usually unknown) media type.
 */
export function buildArtifact(opts: {
  artifactType: string;
  files: { mediaType: string; bytes: Buffer; annotations?: Record<string, string> }[];
  /** What it refers to (OCI 1.1 referrers): the manifest's `subject`. */
  subject?: Descriptor;
  /** The manifest's annotations. */
  annotations?: Record<string, string>;
}): BuiltImage {
  const empty = blobOf(MediaType.ociEmpty, Buffer.from('{}'));
  const files = opts.files.map((file) => {
    const b = blobOf(file.mediaType, file.bytes);
    if (file.annotations) b.descriptor.annotations = { ...file.annotations };
    return b;
  });
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: opts.artifactType,
    config: empty.descriptor,
    layers: files.map((b) => b.descriptor),
    ...(opts.subject ? { subject: { mediaType: opts.subject.mediaType, digest: opts.subject.digest, size: opts.subject.size } } : {}),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  const m = jsonBlob(MediaType.ociManifest, manifest);
  m.descriptor.artifactType = opts.artifactType;
  return { root: m.descriptor, blobs: dedupe([empty, ...files, m]), platforms: [] };
}

/** The layer blobs of a single-image BuiltImage in manifest order, e.g. for `baseLayers`. */
export function layersOf(image: BuiltImage): BlobData[] {
  const doc = JSON.parse(blobBytes(findBlob(image, image.root.digest)).toString('utf8')) as { layers?: Descriptor[] };
  if (!Array.isArray(doc.layers)) throw new Error(`layersOf: ${image.root.digest} is an index, not an image manifest`);
  return doc.layers.map((l) => findBlob(image, l.digest));
}

/** The blob with this digest; throws when the image has none. */
export function findBlob(image: BuiltImage, digest: string): BlobData {
  const b = image.blobs.find((x) => x.descriptor.digest === digest);
  if (!b) throw new Error(`no blob ${digest} in image ${image.root.digest}`);
  return b;
}

/** The whole content of a blob (reads the file for a file-backed layer: small blobs only). */
export function blobBytes(blob: BlobData): Buffer {
  if (blob.bytes) return blob.bytes;
  if (blob.path !== undefined) return readFileSync(blob.path);
  throw new Error(`blob ${blob.descriptor.digest} has neither bytes nor path`);
}

/** The content of a blob as a stream (a file stream for file-backed layers). */
export function blobStream(blob: BlobData): Readable {
  if (blob.bytes) return Readable.from([blob.bytes]);
  if (blob.path !== undefined) return createReadStream(blob.path, { highWaterMark: CHUNK });
  throw new Error(`blob ${blob.descriptor.digest} has neither bytes nor path`);
}

export interface SeedOptions {
  /** Basic auth credentials (htpasswd registries). */
  auth?: { username: string; password: string };
  /** Extra headers on every request, e.g. a Bearer token. */
  headers?: Record<string, string>;
  /** An undici dispatcher, e.g. `new Agent({ connect: { ca } })` for a TLS registry with a test CA. */
  dispatcher?: Dispatcher;
  /** Parallel blob uploads (default 4). */
  concurrency?: number;
}

/**
 * Push an image to a registry with plain HTTP requests, independent of airlock's own client: blobs by
 * monolithic upload (POST then PUT ?digest=, skipped when HEAD finds them), child manifests by
 * digest (children before parents), the root manifest by `tag`.
 */
export async function seedRegistry(
  registryUrl: string,
  repository: string,
  tag: string,
  image: BuiltImage,
  opts: SeedOptions = {},
): Promise<void> {
  const base = `${registryUrl.replace(/\/+$/, '')}/v2/${repository}`;
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth) headers.authorization = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`;
  // undici's request() rather than fetch(): with fetch a streamed body runs ahead of the socket
  // (measured: a 300 MiB layer upload peaked at ~430 MiB RSS, ~160 MiB with request()).
  const send = async (url: string, init: { method: 'HEAD' | 'POST' | 'PUT'; headers?: Record<string, string>; body?: Buffer | Readable }) => {
    const res = await request(url, {
      method: init.method,
      headers: { ...headers, ...init.headers },
      ...(init.body === undefined ? {} : { body: init.body }),
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    });
    const text = await res.body.text();
    const location = res.headers.location;
    return { status: res.statusCode, location: Array.isArray(location) ? location[0] : location, text };
  };
  const fail = (what: string, r: { status: number; text: string }): Error =>
    new Error(`seedRegistry ${repository}: ${what} answered HTTP ${r.status}: ${r.text.slice(0, 500)}`);

  const blobs = image.blobs.filter((b) => !isManifestMediaType(b.descriptor.mediaType));
  const pushBlob = async (b: BlobData): Promise<void> => {
    const d = b.descriptor;
    const head = await send(`${base}/blobs/${d.digest}`, { method: 'HEAD' });
    if (head.status === 200) return;
    const start = await send(`${base}/blobs/uploads/`, { method: 'POST' });
    if (start.status !== 202 || start.location === undefined) throw fail(`POST blobs/uploads/ for ${d.digest}`, start);
    const url = new URL(start.location, `${registryUrl.replace(/\/+$/, '')}/`);
    url.searchParams.set('digest', d.digest);
    const put = await send(url.href, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(d.size) },
      body: b.bytes ?? blobStream(b),
    });
    if (put.status !== 201) throw fail(`PUT blob ${d.digest} (${d.size} bytes)`, put);
  };
  const queue = [...blobs];
  const workers = Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 4, queue.length)) }, async () => {
    for (let b = queue.shift(); b !== undefined; b = queue.shift()) await pushBlob(b);
  });
  await Promise.all(workers);

  for (const m of manifestsChildrenFirst(image)) {
    const ref = m.descriptor.digest === image.root.digest ? tag : m.descriptor.digest;
    const put = await send(`${base}/manifests/${ref}`, {
      method: 'PUT',
      headers: { 'content-type': m.descriptor.mediaType },
      body: blobBytes(m),
    });
    if (put.status !== 201) throw fail(`PUT manifest ${m.descriptor.digest} as ${ref}`, put);
  }
}

/**
 * Write images into an OCI image layout (oci-layout, index.json, blobs/<alg>/<hex>), each named by
 * `org.opencontainers.image.ref.name`. An existing layout is added to: entries with the same
 * refName are replaced, blobs already present are kept.
 */
export async function writeOciLayout(
  dir: string,
  images: { refName: string; image: BuiltImage; annotations?: Record<string, string> }[],
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  for (const { image } of images) {
    for (const b of image.blobs) {
      const d = b.descriptor.digest;
      const target = join(dir, 'blobs', digestAlgorithm(d), digestEncoded(d));
      if (await exists(target)) continue;
      await mkdir(join(dir, 'blobs', digestAlgorithm(d)), { recursive: true });
      if (b.bytes) await writeFile(target, b.bytes);
      else if (b.path !== undefined) await copyFile(b.path, target);
      else throw new Error(`blob ${d} has neither bytes nor path`);
    }
  }
  const indexPath = join(dir, 'index.json');
  let manifests: Descriptor[] = [];
  if (await exists(indexPath)) manifests = (JSON.parse(await readFile(indexPath, 'utf8')) as { manifests?: Descriptor[] }).manifests ?? [];
  const names = new Set(images.map((i) => i.refName));
  manifests = manifests.filter((m) => !names.has(m.annotations?.['org.opencontainers.image.ref.name'] ?? ''));
  for (const { refName, image, annotations } of images) {
    manifests.push({ ...image.root, annotations: { ...annotations, 'org.opencontainers.image.ref.name': refName } });
  }
  await writeFile(indexPath, canonicalJson({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
}

// ---------------------------------------------------------------------------------------------
// internals

function platformObject(p: Platform): Platform {
  return p.variant !== undefined ? { architecture: p.architecture, os: p.os, variant: p.variant } : { architecture: p.architecture, os: p.os };
}

function blobOf(mediaType: string, bytes: Buffer): BlobData {
  return { descriptor: { mediaType, digest: digestOf(bytes), size: bytes.length }, bytes };
}

function jsonBlob(mediaType: string, doc: unknown): BlobData {
  return blobOf(mediaType, Buffer.from(canonicalJson(doc)));
}

/** JSON with sorted keys and no whitespace: the same document always gives the same digest. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v === 'object' && v !== null && !Buffer.isBuffer(v)) {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => [k, sortKeys(o[k])]));
  }
  return v;
}

function dedupe(blobs: BlobData[]): BlobData[] {
  const byDigest = new Map<string, BlobData>();
  for (const b of blobs) if (!byDigest.has(b.descriptor.digest)) byDigest.set(b.descriptor.digest, b);
  return [...byDigest.values()];
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Manifest blobs in an order a registry accepts: every manifest after the ones it references. */
function manifestsChildrenFirst(image: BuiltImage): BlobData[] {
  const byDigest = new Map(image.blobs.filter((b) => isManifestMediaType(b.descriptor.mediaType)).map((b) => [b.descriptor.digest as string, b]));
  const out: BlobData[] = [];
  const done = new Set<string>();
  const visit = (digest: string): void => {
    const b = byDigest.get(digest);
    if (!b || done.has(digest)) return;
    done.add(digest);
    const doc = JSON.parse(blobBytes(b).toString('utf8')) as { manifests?: Descriptor[]; subject?: Descriptor };
    for (const child of doc.manifests ?? []) visit(child.digest);
    if (doc.subject) visit(doc.subject.digest);
    out.push(b);
  };
  for (const digest of byDigest.keys()) if (digest !== image.root.digest) visit(digest);
  visit(image.root.digest);
  return out;
}

// --- layers: deterministic ustar, gzip from sync-flushed deflate segments -----------------------

interface Entry {
  path: string;
  kind: 'dir' | 'file' | 'random';
  content?: Buffer;
  size: number;
  seed?: number;
}

function layerEntries(spec: LayerSpec): Entry[] {
  const entries = new Map<string, Entry>();
  const addParents = (path: string): void => {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!entries.has(dir)) entries.set(dir, { path: dir, kind: 'dir', size: 0 });
    }
  };
  for (const [raw, content] of Object.entries(spec.files ?? {})) {
    const path = cleanPath(raw);
    const buf = typeof content === 'string' ? Buffer.from(content) : content;
    addParents(path);
    entries.set(path, { path, kind: 'file', content: buf, size: buf.length });
  }
  if (spec.random) {
    const { bytes, seed } = spec.random;
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new Error(`random.bytes must be a non-negative integer, got ${bytes}`);
    const path = cleanPath(spec.random.path ?? `random/${seed}.bin`);
    addParents(path);
    entries.set(path, { path, kind: 'random', size: bytes, seed });
  }
  // Byte-wise order puts every directory before what it holds (a prefix sorts first).
  return [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function cleanPath(raw: string): string {
  const path = raw.replace(/^(\.?\/)+/, '');
  const parts = path.split('/');
  if (path === '' || parts.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`invalid layer file path "${raw}"`);
  return path;
}

function buildLayer(spec: LayerSpec, mediaType: string, workDir: string | undefined): BlobData {
  const entries = layerEntries(spec);
  const estimate = entries.reduce((n, e) => n + 512 + e.size, 1024);
  if (workDir === undefined || estimate < FILE_LAYER_THRESHOLD) {
    const parts: Buffer[] = [];
    const r = writeLayer(entries, (b) => parts.push(b));
    const bytes = Buffer.concat(parts);
    return { descriptor: { mediaType, digest: r.digest, size: bytes.length }, bytes, diffId: r.diffId };
  }
  mkdirSync(workDir, { recursive: true });
  const key = createHash('sha256').update(specKey(entries)).digest('hex').slice(0, 32);
  const path = join(workDir, `layer-${key}.tar.gz`);
  const metaPath = join(workDir, `layer-${key}.json`);
  if (existsSync(metaPath) && existsSync(path)) {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as { digest: Digest; size: number; diffId: Digest };
    if (statSync(path).size === meta.size) return { descriptor: { mediaType, digest: meta.digest, size: meta.size }, path, diffId: meta.diffId };
  }
  // Temp names and renames keep parallel builders of the same spec (test files run concurrently) apart.
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(tmp, 'w');
  let r: { digest: Digest; diffId: Digest; size: number };
  try {
    r = writeLayer(entries, (b) => {
      for (let off = 0; off < b.length; ) off += writeSync(fd, b, off);
    });
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  writeFileSync(`${tmp}.json`, JSON.stringify({ digest: r.digest, size: r.size, diffId: r.diffId }));
  renameSync(`${tmp}.json`, metaPath);
  return { descriptor: { mediaType, digest: r.digest, size: r.size }, path, diffId: r.diffId };
}

function specKey(entries: Entry[]): string {
  return canonicalJson({
    v: 1,
    entries: entries.map((e) => [e.path, e.kind, e.size, e.seed ?? null, e.content ? digestOf(e.content) : null]),
  });
}

/**
 * Stream a tar of `entries` through gzip into `out`. Deflate runs synchronously on 1 MiB
 * segments, each ended by a sync flush, so segments concatenate into one valid deflate stream
 * (a single gzip member) without holding the layer in memory. Random payloads are stored
 * (level 0): level 1 ends up storing incompressible data too, twenty times slower.
 */
function writeLayer(entries: Entry[], out: (b: Buffer) => void): { digest: Digest; diffId: Digest; size: number } {
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  let crc = 0;
  let isize = 0;
  let size = 0;
  let staged: Buffer[] = [];
  let stagedBytes = 0;
  const emit = (b: Buffer): void => {
    blob.update(b);
    size += b.length;
    out(b);
  };
  const consume = (b: Buffer): void => {
    diff.update(b);
    crc = crc32(b, crc);
    isize += b.length;
  };
  const deflate = (b: Buffer, level: number): Buffer => deflateRawSync(b, { level, finishFlush: zlibConstants.Z_SYNC_FLUSH });
  const flush = (): void => {
    if (stagedBytes === 0) return;
    emit(deflate(Buffer.concat(staged, stagedBytes), 1));
    staged = [];
    stagedBytes = 0;
  };
  const write = (b: Buffer): void => {
    consume(b);
    staged.push(b);
    stagedBytes += b.length;
    if (stagedBytes >= CHUNK) flush();
  };

  emit(GZIP_HEADER);
  for (const e of entries) {
    write(tarHeader(e.path, e.kind === 'dir' ? '5' : '0', e.size, e.kind === 'dir' ? 0o755 : 0o644));
    if (e.kind === 'file' && e.content) write(e.content);
    if (e.kind === 'random') {
      flush();
      const key = createHash('sha256').update(`airlock-test-random/${e.seed}`).digest().subarray(0, 16);
      const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
      for (let left = e.size; left > 0; left -= CHUNK) {
        const piece = cipher.update(ZEROS.subarray(0, Math.min(CHUNK, left)));
        consume(piece);
        emit(deflate(piece, 0));
      }
    }
    const pad = (512 - (e.size % 512)) % 512;
    if (pad > 0) write(Buffer.alloc(pad));
  }
  write(Buffer.alloc(1024));
  flush();
  emit(DEFLATE_END);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(isize % 2 ** 32, 4);
  emit(trailer);
  return { digest: `sha256:${blob.digest('hex')}`, diffId: `sha256:${diff.digest('hex')}`, size };
}

/** A POSIX ustar header; long names are split into prefix/name at a '/'. */
function tarHeader(path: string, type: '0' | '5', size: number, mode: number): Buffer {
  const h = Buffer.alloc(512);
  let name = path;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
    const cut = trimmed.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(path.slice(cut + 1)) > 100 || Buffer.byteLength(trimmed.slice(0, cut)) > 155) {
      throw new Error(`layer file path too long for ustar: ${path}`);
    }
    prefix = trimmed.slice(0, cut);
    name = path.slice(cut + 1);
  }
  if (size >= 8 ** 11) throw new Error(`layer file too large for ustar: ${path}`);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 7), 100, 'ascii');
  h.write(octal(0, 7), 108, 'ascii');
  h.write(octal(0, 7), 116, 'ascii');
  h.write(octal(size, 11), 124, 'ascii');
  h.write(octal(0, 11), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(type, 156, 'ascii');
  h.write('ustar\u000000', 257, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  h.write(octal(0, 7), 329, 'ascii');
  h.write(octal(0, 7), 337, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
  return h;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width, '0')}\u0000`;
}
