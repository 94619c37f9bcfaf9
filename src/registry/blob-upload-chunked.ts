// Blob uploads in chunks (distribution spec "pushing a blob in chunks"): PATCH requests with
// Content-Range, each at most the chunk size, then a PUT ?digest= without a body. For registries,
// and reverse proxies in front of them, that limit request bodies, and for large blobs whose
// upload should survive a broken connection.
//
// A chunk is copied into one buffer per upload and held until the registry acknowledged it, so
// memory stays at one chunk per upload in flight (sources such as Bundle.fetchForUpload recycle
// their buffers: their bytes must be copied, not kept). When a chunk's request fails, the
// registry is asked how far it got (GET on the session: `Range: 0-N`) and the upload goes on
// from byte N+1 out of the held chunk: nothing is sent twice beyond what the registry lost. A
// chunk goes out as a stream, so the transport watches it for stalls and never resends it blindly
// (a registry that kept part of it would refuse that, or worse); a 401 for an expired token is
// answered by the status request, whose fresh token the next chunk then uses.
// distribution (docker-registry) cannot resume a session whose request broke after part of its
// body arrived (its signed state token no longer matches, and it cancels the session): that
// session is reported lost and the copier starts the blob again.
import { Readable } from 'node:stream';
import { formatBytes } from '../core/bytes.ts';
import { IntegrityError, NetworkError, RegistryError } from '../core/errors.ts';
import type { Descriptor } from '../core/manifest.ts';
import { errorForResponse, readErrorBody, type ErrorSubject } from './registry-errors.ts';
import { backoffDelay, errorCode, parseRetryAfter, sleepWithSignal } from './retry.ts';
import { uploadLocation, withDigestParam, type UploadTarget } from './blob-upload.ts';
import { header, type SendResponse } from './transport.ts';

/** How many times one upload may go back to the registry's offset before it counts as failed. */
export const MAX_UPLOAD_RESUMES = 5;

/** First pause before a chunk refused by a busy registry is resumed, doubled per resume (with jitter). */
const BUSY_BASE_DELAY_MS = 250;

function subject(t: UploadTarget, desc: Descriptor): ErrorSubject {
  return { registry: t.registry, repository: t.repository, kind: 'upload', reference: desc.digest, action: 'push' };
}

/** The end of a `Range: 0-N` answer (N is the last byte the registry holds); undefined when absent or malformed. */
export function rangeEnd(value: string | undefined): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec((value ?? '').trim());
  return m ? Number(m[1]) : undefined;
}

/**
 * Where an upload session stands: the session URL to go on with and how many bytes the registry
 * holds; undefined when the registry no longer knows the session (404: expired, cancelled, or
 * invalidated by a broken request).
 */
export async function uploadStatus(t: UploadTarget, desc: Descriptor, session: URL, signal: AbortSignal | undefined): Promise<{ location: URL; bytes: number } | undefined> {
  const what = `blob ${desc.digest} of ${t.registry}/${t.repository}`;
  const res = await t.transport.send({
    registry: t.registry,
    method: 'GET',
    url: session,
    scopes: t.scopes,
    signal,
    what: `ask how much of ${what} the registry holds`,
    continuation: true,
    followRedirects: false,
  });
  if (res.status === 404) {
    await res.body.dump();
    return undefined;
  }
  if (res.status !== 204 && res.status !== 202 && res.status !== 200) throw errorForResponse(subject(t, desc), res, await readErrorBody(res.body));
  await res.body.dump();
  const end = rangeEnd(header(res.headers, 'range'));
  const location = header(res.headers, 'location');
  // "0-0" is what distribution says for both an empty session and one byte: the empty session is
  // the likelier, and a registry that did hold that byte refuses the resend with 416.
  return { location: location ? uploadLocation(location, res.url, what) : session, bytes: end === undefined || end === 0 ? 0 : end + 1 };
}

