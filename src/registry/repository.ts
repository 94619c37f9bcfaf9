// One repository of a remote registry, as content storage: manifests and blobs by descriptor,
// tags resolved and pushed, blobs mounted from sibling repositories, ranges for resumed copies.
import { Readable, pipeline } from 'node:stream';
import { AbortedError, IntegrityError, RegistryError, UsageError } from '../core/errors.ts';
import { type Digest, digestAlgorithm, digestOf, isDigest, parseDigest, verifyBytes } from '../core/digest.ts';
import { MAX_MANIFEST_BYTES, type Descriptor, isManifestDescriptor, parseManifest } from '../core/manifest.ts';
import { MANIFEST_MEDIA_TYPES, MediaType, SCHEMA1_MEDIA_TYPES, isManifestMediaType } from '../core/media-types.ts';
import { isValidTag } from '../core/reference.ts';
import type { Mounter, OpOptions, PumpedBody, RangeFetcher, RangePumper, ReferencePusher, Storage, TagResolver } from '../content/types.ts';
import { VerifyStream, destroyOnAbort, readAllLimited } from '../content/verify-stream.ts';
import { openBlob, openBlobStream, type BlobSource } from './blob-download.ts';
import { uploadBlob, uploadLocation, type UploadTarget } from './blob-upload.ts';
import { errorForResponse, readErrorBody, type ErrorSubject } from './registry-errors.ts';
import { header, type SendResponse, type Transport } from './transport.ts';
import { ChunkPolicy } from './transfer-chunks.ts';

const TAGS_BODY_LIMIT = 16 * 1024 * 1024;
const MAX_TAG_PAGES = 10_000;

/** The media type of a Content-Type header, without parameters, lower-cased. */
function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function acceptFor(preferred?: string): string {
  const list = preferred !== undefined && !MANIFEST_MEDIA_TYPES.includes(preferred) ? [preferred, ...MANIFEST_MEDIA_TYPES] : [...MANIFEST_MEDIA_TYPES];
  return list.join(', ');
}

/** A tag or a digest, validated before it goes into a URL path. */
function checkReference(reference: string, what: string): { tag?: string; digest?: Digest } {
  if (reference.includes(':')) return { digest: parseDigest(reference, `digest for ${what}`) };
  if (!isValidTag(reference)) {
    throw new UsageError(`invalid tag "${reference}" for ${what}: letters, digits, _ . -, at most 128, not starting with . or -`, {
      code: 'TAG_INVALID',
    });
  }
  return { tag: reference };
}

export class RemoteRepository implements Storage, TagResolver, ReferencePusher, RangeFetcher, RangePumper, Mounter {
  readonly registry: string;
  readonly repository: string;
  readonly #transport: Transport;
  /** Upload sessions a refused mount left open, handed to the next push of that digest. */
  readonly #sessions = new Map<string, URL>();
  /**
   * Blobs exists() just found missing: a push() right after (copyGraph checks, then pushes) need
   * not ask again. At worst a blob that arrived meanwhile is uploaded once more, which is harmless.
   */
  readonly #absent = new Set<string>();
  readonly #chunks: ChunkPolicy;

  /**
   * Made by RegistryClient.repository(); the transport and the chunk policy (what a 413 taught
   * about each registry) are shared by every repository of a client.
   */
  constructor(transport: Transport, name: { registry: string; repository: string }, chunks = new ChunkPolicy(undefined)) {
    this.#transport = transport;
    this.#chunks = chunks;
    this.registry = name.registry;
    this.repository = name.repository;
  }

