// The read-only OCI distribution API as a function from request to response, over a bundle set
// and its catalog of names. No socket here (server.ts binds it), so every answer can be tested
// by calling it. Blob bodies are stream factories over positioned reads of the bundle tars.
//
// Errors follow the distribution spec: a JSON body `{"errors":[{code,message,detail}]}` with
// MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN, NAME_INVALID, DIGEST_INVALID, UNAUTHORIZED,
// UNSUPPORTED, PAGINATION_NUMBER_INVALID (as distribution), plus RANGE_INVALID (416) and
// NOT_FOUND (a path outside the API). Whatever a request holds, the handler answers; it never
// throws (an unexpected failure is a 500 with the cause kept for the log, not sent).
//
// No byte goes out as a complete answer before it was checked against its digest: a manifest is
// hashed before it is sent; a whole blob streams at once but its last chunk waits for the blob's
// check (the adapter cuts the response if it fails); a range, and a small blob, wait for the check
// before any answer. Content found damaged is answered 404 BLOB_UNKNOWN / MANIFEST_UNKNOWN (not
// 5xx): it is as unavailable as a blob distribution lost from its storage, which it answers the
// same way; clients then fail at once instead of retrying bytes that cannot get better, and a
// containerd mirror chain moves on to its next host, which it does on 404 and not on 5xx.
//
// Beside the API: the tools the bundles carry (pack --with-tools), for the other hosts of the
// isolated network to fetch — GET /tools/ lists them, GET /tools/<os>-<arch>/<name> sends one,
// checked against the sha256 its inventory lists like any blob (the last chunk waits for it). And
// the files they carry (`files:`): GET /files/ lists them, GET /files/<name> (the name
// percent-encoded where it must be) sends one — its artifact's layer, a blob, checked like any.
import type { Readable } from 'node:stream';
import { IntegrityError } from '../core/errors.ts';
import { isDigest } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import { MediaType, isManifestMediaType } from '../core/media-types.ts';
import { isValidRepository, isValidTag } from '../core/reference.ts';
import type { BundleSet, FileRange, ManifestInfo, SetFile, SetTool } from './bundle-set.ts';
import type { Catalog, Repository } from './catalog.ts';
import type { BasicAuth } from './htpasswd.ts';
import { parseRange } from './range.ts';

export interface ServeRequest {
  method: string;
  /** The path as received, without the query; not percent-decoded (no valid name needs it). */
  path: string;
  query: URLSearchParams;
  /** Header names in lower case, as node:http gives them. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The client's address, as the socket gives it (for logs and records). */
  remote?: string | undefined;
}

export interface ServeResponse {
  status: number;
  headers: Record<string, string>;
  /** Bytes in memory (manifests, JSON), or a factory for a blob stream of Content-Length bytes. */
  body?: Buffer | (() => Readable) | undefined;
  /**
   * The same blob bytes as `body`, as a positioned range of an open file: an adapter may send
   * them with reusable buffers instead of the stream (fresh buffers per chunk cost page faults
   * and garbage collection at these rates).
   */
  file?: FileRange | undefined;
  /** The authenticated user, for the access log. */
  user?: string | undefined;
  /** An unexpected failure behind a 500, or why content was refused, for the log (never sent to the client). */
  error?: unknown;
}

export type Handler = (req: ServeRequest) => Promise<ServeResponse>;

export interface HandlerOptions {
  set: BundleSet;
  catalog: Catalog;
  /** When set, every request needs valid Basic credentials. */
  auth?: BasicAuth | undefined;
}

export const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' };
const JSON_TYPE = 'application/json; charset=utf-8';
const NAME_MAX = 255;
/**
 * Whole blobs up to this size are checked before the answer starts (a few milliseconds): a
 * mismatch then gets a clean 404 instead of a cut response. Larger ones stream while they are checked.
 */
const CHECK_FIRST_BYTES = 1024 * 1024;
/** What distribution falls back to for a client that cannot take an index. */
const DEFAULT_PLATFORM = { os: 'linux', architecture: 'amd64' };

