// The capture's registry: a read-only pull-through relay, as a handler over serve's request and
// response shapes (serve/server.ts binds it, as it binds serve's own). A node pointed at it by
// `airlock mirrors-config` asks for /v2/<repo>/manifests/<ref>?ns=<registry> (containerd and k3s
// name the registry they meant in `ns`; a request without one goes to the default upstream, as
// Docker's registry-mirrors do for docker.io). The relay fetches from that registry with the
// session's credentials and TLS settings, and answers:
//   - a manifest whole, after it was checked against the digest asked for (and the registry's
//     Docker-Content-Digest); a HEAD is answered from the same fetch, so an index resolved by tag
//     is known as one, and the manifest a node then takes from it is recorded with its platform
//     (a client that takes no index gets the linux/amd64 manifest of one, as from distribution);
//   - a blob streamed as it arrives, hashed on the way, its last chunk held back until the whole
//     blob matched (hold-back-verify.ts): wrong bytes upstream reach the node cut short, never
//     complete. A Range request gets the whole blob (200, which RFC 9110 allows): a part could
//     not be checked before it is sent. A blob HEAD is always asked upstream.
// Every answer is recorded (record.ts) when it ends. Pushes, uploads, the catalog and tag lists
// are refused: the relay only ever reads upstream.
import { Readable, finished, pipeline } from 'node:stream';
import { AbortedError, AuthError, IntegrityError, RegistryError, isAirlockError } from '../core/errors.ts';
import { isDigest, type Digest } from '../core/digest.ts';
import { parseManifest, type Descriptor, type ParsedManifest } from '../core/manifest.ts';
import { isManifestMediaType } from '../core/media-types.ts';
import { formatPlatform } from '../core/platform.ts';
import { DOCKER_HUB, isValidRegistry, isValidRepository, isValidTag } from '../core/reference.ts';
import type { RemoteRepository } from '../registry/repository.ts';
import { API_VERSION, acceptedTypes, ociError, parseRoute, type Handler, type ServeRequest, type ServeResponse } from '../serve/handler.ts';
import { HoldBackVerify } from './hold-back-verify.ts';
import type { PullOutcome, PullRecord } from './record.ts';

export interface RelayOptions {
  /** The repository of an upstream registry (the session's registry client). */
  repository(ref: { registry: string; repository: string }): RemoteRepository;
  /** Where requests without `?ns=` go. */
  defaultRegistry: string;
  /** Every manifest and blob answered, when its answer ended. */
  onRecord(record: PullRecord): void;
  /** Fires when the capture stops: upstream requests still waiting give up. */
  signal?: AbortSignal | undefined;
}

const NAME_MAX = 255;
/** Manifests kept for HEAD-then-GET pairs (bytes, whatever their count). */
const MANIFEST_CACHE_BYTES = 16 * 1024 * 1024;
/** Digests remembered from the manifests relayed (sizes of their blobs, platforms of index children). */
const KNOWN_MAX = 100_000;

interface ChildOf {
  index: string;
  platform: string | undefined;
}