export interface ChunkedUploadOptions {
  /**
   * The session to use (a refused mount's; a new one is opened without it), kept up to date with
   * the registry's latest Location: after a failure, the one for the caller to cancel.
   */
  state: { session: URL | undefined };
  /** Bytes a chunk: the policy's size for this registry. */
  chunkSize: number;
  signal: AbortSignal | undefined;
  /** Opens a session: its URL and the registry's OCI-Chunk-Min-Length, if it announced one. */
  start: () => Promise<{ location: URL; minChunk: number }>;
}

/**
 * Upload the bytes of `source` (already checked by the caller's verifying stream, which fails
 * before its end on a wrong digest or size) as `desc`. On success the final PUT has closed the
 * session and `opts.state.session` is undefined.
 */
export async function uploadInChunks(t: UploadTarget, desc: Descriptor, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: ChunkedUploadOptions): Promise<void> {
  const what = `blob ${desc.digest} of ${t.registry}/${t.repository}`;
  const { state } = opts;
  let minChunk = 0;
  if (state.session === undefined) {
    const started = await opts.start();
    state.session = started.location;
    minChunk = started.minChunk;
  }
  let size = Math.max(opts.chunkSize, minChunk);
  // Never more than the blob: a small blob costs only its own size.
  const buffer = Buffer.allocUnsafe(Math.min(size, Math.max(desc.size, 1)));
  let fill = 0;
  /** Bytes the registry has acknowledged. */
  let offset = 0;
  let resumes = 0;

  const send = async (bytes: Buffer): Promise<void> => {
    let pos = 0;
    while (pos < bytes.length) {
      const piece = bytes.subarray(pos, pos + size);
      const start = offset;
      let res: SendResponse | undefined;
      let failure: unknown;
      try {
        res = await t.transport.send({
          registry: t.registry,
          method: 'PATCH',
          url: state.session!,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(piece.length), 'content-range': `${start}-${start + piece.length - 1}` },
          body: Readable.from([piece], { objectMode: false }),
          scopes: t.scopes,
          signal: opts.signal,
          what: `upload bytes ${start}-${start + piece.length - 1} of ${what}`,
          continuation: false,
        });
      } catch (e) {
        if (!(e instanceof NetworkError) || opts.signal?.aborted) throw e;
        failure = e;
      }
      if (res !== undefined && res.status === 202) {
        await res.body.dump();
        state.session = uploadLocation(header(res.headers, 'location'), res.url, `upload of ${what}`);
        const end = rangeEnd(header(res.headers, 'range'));
        if (end !== undefined && end + 1 !== start + piece.length) {
          throw new RegistryError(`${what}: after bytes ${start}-${start + piece.length - 1} the registry reports holding bytes 0-${end}`, { status: 202, url: res.url.origin });
        }
        offset = start + piece.length;
        pos += piece.length;
        continue;
      }
      if (res !== undefined && res.status === 413) {
        await res.body.dump();
        const lesson = t.chunks.refused(t.registry, piece.length, minChunk);
        if (lesson.size === undefined) throw tooLarge(t, desc, res, piece.length, minChunk);
        if (lesson.first) t.transport.warn('UPLOAD_CHUNKED', `${t.registry} refused a ${formatBytes(piece.length)} chunk as too large (413): uploading in chunks of ${formatBytes(lesson.size)} from now on`);
        size = lesson.size;
        continue;
      }
      // 416 (the registry holds other bytes than this chunk assumed), a lost or refused session,
      // or the connection failing: ask the registry where it stands.
      const refusal = res === undefined ? undefined : errorForResponse(subject(t, desc), res, await readErrorBody(res.body));
      if (refusal !== undefined && ![404, 416, 429].includes(res!.status) && !(res!.status >= 500)) throw refusal;
      const cause = failure ?? refusal;
      if (++resumes > MAX_UPLOAD_RESUMES) throw cause;
      // A busy registry (429, 5xx) gets a pause first, as the transport gives any request.
      if (res !== undefined && res.status !== 404 && res.status !== 416) {
        await sleepWithSignal(parseRetryAfter(header(res.headers, 'retry-after')) ?? backoffDelay(resumes - 1, BUSY_BASE_DELAY_MS), opts.signal);
      }
      const status = await uploadStatus(t, desc, state.session!, opts.signal);
      if (status === undefined || status.bytes < offset || status.bytes > start + piece.length) {
        throw new NetworkError(
          status === undefined
            ? `cannot upload ${what}: the registry dropped the upload session after ${reasonOf(cause, t.registry)} at byte ${start}`
            : `cannot upload ${what}: after ${reasonOf(cause, t.registry)} the registry holds ${status.bytes} bytes, expected ${offset} to ${start + piece.length}`,
          {
            code: 'UPLOAD_SESSION_LOST',
            cause,
            hint: 'the registry cannot resume this upload (distribution/docker-registry never can after a request broke mid-body); the copy starts this blob again from its source',
          },
        );
      }
      state.session = status.location;
      t.transport.warn('REGISTRY_RETRY', `${reasonOf(cause, t.registry)} while uploading ${what}; the registry holds ${formatBytes(status.bytes)}: going on from there (resume ${resumes} of ${MAX_UPLOAD_RESUMES})`);
      pos += status.bytes - start;
      offset = status.bytes;
    }
  };

  for await (const chunk of source) {
    let piece = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (piece.length > 0) {
      const n = Math.min(Math.min(size, buffer.length) - fill, piece.length);
      piece.copy(buffer, fill, 0, n);
      fill += n;
      piece = piece.subarray(n);
      if (fill >= Math.min(size, buffer.length)) {
        await send(buffer.subarray(0, fill));
        fill = 0;
      }
    }
  }
  if (fill > 0) await send(buffer.subarray(0, fill));
  if (offset !== desc.size) {
    throw new IntegrityError(`${what}: the source gave ${offset} bytes, expected ${desc.size}`, { code: 'SIZE_MISMATCH' });
  }
  const res = await t.transport.send({
    registry: t.registry,
    method: 'PUT',
    url: withDigestParam(state.session!, desc.digest),
    headers: { 'content-length': '0' },
    scopes: t.scopes,
    signal: opts.signal,
    what: `complete the upload of ${what}`,
    continuation: false,
  });
  if (res.status !== 201 && res.status !== 204 && res.status !== 200) throw errorForResponse(subject(t, desc), res, await readErrorBody(res.body));
  await res.body.dump();
  const stored = header(res.headers, 'docker-content-digest');
  if (stored !== undefined && stored !== desc.digest && stored.split(':')[0] === desc.digest.split(':')[0]) {
    throw new IntegrityError(`${what}: the registry stored it as ${stored}`, { code: 'DIGEST_MISMATCH' });
  }
  state.session = undefined;
}

function reasonOf(cause: unknown, registry: string): string {
  if (cause instanceof RegistryError) return `${registry} answered ${cause.status}`;
  const code = errorCode(cause);
  return `the connection to ${registry} broke${code !== undefined ? ` (${code})` : ''}`;
}

/** A 413 for a body that cannot get smaller: the registry's limit is below any chunk we send. */
export function tooLarge(t: UploadTarget, desc: Descriptor, res: SendResponse, bytes: number, minChunk: number): RegistryError {
  const e = errorForResponse(subject(t, desc), res, { errors: [], text: '' });
  return new RegistryError(
    `cannot upload blob ${desc.digest} to ${t.registry}/${t.repository}: ${t.registry} refused a ${formatBytes(bytes)} request body as too large (413)${minChunk > 0 ? `, and wants chunks of at least ${formatBytes(minChunk)}` : ''}`,
    { status: 413, url: res.url.origin },
    { cause: e, hint: `raise the body-size limit of ${t.registry} (or of the proxy in front of it, e.g. nginx client_max_body_size) to at least 64 KiB` },
  );
}