type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'upload'; name: string }
  | { kind: 'referrers'; name: string; digest: string }
  | { kind: 'tools' }
  | { kind: 'tool'; platform: string; name: string }
  | { kind: 'files' }
  | { kind: 'file'; name: string }
  | { kind: 'unknown' };

export function parseRoute(path: string): Route {
  if (path === '/v2/' || path === '/v2') return { kind: 'base' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  let m = /^\/v2\/(.+)\/tags\/list$/.exec(path);
  if (m) return { kind: 'tags', name: m[1]! };
  m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
  if (m) return { kind: 'manifest', name: m[1]!, reference: m[2]! };
  m = /^\/v2\/(.+)\/blobs\/uploads(?:\/[^/]*)?$/.exec(path);
  if (m) return { kind: 'upload', name: m[1]! };
  m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
  if (m) return { kind: 'blob', name: m[1]!, digest: m[2]! };
  m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(path);
  if (m) return { kind: 'referrers', name: m[1]!, digest: m[2]! };
  if (path === '/tools' || path === '/tools/') return { kind: 'tools' };
  m = /^\/tools\/([a-z0-9]+)-([a-z0-9]+)\/([a-z0-9][a-z0-9._-]*)$/.exec(path);
  if (m) return { kind: 'tool', platform: `${m[1]}/${m[2]}`, name: m[3]! };
  if (path === '/files' || path === '/files/') return { kind: 'files' };
  m = /^\/files\/([^/]{1,1024})$/.exec(path);
  if (m) {
    try {
      return { kind: 'file', name: decodeURIComponent(m[1]!) };
    } catch {
      return { kind: 'unknown' };
    }
  }
  return { kind: 'unknown' };
}

export function ociError(status: number, code: string, message: string, detail?: unknown, headers: Record<string, string> = {}): ServeResponse {
  const body = Buffer.from(JSON.stringify({ errors: [{ code, message, ...(detail === undefined ? {} : { detail }) }] }));
  return { status, headers: { ...API_VERSION, 'content-type': JSON_TYPE, 'content-length': String(body.length), ...headers }, body };
}

function json(value: unknown, headers: Record<string, string> = {}, contentType = JSON_TYPE): ServeResponse {
  const body = Buffer.from(JSON.stringify(value));
  return { status: 200, headers: { ...API_VERSION, 'content-type': contentType, 'content-length': String(body.length), ...headers }, body };
}

export function header(req: ServeRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Media types a client lists in Accept (parameters and q-values dropped). */
export function acceptedTypes(req: ServeRequest): string[] {
  const raw = header(req, 'accept');
  if (raw === undefined) return [];
  return raw
    .split(',')
    .map((s) => s.split(';')[0]!.trim().toLowerCase())
    .filter((s) => s !== '');
}

function etagMatches(req: ServeRequest, digest: string): boolean {
  const v = header(req, 'if-none-match');
  if (v === undefined) return false;
  return v.split(',').some((t) => {
    const s = t.trim().replace(/^W\//, '');
    return s === '*' || s === digest || s === `"${digest}"`;
  });
}

const badName = (name: string): ServeResponse =>
  ociError(400, 'NAME_INVALID', 'invalid repository name', { name: name.slice(0, NAME_MAX), expected: 'lowercase path components joined by /' });
const unknownName = (name: string): ServeResponse => ociError(404, 'NAME_UNKNOWN', 'repository name not known to registry', { name });
const badDigest = (digest: string): ServeResponse =>
  ociError(400, 'DIGEST_INVALID', 'provided digest did not match uploaded content', { digest: digest.slice(0, 200), expected: 'sha256:<64 hex> or sha512:<128 hex>' });

export function createHandler(opts: HandlerOptions): Handler {
  const { set, catalog, auth } = opts;
  const served: Served = { set, catalog };
  return async (req) => {
    let user: string | undefined;
    try {
      const route = parseRoute(req.path);
      if (auth) {
        user = await auth.check(header(req, 'authorization'));
        if (user === undefined) {
          return ociError(401, 'UNAUTHORIZED', 'authentication required', undefined, { 'www-authenticate': 'Basic realm="airlock"' });
        }
      }
      const res = await answer(served, req, route);
      res.user = user;
      return res;
    } catch (e) {
      return { ...ociError(500, 'UNKNOWN', 'internal error while reading the bundle'), user, error: e };
    }
  };
}

/** What the handler serves from: the bundles and their names. */
type Served = Pick<HandlerOptions, 'set' | 'catalog'>;

async function answer(s: Served, req: ServeRequest, route: Route): Promise<ServeResponse> {
  if (route.kind === 'unknown') return ociError(404, 'NOT_FOUND', 'no such endpoint: this is a read-only OCI distribution registry (/v2/)');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return ociError(405, 'UNSUPPORTED', `${req.method} is not supported: airlock serve is read-only (serving bundles)`, undefined, { allow: 'GET, HEAD' });
  }
  switch (route.kind) {
    case 'base':
      return json({});
    case 'catalog':
      return catalogList(s, req);
    case 'tags':
      return tags(s, req, route.name);
    case 'manifest':
      return await manifest(s, req, route.name, route.reference);
    case 'blob':
      return await blob(s, req, route.name, route.digest);
    case 'referrers':
      return referrers(s, req, route.name, route.digest);
    case 'upload':
      return ociError(405, 'UNSUPPORTED', 'uploads are not supported: airlock serve is read-only (serving bundles)', undefined, { allow: 'GET, HEAD' });
    case 'tools':
      return toolList(s);
    case 'tool':
      return await toolDownload(s, req, route.platform, route.name);
    case 'files':
      return fileList(s);
    case 'file':
      return await fileDownload(s, req, route.name);
  }
}

/** Where a file is offered: /files/<name>, percent-encoded. */
function fileUrl(f: SetFile): string {
  return `/files/${encodeURIComponent(f.file.name)}`;
}

function fileList(s: Served): ServeResponse {
  return json({ files: s.set.files().map((f) => ({ name: f.file.name, size: f.file.size, digest: f.file.digest, mode: f.file.mode, url: fileUrl(f) })) });
}

/**
 * One carried file, as a plain download (curl on a node being bootstrapped): its bytes are a blob,
 * checked against its digest before the last byte goes out (small ones before the first), a
 * damaged one never sent whole and refused from then on.
 */
async function fileDownload(s: Served, req: ServeRequest, name: string): Promise<ServeResponse> {
  const { set } = s;
  const f = set.file(name);
  if (!f) {
    const have = set.files().map((x) => x.file.name);
    return ociError(404, 'NOT_FOUND', `no file ${JSON.stringify(name.slice(0, 255))} in the bundles served${have.length > 0 ? `; they carry ${have.join(', ')}` : '; they carry no files (files: in airlock.yaml)'}`);
  }
  const { digest, size } = f.file;
  const refuse = (e: IntegrityError): ServeResponse => ({
    ...ociError(404, 'NOT_FOUND', `the file ${f.file.name} is not served: its bytes in the bundle do not match its sha256`, { name: f.file.name, digest }, { 'cache-control': 'no-store' }),
    error: e,
  });
  const bad = set.blobDamage(digest);
  if (bad) return refuse(bad);
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'content-length': String(size),
    'content-disposition': contentDisposition(f.file.name),
    etag: `"${digest}"`,
    'repr-digest': `sha-256=:${Buffer.from(digest.slice('sha256:'.length), 'hex').toString('base64')}:`,
    // Another bundle served here later may carry other bytes under this name.
    'cache-control': 'no-cache',
  };
  if (etagMatches(req, digest)) return { status: 304, headers: { etag: headers.etag!, 'cache-control': headers['cache-control']! } };
  if (req.method === 'HEAD') return { status: 200, headers };
  if (!set.isVerified(digest) && size <= CHECK_FIRST_BYTES) {
    try {
      await set.verifyBlob(digest);
    } catch (e) {
      if (e instanceof IntegrityError) return refuse(e);
      throw e;
    }
  }
  const verdict = set.isVerified(digest) ? undefined : () => set.verifyBlob(digest);
  return { status: 200, headers, body: () => set.readRange(f, 0, size, verdict), file: set.fileRange(f, 0, size, verdict) };
}

/** `attachment; filename="…"`: a safe name is printable ASCII; quotes and backslashes are escaped. */
function contentDisposition(name: string): string {
  return `attachment; filename="${name.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Where a tool is offered: /tools/linux-amd64/airlock. */
function toolUrl(t: SetTool): string {
  return `/tools/${t.tool.platform.replace('/', '-')}/${t.tool.name}`;
}

function toolList(s: Served): ServeResponse {
  return json({ tools: s.set.tools().map((t) => ({ platform: t.tool.platform, name: t.tool.name, size: t.tool.size, digest: t.tool.digest, url: toolUrl(t) })) });
}

/** One carried tool, as a download: checked against its inventory's sha256 before its last byte goes out. */
async function toolDownload(s: Served, req: ServeRequest, platform: string, name: string): Promise<ServeResponse> {
  const { set } = s;
  const t = set.tool(platform, name);
  if (!t) {
    const have = set.tools().map(toolUrl);
    return ociError(404, 'NOT_FOUND', `no ${name} for ${platform} in the bundles served${have.length > 0 ? `; they carry ${have.join(', ')}` : '; they carry no tools (pack --with-tools)'}`);
  }
  const refuse = (e: IntegrityError): ServeResponse => ({
    ...ociError(404, 'NOT_FOUND', `${t.tool.path} is not served: its bytes in the bundle do not match the sha256 its inventory lists`, { path: t.tool.path, digest: t.tool.digest }, { 'cache-control': 'no-store' }),
    error: e,
  });
  const bad = set.toolDamage(t);
  if (bad) return refuse(bad);
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'content-length': String(t.tool.size),
    'content-disposition': `attachment; filename="${t.tool.name}"`,
    etag: `"${t.tool.digest}"`,
    // RFC 9530: the sha256 of the whole body, for a client that checks what it got.
    'repr-digest': `sha-256=:${Buffer.from(t.tool.digest.slice('sha256:'.length), 'hex').toString('base64')}:`,
    // Another bundle served here later may carry another build under this URL.
    'cache-control': 'no-cache',
  };
  if (etagMatches(req, t.tool.digest)) return { status: 304, headers: { etag: headers.etag!, 'cache-control': headers['cache-control']! } };
  if (req.method === 'HEAD') return { status: 200, headers };
  if (!set.isToolVerified(t) && t.tool.size <= CHECK_FIRST_BYTES) {
    try {
      await set.verifyTool(t);
    } catch (e) {
      if (e instanceof IntegrityError) return refuse(e);
      throw e;
    }
  }
  const verdict = set.isToolVerified(t) ? undefined : () => set.verifyTool(t);
  return { status: 200, headers, body: () => set.readRange(t, 0, t.tool.size, verdict), file: set.fileRange(t, 0, t.tool.size, verdict) };
}

function lookup(s: Served, req: ServeRequest, name: string): Repository | ServeResponse {
  if (name.length > NAME_MAX || !isValidRepository(name)) return badName(name);
  const repo = s.catalog.lookup(name, req.query.get('ns') ?? undefined);
  return repo ?? unknownName(name);
}

async function manifest(s: Served, req: ServeRequest, name: string, reference: string): Promise<ServeResponse> {
  const { set } = s;
  const repo = lookup(s, req, name);
  if (!('tags' in repo)) return repo;
  let info: ManifestInfo | undefined;
  const byTag = !reference.includes(':');
  if (!byTag) {
    if (!isDigest(reference)) return badDigest(reference);
    info = repo.digests.has(reference) ? set.manifest(reference) : undefined;
  } else {
    const img = isValidTag(reference) ? repo.tags.get(reference) : undefined;
    // A reduced index's tag answers with the upstream index, as upstream does: clients pick their platform from it.
    info = img ? set.manifest((img.original ?? img.root).digest) : undefined;
  }
  if (!info) return ociError(404, 'MANIFEST_UNKNOWN', 'manifest unknown', { name, reference: reference.slice(0, 200) });

  const chosen = negotiate(info, acceptedTypes(req), byTag, (d) => (repo.digests.has(d) ? set.manifest(d) : undefined));
  if (chosen === undefined) {
    return ociError(404, 'MANIFEST_UNKNOWN', `${name}:${reference} is an index (${info.mediaType}) and the Accept header takes neither it nor its ${DEFAULT_PLATFORM.os}/${DEFAULT_PLATFORM.architecture} manifest`, {
      name,
      reference,
      mediaType: info.mediaType,
    });
  }
  const headers: Record<string, string> = {
    ...API_VERSION,
    'content-type': chosen.mediaType,
    'content-length': String(chosen.size),
    'docker-content-digest': chosen.digest,
    etag: `"${chosen.digest}"`,
  };
  if (etagMatches(req, chosen.digest)) return { status: 304, headers: { ...API_VERSION, 'docker-content-digest': chosen.digest, etag: `"${chosen.digest}"` } };
  let body: Buffer;
  try {
    // Read (and hashed) for HEAD too: a HEAD must not promise what a GET would refuse.
    body = await set.readManifest(chosen.digest);
  } catch (e) {
    if (e instanceof IntegrityError) return damaged('MANIFEST_UNKNOWN', 'manifest', name, chosen.digest, e);
    throw e;
  }
  if (req.method === 'HEAD') return { status: 200, headers };
  return { status: 200, headers, body };
}

/** Content whose bytes in the bundle do not match its digest: refused as unknown (see the top). */
function damaged(code: 'BLOB_UNKNOWN' | 'MANIFEST_UNKNOWN', what: string, name: string, digest: string, e: IntegrityError): ServeResponse {
  return {
    ...ociError(404, code, `${what} unknown to registry: its bytes in the bundle do not match its digest, so it is not served`, { name, digest }, { 'cache-control': 'no-store' }),
    error: e,
  };
}

async function blob(s: Served, req: ServeRequest, name: string, digest: string): Promise<ServeResponse> {
  const { set } = s;
  const repo = lookup(s, req, name);
  if (!('tags' in repo)) return repo;
  if (!isDigest(digest)) return badDigest(digest);
  const loc = repo.digests.has(digest) ? set.locate(digest) : undefined;
  if (!loc) return ociError(404, 'BLOB_UNKNOWN', 'blob unknown to registry', { name, digest });
  const bad = set.blobDamage(digest);
  if (bad) return damaged('BLOB_UNKNOWN', 'blob', name, digest, bad);
  const size = loc.entry.size;
  const base: Record<string, string> = {
    ...API_VERSION,
    'docker-content-digest': digest,
    etag: `"${digest}"`,
    'accept-ranges': 'bytes',
    // Content-addressed: the bytes under this URL never change.
    'cache-control': 'max-age=31536000',
  };
  if (etagMatches(req, digest)) return { status: 304, headers: base };
  const ifRange = header(req, 'if-range');
  const range = ifRange !== undefined && ifRange.trim() !== `"${digest}"` ? ({ kind: 'none' } as const) : parseRange(header(req, 'range'), size);
  if (range.kind === 'unsatisfiable') {
    return ociError(416, 'RANGE_INVALID', 'requested range not satisfiable', { range: header(req, 'range')?.slice(0, 200), size }, { 'content-range': `bytes */${size}` });
  }
  const start = range.kind === 'range' ? range.start : 0;
  const length = range.kind === 'range' ? range.end - range.start + 1 : size;
  const headers: Record<string, string> = { ...base, 'content-type': 'application/octet-stream', 'content-length': String(length) };
  if (range.kind === 'range') headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`;
  const status = range.kind === 'range' ? 206 : 200;
  if (req.method === 'HEAD') return { status, headers };
  if (!set.isVerified(digest) && (range.kind === 'range' || size <= CHECK_FIRST_BYTES)) {
    // A range may end before the blob does, so nothing could be held back: the whole blob first.
    try {
      await set.verifyBlob(digest);
    } catch (e) {
      if (e instanceof IntegrityError) return damaged('BLOB_UNKNOWN', 'blob', name, digest, e);
      throw e;
    }
  }
  const verdict = set.isVerified(digest) ? undefined : () => set.verifyBlob(digest);
  return { status, headers, body: () => set.readRange(loc, start, length, verdict), file: set.fileRange(loc, start, length, verdict) };
}

function tags(s: Served, req: ServeRequest, name: string): ServeResponse {
  const repo = lookup(s, req, name);
  if (!('tags' in repo)) return repo;
  const all = [...repo.tags.keys()].sort();
  const ns = req.query.get('ns');
  const page = paginate(all, req, `/v2/${name}/tags/list`, ns !== null && ns !== '' ? `&ns=${encodeURIComponent(ns)}` : '');
  if ('status' in page) return page;
  return json({ name, tags: page.items }, page.headers);
}

function catalogList(s: Served, req: ServeRequest): ServeResponse {
  const page = paginate(
    s.catalog.repositories.map((r) => r.name),
    req,
    '/v2/_catalog',
  );
  if ('status' in page) return page;
  return json({ repositories: page.items }, page.headers);
}

function referrers(s: Served, req: ServeRequest, name: string, digest: string): ServeResponse {
  if (name.length > NAME_MAX || !isValidRepository(name)) return badName(name);
  if (!isDigest(digest)) return badDigest(digest);
  // The referrers API never answers 404 (clients take a 404 for "not supported").
  const repo = s.catalog.lookup(name, req.query.get('ns') ?? undefined);
  const wanted = req.query.get('artifactType');
  const manifests: Descriptor[] = [];
  for (const d of repo?.digests ?? []) {
    const info = s.set.manifest(d);
    if (!info || info.subject !== digest) continue;
    if (wanted !== null && info.artifactType !== wanted) continue;
    const desc: Descriptor = { mediaType: info.mediaType, digest: info.digest, size: info.size };
    if (info.artifactType !== undefined) desc.artifactType = info.artifactType;
    if (info.annotations !== undefined) desc.annotations = info.annotations;
    manifests.push(desc);
  }
  manifests.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  return json({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, wanted !== null ? { 'oci-filters-applied': 'artifactType' } : {}, MediaType.ociIndex);
}

/**
 * Which manifest to send. What is stored is sent unless the client lists manifest types in Accept
 * and leaves this one out: then, for an index asked for by tag, its linux/amd64 manifest (what
 * distribution does for a manifest list), else nothing. An image manifest has no alternative and
 * is always sent; so is anything asked for by digest (the digest names exactly those bytes).
 */
export function negotiate(info: ManifestInfo, accepted: string[], byTag: boolean, find: (digest: string) => ManifestInfo | undefined): ManifestInfo | undefined {
  if (!accepted.some(isManifestMediaType) || accepted.includes('*/*') || accepted.includes(info.mediaType.toLowerCase())) return info;
  if (info.kind !== 'index' || !byTag) return info;
  for (const c of info.children) {
    if (c.platform?.os !== DEFAULT_PLATFORM.os || c.platform.architecture !== DEFAULT_PLATFORM.architecture) continue;
    const child = find(c.digest);
    if (child && accepted.includes(child.mediaType.toLowerCase())) return child;
  }
  return undefined;
}

function paginate(all: string[], req: ServeRequest, path: string, extraQuery = ''): { items: string[]; headers: Record<string, string> } | ServeResponse {
  const nRaw = req.query.get('n');
  const last = req.query.get('last');
  let n: number | undefined;
  if (nRaw !== null && nRaw !== '') {
    if (!/^\d{1,9}$/.test(nRaw)) return ociError(400, 'PAGINATION_NUMBER_INVALID', 'invalid number of results requested', { n: nRaw.slice(0, 50) });
    n = Number(nRaw);
  }
  let items = last !== null && last !== '' ? all.filter((t) => t > last) : all;
  const headers: Record<string, string> = {};
  if (n !== undefined && items.length > n) {
    items = items.slice(0, n);
    const lastItem = items[items.length - 1];
    if (lastItem !== undefined) headers.link = `<${path}?n=${n}&last=${encodeURIComponent(lastItem)}${extraQuery}>; rel="next"`;
  }
  return { items, headers };
}