/** A bounded map that forgets its oldest entries first. */
class Bounded<V> {
  readonly #map = new Map<string, V>();
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  get(k: string): V | undefined {
    return this.#map.get(k);
  }
  set(k: string, v: V): void {
    this.#map.delete(k);
    this.#map.set(k, v);
    while (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }
}

/** Manifest bytes by repository and digest, up to a total size (least recently used leave first). */
class ManifestCache {
  readonly #map = new Map<string, { mediaType: string; bytes: Buffer }>();
  #bytes = 0;
  get(k: string): { mediaType: string; bytes: Buffer } | undefined {
    const v = this.#map.get(k);
    if (v) {
      this.#map.delete(k);
      this.#map.set(k, v);
    }
    return v;
  }
  set(k: string, v: { mediaType: string; bytes: Buffer }): void {
    if (this.#map.has(k) || v.bytes.length > MANIFEST_CACHE_BYTES / 4) return;
    this.#map.set(k, v);
    this.#bytes += v.bytes.length;
    for (const [key, old] of this.#map) {
      if (this.#bytes <= MANIFEST_CACHE_BYTES) break;
      this.#map.delete(key);
      this.#bytes -= old.bytes.length;
    }
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function createRelay(opts: RelayOptions): Handler {
  const manifests = new ManifestCache();
  const sizes = new Bounded<number>(KNOWN_MAX);
  const children = new Bounded<ChildOf>(KNOWN_MAX);

  /** The upstream a request names: `?ns=`, else the default. */
  const upstreamOf = (req: ServeRequest): string | ServeResponse => {
    const ns = req.query.get('ns');
    if (ns === null || ns === '') return opts.defaultRegistry;
    const host = ns.toLowerCase() === 'index.docker.io' || ns.toLowerCase() === 'registry-1.docker.io' ? DOCKER_HUB : ns;
    if (!isValidRegistry(host)) return ociError(400, 'NAME_INVALID', `ns=${ns.slice(0, 200)} is not a registry host[:port]`);
    return host;
  };

  return async (req) => {
    const started = performance.now();
    const client = req.remote ?? '';
    try {
      const route = parseRoute(req.path);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return ociError(405, 'UNSUPPORTED', `${req.method} is not supported: airlock capture relays pulls only (read-only)`, undefined, { allow: 'GET, HEAD' });
      }
      switch (route.kind) {
        case 'base':
          return json({});
        case 'manifest':
        case 'blob': {
          const upstream = upstreamOf(req);
          if (typeof upstream !== 'string') return upstream;
          if (route.name.length > NAME_MAX || !isValidRepository(route.name)) {
            return ociError(400, 'NAME_INVALID', 'invalid repository name', { name: route.name.slice(0, NAME_MAX), expected: 'lowercase path components joined by /' });
          }
          const base = { registry: upstream, repository: route.name, method: req.method, client };
          return route.kind === 'manifest'
            ? await manifest(req, base, route.reference, started)
            : await blob(req, base, route.digest, started);
        }
        case 'upload':
          return ociError(405, 'UNSUPPORTED', 'uploads are not supported: airlock capture relays pulls only (read-only)', undefined, { allow: 'GET, HEAD' });
        default:
          return ociError(404, 'UNSUPPORTED', 'airlock capture relays manifest and blob pulls only (no catalog, tag lists or referrers)');
      }
    } catch (e) {
      return { ...ociError(500, 'UNKNOWN', 'internal error in airlock capture'), error: e };
    }
  };

  type Base = Pick<PullRecord, 'registry' | 'repository' | 'method' | 'client'>;

  function record(base: Base, kind: PullRecord['kind'], reference: string, started: number, fields: Partial<PullRecord> & { status: number; outcome: PullOutcome }): void {
    try {
      opts.onRecord({ type: 'pull', time: new Date().toISOString(), ...base, kind, reference, ...fields, ms: Math.round((performance.now() - started) * 10) / 10 });
    } catch {
      // A record sink that fails (reported where it is written) must not change what is served.
    }
  }

  /** An upstream failure as the node's answer, recorded. */
  function failure(base: Base, kind: PullRecord['kind'], reference: string, started: number, e: unknown, extra: Partial<PullRecord> = {}): ServeResponse {
    const what = `${kind} ${base.registry}/${base.repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    let res: ServeResponse;
    let outcome: PullOutcome = 'failed';
    if (e instanceof RegistryError && e.status === 404) {
      outcome = 'not-found';
      const code = ['MANIFEST_UNKNOWN', 'BLOB_UNKNOWN', 'NAME_UNKNOWN'].includes(e.registryCode) ? e.registryCode : kind === 'manifest' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN';
      res = ociError(404, code, `${what}: not found upstream`, { registry: base.registry, name: base.repository, reference });
    } else if (e instanceof IntegrityError) {
      outcome = 'refused';
      res = ociError(502, 'UNKNOWN', `${what}: ${base.registry} answered bytes that do not match (${e.message}); airlock capture does not pass them on`, { registry: base.registry, reference });
    } else if (e instanceof AuthError || (e instanceof RegistryError && (e.status === 401 || e.status === 403))) {
      res = ociError(403, 'DENIED', `${what}: ${base.registry} refused airlock capture's credentials: ${e.message}`, { registry: base.registry });
    } else if (e instanceof AbortedError) {
      outcome = 'incomplete';
      res = ociError(503, 'UNAVAILABLE', 'airlock capture is stopping', undefined, { 'retry-after': '1' });
    } else if (isAirlockError(e)) {
      res = ociError(502, 'UNKNOWN', `${what}: cannot fetch it from ${base.registry}: ${e.message}`, { registry: base.registry });
    } else {
      throw e;
    }
    record(base, kind, reference, started, {
      ...extra,
      status: res.status,
      outcome,
      error: message(e),
      ...(isAirlockError(e) ? { code: e.code } : {}),
    });
    return { ...res, headers: { ...res.headers, 'cache-control': 'no-store' }, error: e };
  }

  /** A manifest from the cache (by digest) or upstream (checked), its children and blob sizes noted. */
  async function load(base: Base, reference: string): Promise<{ mediaType: string; digest: string; bytes: Buffer; parsed: ParsedManifest }> {
    const repoKey = `${base.registry}/${base.repository}`;
    let mediaType: string;
    let digest: string;
    let bytes: Buffer;
    const cached = isDigest(reference) ? manifests.get(`${repoKey}@${reference}`) : undefined;
    if (cached) {
      ({ mediaType, bytes } = cached);
      digest = reference;
    } else {
      const got = await opts.repository(base).fetchManifest(reference, { signal: opts.signal });
      ({ mediaType, digest } = got.descriptor);
      bytes = got.bytes;
      manifests.set(`${repoKey}@${digest}`, { mediaType, bytes });
    }
    // fetchManifest parsed it already; parsing again here is cheap and keeps the relay self-contained.
    const parsed = parseManifest(bytes, mediaType, `manifest ${repoKey}@${digest}`);
    if (parsed.kind === 'index') {
      for (const c of parsed.value.manifests) children.set(`${repoKey}@${c.digest}`, { index: digest, platform: c.platform ? formatPlatform(c.platform) : undefined });
    } else {
      for (const d of [parsed.value.config, ...parsed.value.layers] as Descriptor[]) sizes.set(`${repoKey}@${d.digest}`, d.size);
    }
    return { mediaType, digest, bytes, parsed };
  }

  async function manifest(req: ServeRequest, base: Base, reference: string, started: number): Promise<ServeResponse> {
    const byTag = !reference.includes(':');
    if (byTag ? !isValidTag(reference) : !isDigest(reference)) {
      return ociError(400, byTag ? 'TAG_INVALID' : 'DIGEST_INVALID', `invalid reference "${reference.slice(0, 200)}"`, { expected: 'a tag, or sha256:<64 hex>' });
    }
    const repoKey = `${base.registry}/${base.repository}`;
    let got;
    let chosenFrom: ChildOf | undefined;
    try {
      got = await load(base, reference);
      // A client that takes no index gets the linux/amd64 manifest of one asked for by tag, as from distribution.
      const accepted = acceptedTypes(req);
      if (got.parsed.kind === 'index' && byTag && accepted.some(isManifestMediaType) && !accepted.includes('*/*') && !accepted.includes(got.mediaType.toLowerCase())) {
        const child = got.parsed.value.manifests.find((c) => c.platform?.os === 'linux' && c.platform.architecture === 'amd64' && accepted.includes(c.mediaType.toLowerCase()));
        if (child === undefined) {
          return ociError(404, 'MANIFEST_UNKNOWN', `${repoKey}:${reference} is an index (${got.mediaType}) and the Accept header takes neither it nor its linux/amd64 manifest`, { name: base.repository, reference, mediaType: got.mediaType });
        }
        chosenFrom = { index: got.digest, platform: 'linux/amd64' };
        got = await load(base, child.digest);
      }
    } catch (e) {
      return failure(base, 'manifest', reference, started, e);
    }
    const { mediaType, digest, bytes } = got;
    const parent = chosenFrom ?? children.get(`${repoKey}@${digest}`);
    const headers: Record<string, string> = {
      ...API_VERSION,
      'content-type': mediaType,
      'content-length': String(bytes.length),
      'docker-content-digest': digest,
      etag: `"${digest}"`,
    };
    record(base, 'manifest', reference, started, {
      digest,
      mediaType,
      size: bytes.length,
      ...(parent && parent.index !== digest ? { index: parent.index, ...(parent.platform !== undefined ? { platform: parent.platform } : {}) } : {}),
      status: 200,
      outcome: 'ok',
    });
    return req.method === 'HEAD' ? { status: 200, headers } : { status: 200, headers, body: bytes };
  }

  async function blob(req: ServeRequest, base: Base, digestText: string, started: number): Promise<ServeResponse> {
    if (!isDigest(digestText)) return ociError(400, 'DIGEST_INVALID', 'invalid digest', { digest: digestText.slice(0, 200), expected: 'sha256:<64 hex> or sha512:<128 hex>' });
    const digest: Digest = digestText;
    const repo = opts.repository(base);
    const repoKey = `${base.registry}/${base.repository}`;
    // A HEAD always asks upstream: it must not promise a blob the upstream does not have.
    let size = req.method === 'HEAD' ? undefined : sizes.get(`${repoKey}@${digest}`);
    if (size === undefined) {
      try {
        size = (await repo.statBlob(digest, { signal: opts.signal })).size;
      } catch (e) {
        return failure(base, 'blob', digest, started, e);
      }
      sizes.set(`${repoKey}@${digest}`, size);
    }
    const headers: Record<string, string> = {
      ...API_VERSION,
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      'docker-content-digest': digest,
      etag: `"${digest}"`,
    };
    const fields = { digest, size };
    if (req.method === 'HEAD') {
      record(base, 'blob', digest, started, { ...fields, status: 200, outcome: 'ok' });
      return { status: 200, headers };
    }
    // Opened before answering: a blob the upstream lacks (or refuses) gets a clean error status.
    const desc: Descriptor = { mediaType: 'application/octet-stream', digest, size };
    let raw: Readable;
    try {
      raw = await repo.fetchFrom(desc, 0, { signal: opts.signal });
    } catch (e) {
      return failure(base, 'blob', digest, started, e, fields);
    }
    const body = (): Readable => {
      const verified = new HoldBackVerify(desc, `blob ${digest} of ${repoKey}`);
      pipeline(raw, verified, () => {
        // Failures reach the node's response through `verified`, and the record below.
      });
      finished(verified, (err) => {
        if (!err) return record(base, 'blob', digest, started, { ...fields, status: 200, outcome: 'ok' });
        const refused = err instanceof IntegrityError;
        record(base, 'blob', digest, started, {
          ...fields,
          status: 200,
          outcome: refused ? 'refused' : isAirlockError(err) && !(err instanceof AbortedError) ? 'failed' : 'incomplete',
          error: message(err),
          ...(isAirlockError(err) ? { code: err.code } : {}),
        });
      });
      return verified;
    };
    return { status: 200, headers, body };
  }
}

function json(value: unknown): ServeResponse {
  const body = Buffer.from(JSON.stringify(value));
  return { status: 200, headers: { ...API_VERSION, 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) }, body };
}