  get #name(): string {
    return `${this.registry}/${this.repository}`;
  }

  get label(): string {
    return this.#name;
  }

  get #pull(): string[] {
    return [`repository:${this.repository}:pull`];
  }

  get #push(): string[] {
    return [`repository:${this.repository}:pull,push`];
  }

  #imageName(reference: string): string {
    return `image ${this.#name}${reference.includes(':') ? '@' : ':'}${reference}`;
  }

  #subject(kind: ErrorSubject['kind'], reference: string | undefined, action: string): ErrorSubject {
    return { registry: this.registry, repository: this.repository, kind, reference, action };
  }

  async #fail(subject: ErrorSubject, res: SendResponse): Promise<never> {
    throw errorForResponse(subject, res, await readErrorBody(res.body));
  }

  /** A HEAD, or a GET whose body is read as part of the request (a broken or stalled one is retried). */
  #manifestRequest(method: 'GET' | 'HEAD', reference: string, accept: string, opts: OpOptions | undefined, limit = MAX_MANIFEST_BYTES): Promise<SendResponse> {
    const what = this.#imageName(reference);
    return this.#transport.send({
      registry: this.registry,
      method,
      path: `/v2/${this.repository}/manifests/${reference}`,
      headers: { accept },
      scopes: this.#pull,
      signal: opts?.signal,
      what: `fetch ${what}`,
      ...(method === 'GET' ? { readBody: (res: SendResponse) => this.#readManifestBody(res, what, limit) } : {}),
    });
  }

  /**
   * The descriptor a tag or digest points at. HEAD first (cheap, and not counted by Docker Hub's
   * pull limit); the manifest itself is fetched only when HEAD leaves the digest, size or type open.
   */
  async resolve(reference: string, opts?: OpOptions): Promise<Descriptor> {
    const ref = checkReference(reference, this.#name);
    const what = this.#imageName(reference);
    const res = await this.#manifestRequest('HEAD', reference, acceptFor(), opts);
    if (res.status !== 200) return await this.#fail(this.#subject('manifest', reference, 'fetch'), res);
    await res.body.dump();
    const mediaType = mediaTypeOf(header(res.headers, 'content-type'));
    if (SCHEMA1_MEDIA_TYPES.includes(mediaType)) parseManifest(new Uint8Array(0), mediaType, what);
    const digest = header(res.headers, 'docker-content-digest');
    const size = Number(header(res.headers, 'content-length') ?? NaN);
    if (digest === undefined || !isDigest(digest) || !Number.isSafeInteger(size) || !isManifestMediaType(mediaType)) {
      return (await this.fetchManifest(reference, opts)).descriptor;
    }
    if (ref.digest !== undefined && digest !== ref.digest && digestAlgorithm(digest) === digestAlgorithm(ref.digest)) {
      throw new IntegrityError(`${what}: the registry answered with digest ${digest}`, { code: 'DIGEST_MISMATCH' });
    }
    if (size > MAX_MANIFEST_BYTES) {
      throw new IntegrityError(`${what}: manifest is ${size} bytes, more than the ${MAX_MANIFEST_BYTES}-byte limit`, { code: 'MANIFEST_TOO_LARGE' });
    }
    return { mediaType, digest: ref.digest ?? digest, size };
  }

  /**
   * A manifest's exact bytes and descriptor, verified against the digest asked for and against
   * the registry's Docker-Content-Digest. Schema 1 and non-manifests are refused.
   */
  async fetchManifest(reference: string, opts?: OpOptions): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const ref = checkReference(reference, this.#name);
    const what = this.#imageName(reference);
    const res = await this.#manifestRequest('GET', reference, acceptFor(), opts);
    if (res.status !== 200) return await this.#fail(this.#subject('manifest', reference, 'fetch'), res);
    const bytes = res.bytes!;
    const served = mediaTypeOf(header(res.headers, 'content-type'));
    const parsed = parseManifest(bytes, served, what);
    if (ref.digest !== undefined) verifyBytes(bytes, { digest: ref.digest }, what);
    const claimed = header(res.headers, 'docker-content-digest');
    const checked = claimed !== undefined && isDigest(claimed) ? claimed : undefined;
    if (checked !== undefined) verifyBytes(bytes, { digest: checked }, `${what} (Docker-Content-Digest)`);
    const mediaType = isManifestMediaType(served)
      ? served
      : isManifestMediaType(parsed.mediaType)
        ? parsed.mediaType
        : parsed.kind === 'index'
          ? MediaType.ociIndex
          : MediaType.ociManifest;
    const digest = ref.digest ?? checked ?? digestOf(bytes);
    return { descriptor: { mediaType, digest, size: bytes.byteLength }, bytes };
  }

  async #readManifestBody(res: SendResponse, what: string, limit = MAX_MANIFEST_BYTES): Promise<Buffer> {
    const length = Number(header(res.headers, 'content-length') ?? NaN);
    if (Number.isSafeInteger(length) && length > limit) {
      res.body.destroy();
      throw new IntegrityError(`${what}: manifest is ${length} bytes, more than the ${limit}-byte limit`, { code: 'MANIFEST_TOO_LARGE' });
    }
    try {
      return await readAllLimited(res.body, limit, what);
    } finally {
      if (!res.body.destroyed) res.body.destroy();
    }
  }

  /**
   * The content of a descriptor as a verified stream. Manifests come from /manifests/ (registries
   * need not serve them as blobs) and are checked whole; blobs stream, verified as they flow,
   * resuming with Range requests when the connection drops.
   */
  async fetch(desc: Descriptor, opts?: OpOptions): Promise<Readable> {
    if (isManifestDescriptor(desc)) {
      const what = this.#imageName(desc.digest);
      if (desc.size > MAX_MANIFEST_BYTES) {
        throw new IntegrityError(`${what}: manifest is ${desc.size} bytes, more than the ${MAX_MANIFEST_BYTES}-byte limit`, { code: 'MANIFEST_TOO_LARGE' });
      }
      const res = await this.#manifestRequest('GET', desc.digest, acceptFor(desc.mediaType), opts, desc.size).catch((e: unknown) => {
        throw e instanceof IntegrityError && e.code === 'MANIFEST_TOO_LARGE'
          ? new IntegrityError(`${what}: more than the expected ${desc.size} bytes`, { code: 'SIZE_MISMATCH' })
          : e;
      });
      if (res.status !== 200) return await this.#fail(this.#subject('manifest', desc.digest, 'fetch'), res);
      const bytes = res.bytes!;
      verifyBytes(bytes, desc, what);
      const stream = Readable.from([bytes], { objectMode: false });
      destroyOnAbort(stream, opts?.signal);
      return stream;
    }
    const raw = await openBlobStream(this.#blobSource(), desc, 0, opts?.signal);
    const verified = new VerifyStream(desc, `blob ${desc.digest} of ${this.#name}`);
    pipeline(raw, verified, () => {
      // errors reach the consumer through `verified`, which pipeline destroys with them
    });
    // Bytes already buffered would otherwise still end the stream cleanly after an abort.
    destroyOnAbort(verified, opts?.signal);
    return verified;
  }

  /** Raw bytes of a blob from `offset` on (for a copier resuming a partial file it already hashed). */
  async fetchFrom(desc: Descriptor, offset: number, opts?: OpOptions): Promise<Readable> {
    if (isManifestDescriptor(desc)) {
      const whole = await this.fetch(desc, opts);
      const bytes = await readAllLimited(whole, MAX_MANIFEST_BYTES, this.#imageName(desc.digest));
      return Readable.from([bytes.subarray(offset)], { objectMode: false });
    }
    return await openBlobStream(this.#blobSource(), desc, offset, opts?.signal);
  }

  /** Raw bytes of a blob from `offset` on, pumped (a downloader writing them to disk). */
  async openFrom(desc: Descriptor, offset: number, opts?: OpOptions): Promise<PumpedBody> {
    if (isManifestDescriptor(desc)) {
      const bytes = await readAllLimited(await this.fetch(desc, opts), MAX_MANIFEST_BYTES, this.#imageName(desc.digest));
      let cancelled = false;
      return {
        pump: async (sink) => {
          if (cancelled) throw new AbortedError('cancelled');
          await sink(bytes.subarray(offset));
        },
        cancel: () => {
          cancelled = true;
        },
      };
    }
    return await openBlob(this.#blobSource(), desc, offset, opts?.signal);
  }

  #blobSource(): BlobSource {
    return { transport: this.#transport, registry: this.registry, repository: this.repository, scopes: this.#pull };
  }

  #uploadTarget(): UploadTarget {
    return { transport: this.#transport, registry: this.registry, repository: this.repository, scopes: this.#push, chunks: this.#chunks };
  }

  /**
   * A blob's descriptor from a HEAD (its size from Content-Length), for a relay asked for a blob
   * whose manifest it did not see. Missing: a not-found RegistryError.
   */
  async statBlob(digest: Digest, opts?: OpOptions): Promise<Descriptor> {
    const what = `blob ${digest} of ${this.#name}`;
    const res = await this.#transport.send({
      registry: this.registry,
      method: 'HEAD',
      path: `/v2/${this.repository}/blobs/${digest}`,
      scopes: this.#pull,
      signal: opts?.signal,
      what: `check ${what}`,
    });
    await res.body.dump();
    if (res.status !== 200) return await this.#fail(this.#subject('blob', digest, 'check'), res);
    const size = Number(header(res.headers, 'content-length') ?? NaN);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RegistryError(`${what}: the registry did not say its size (Content-Length)`, { status: res.status, url: res.url.origin });
    }
    return { mediaType: 'application/octet-stream', digest, size };
  }

  async exists(desc: Descriptor, opts?: OpOptions): Promise<boolean> {
    const found = await this.#exists(desc, this.#pull, opts);
    if (!found && !isManifestDescriptor(desc)) this.#absent.add(desc.digest);
    return found;
  }

  async #exists(desc: Descriptor, scopes: string[], opts?: OpOptions): Promise<boolean> {
    const manifest = isManifestDescriptor(desc);
    const res = await this.#transport.send({
      registry: this.registry,
      method: 'HEAD',
      path: `/v2/${this.repository}/${manifest ? 'manifests' : 'blobs'}/${desc.digest}`,
      headers: manifest ? { accept: acceptFor(desc.mediaType) } : {},
      scopes,
      signal: opts?.signal,
      what: `check ${manifest ? this.#imageName(desc.digest) : `blob ${desc.digest} of ${this.#name}`}`,
      // A registry that redirects a blob HEAD to its storage has the blob; the storage URL is
      // often signed for GET only and would answer HEAD with 403.
      followRedirects: manifest,
    });
    await res.body.dump();
    if (res.status === 200 || (!manifest && [301, 302, 303, 307, 308].includes(res.status))) return true;
    if (res.status === 404) return false;
    return await this.#fail(this.#subject(manifest ? 'manifest' : 'blob', desc.digest, 'check'), res);
  }

  /**
   * Store content under its descriptor. A blob already present is success without sending a
   * byte (the content stream is destroyed unread); manifests go to /manifests/<digest>.
   */
  async push(desc: Descriptor, content: Readable, opts?: OpOptions): Promise<void> {
    if (isManifestDescriptor(desc)) {
      const what = this.#imageName(desc.digest);
      const bytes = await readAllLimited(content, Math.min(desc.size, MAX_MANIFEST_BYTES), what).catch((e: unknown) => {
        throw e instanceof IntegrityError && e.code === 'MANIFEST_TOO_LARGE' && desc.size <= MAX_MANIFEST_BYTES
          ? new IntegrityError(`${what}: more than the expected ${desc.size} bytes`, { code: 'SIZE_MISMATCH' })
          : e;
      });
      await this.pushReference(desc, bytes, desc.digest, opts);
      return;
    }
    if (!this.#absent.delete(desc.digest) && (await this.#exists(desc, this.#push, opts))) {
      this.#sessions.delete(desc.digest);
      content.destroy();
      return;
    }
    const session = this.#sessions.get(desc.digest);
    this.#sessions.delete(desc.digest);
    await uploadBlob(this.#uploadTarget(), desc, content, session, opts?.signal);
  }

  /** PUT the exact manifest bytes under a tag or digest, Content-Type = the descriptor's media type. */
  async pushReference(desc: Descriptor, content: Uint8Array, reference: string, opts?: OpOptions): Promise<void> {
    checkReference(reference, this.#name);
    const what = this.#imageName(reference);
    if (content.byteLength > MAX_MANIFEST_BYTES) {
      throw new IntegrityError(`${what}: manifest is ${content.byteLength} bytes, more than the ${MAX_MANIFEST_BYTES}-byte limit`, { code: 'MANIFEST_TOO_LARGE' });
    }
    verifyBytes(content, desc, what);
    const res = await this.#transport.send({
      registry: this.registry,
      method: 'PUT',
      path: `/v2/${this.repository}/manifests/${reference}`,
      headers: { 'content-type': desc.mediaType },
      body: content,
      scopes: this.#push,
      signal: opts?.signal,
      what: `push ${what}`,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 204) {
      return await this.#fail(this.#subject('manifest', reference, 'push'), res);
    }
    await res.body.dump();
    const stored = header(res.headers, 'docker-content-digest');
    if (stored !== undefined && isDigest(stored) && digestAlgorithm(stored) === digestAlgorithm(desc.digest) && stored !== desc.digest) {
      throw new IntegrityError(`${what}: the registry stored the manifest as ${stored}, not ${desc.digest}`, { code: 'DIGEST_MISMATCH' });
    }
  }

  /**
   * Ask the registry to link a blob of `fromRepository` (same registry) into this one. 201 means
   * mounted. 202 means the registry wants an upload instead (source unknown, no pull right, or
   * mounting disabled): the session it opened is kept for the next push of that digest.
   */
  async mount(desc: Descriptor, fromRepository: string, opts?: OpOptions): Promise<boolean> {
    if (isManifestDescriptor(desc)) return false;
    const query = `mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(fromRepository)}`;
    const res = await this.#transport.send({
      registry: this.registry,
      method: 'POST',
      path: `/v2/${this.repository}/blobs/uploads/?${query}`,
      headers: { 'content-length': '0' },
      scopes: [...this.#push, `repository:${fromRepository}:pull`],
      signal: opts?.signal,
      what: `mount blob ${desc.digest} from ${this.registry}/${fromRepository} into ${this.#name}`,
    });
    if (res.status === 201) {
      await res.body.dump();
      return true;
    }
    if (res.status === 202) {
      await res.body.dump();
      const location = header(res.headers, 'location');
      if (location !== undefined && location !== '') {
        this.#sessions.set(desc.digest, uploadLocation(location, res.url, `blob ${desc.digest} of ${this.#name}`));
      }
      return false;
    }
    return await this.#fail(this.#subject('mount', desc.digest, 'mount'), res);
  }

  /** Every tag, following `Link: <…>; rel="next"` pagination. */
  async listTags(opts?: OpOptions): Promise<string[]> {
    const tags: string[] = [];
    let next: URL | undefined;
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const res = await this.#transport.send({
        registry: this.registry,
        method: 'GET',
        ...(next === undefined ? { path: `/v2/${this.repository}/tags/list` } : { url: next }),
        headers: { accept: 'application/json' },
        scopes: this.#pull,
        signal: opts?.signal,
        what: `list tags of ${this.#name}`,
        readBody: (r) => readAllLimited(r.body, TAGS_BODY_LIMIT, `tag list of ${this.#name}`),
      });
      if (res.status !== 200) return await this.#fail(this.#subject('tags', undefined, 'list tags of'), res);
      const body = res.bytes!;
      let doc: unknown;
      try {
        doc = JSON.parse(body.toString('utf8'));
      } catch (e) {
        throw new RegistryError(`tag list of ${this.#name} is not JSON`, { status: res.status, url: res.url.origin }, { cause: e });
      }
      const list = (doc as { tags?: unknown } | null)?.tags;
      if (Array.isArray(list)) for (const t of list) if (typeof t === 'string') tags.push(t);
      const link = nextLink(header(res.headers, 'link'));
      if (link === undefined) return tags;
      next = new URL(link, res.url);
    }
    throw new RegistryError(`tag list of ${this.#name} has more than ${MAX_TAG_PAGES} pages`, { status: 200, url: `https://${this.registry}` });
  }

  /**
   * What refers to a manifest, from the OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`,
   * every page): the descriptors it lists. Undefined when the registry has no referrers API: the
   * spec has a registry that has one never answer 404 there, and a client fall back to the
   * referrers tag schema when it does (405 and 501 are taken the same way: a route the registry
   * does not know).
   */
  async listReferrers(digest: Digest, opts?: OpOptions): Promise<Descriptor[] | undefined> {
    const ref = checkReference(digest, this.#name);
    const what = `referrers of ${this.#imageName(ref.digest!)}`;
    const found: Descriptor[] = [];
    let next: URL | undefined;
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const res = await this.#transport.send({
        registry: this.registry,
        method: 'GET',
        ...(next === undefined ? { path: `/v2/${this.repository}/referrers/${ref.digest}` } : { url: next }),
        headers: { accept: MediaType.ociIndex },
        scopes: this.#pull,
        signal: opts?.signal,
        what: `list ${what}`,
        readBody: (r) => readAllLimited(r.body, MAX_MANIFEST_BYTES, what),
      });
      if (page === 0 && (res.status === 404 || res.status === 405 || res.status === 501)) {
        await res.body.dump();
        return undefined;
      }
      if (res.status !== 200) return await this.#fail(this.#subject('manifest', ref.digest, 'list referrers of'), res);
      // Not content-addressed: checked for shape, each descriptor as in any index.
      const parsed = parseManifest(res.bytes!, MediaType.ociIndex, what);
      if (parsed.kind !== 'index') throw new RegistryError(`${what}: the registry answered with a manifest, not an index`, { status: res.status, url: res.url.origin });
      found.push(...parsed.value.manifests);
      const link = nextLink(header(res.headers, 'link'));
      if (link === undefined) return found;
      next = new URL(link, res.url);
    }
    throw new RegistryError(`${what}: more than ${MAX_TAG_PAGES} pages`, { status: 200, url: `https://${this.registry}` });
  }
}

/** The target of `rel="next"` in an RFC 8288 Link header. */
export function nextLink(link: string | undefined): string | undefined {
  if (link === undefined) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel="?next"?/i.test(m[2] ?? '')) return m[1];
  }
  return undefined;
}
