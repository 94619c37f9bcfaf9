// Blob uploads (distribution spec "push"): POST opens a session, one PUT ?digest= carries the
// whole blob with its Content-Length. distribution 2.8 ignores `?digest=` on the POST (it answers
// 202 and opens a session, see registry/handlers/blobupload.go StartBlobUpload), so single-request
// monolithic uploads would send every body twice there: POST + PUT is the fewest that works
// everywhere. One streamed PUT keeps memory flat at any size; blobs larger than a chunk size (set,
// or taught by a registry's 413) go in chunks instead (blob-upload-chunked.ts).
import { finished, pipeline, type Readable } from 'node:stream';
import { IntegrityError, NetworkError, RegistryError } from '../core/errors.ts';
import { verifyBytes, isDigest, digestAlgorithm } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import { VerifyStream, destroyOnAbort, isSelfVerifying, readAllLimited } from '../content/verify-stream.ts';
import { errorForResponse, readErrorBody, type ErrorSubject } from './registry-errors.ts';
import { isRetryableStatus } from './retry.ts';
import { header, type Transport } from './transport.ts';
import { uploadInChunks, tooLarge } from './blob-upload-chunked.ts';
import { formatBytes } from '../core/bytes.ts';
import type { ChunkPolicy } from './transfer-chunks.ts';

/**
 * Blobs up to this size are read into memory before the PUT. That costs at most
 * concurrency × 1 MiB, and buys replayable requests: configs and small layers — most blobs by
 * count — can then be retried on 429/503 without going back to the source. Larger blobs are
 * streamed, so a failure there is reported and the copier retries the blob as a whole. (Sources
 * that recycle their buffers, Bundle.fetchForUpload, rely on this staying far below 8 chunks.)
 */
export const SMALL_BLOB_BYTES = 1024 * 1024;

export interface UploadTarget {
  transport: Transport;
  registry: string;
  repository: string;
  scopes: string[];
  /** Monolithic or chunked, per registry; shared by every repository of a client. */
  chunks: ChunkPolicy;
}

function subject(t: UploadTarget, desc: Descriptor | undefined, action: string): ErrorSubject {
  return { registry: t.registry, repository: t.repository, kind: 'upload', reference: desc?.digest, action };
}

/** The session URL from a 202/201 answer: Location may be relative and may carry query state (kept verbatim). */
export function uploadLocation(location: string | undefined, base: URL, what: string): URL {
  if (location === undefined || location === '') {
    throw new RegistryError(`${what}: the registry opened an upload session without a Location header`, { status: 202, url: base.origin });
  }
  return new URL(location, base);
}

/** Append `digest=` to a session URL without re-encoding the registry's own query. */
export function withDigestParam(session: URL, digest: string): URL {
  const u = new URL(session.href);
  const param = `digest=${encodeURIComponent(digest)}`;
  u.search = u.search === '' || u.search === '?' ? `?${param}` : `${u.search}&${param}`;
  return u;
}

/**
 * The source closed "prematurely" because the request body it fed was cut (a stalled or failed
 * request; pipeline then destroys the source with this): the request's own error says what happened.
 */
function cutShort(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/** POST /blobs/uploads/ → the session URL. */
export async function startUpload(t: UploadTarget, desc: Descriptor, signal: AbortSignal | undefined): Promise<URL> {
  return (await startSession(t, desc, signal)).location;
}

/** POST /blobs/uploads/ → the session URL and the registry's minimum chunk size (OCI-Chunk-Min-Length; 0 if none). */
export async function startSession(t: UploadTarget, desc: Descriptor, signal: AbortSignal | undefined): Promise<{ location: URL; minChunk: number }> {
  const what = `blob ${desc.digest} of ${t.registry}/${t.repository}`;
  const res = await t.transport.send({
    registry: t.registry,
    method: 'POST',
    path: `/v2/${t.repository}/blobs/uploads/`,
    headers: { 'content-length': '0' },
    scopes: t.scopes,
    signal,
    what: `start the upload of ${what}`,
  });
  if (res.status !== 202) throw errorForResponse(subject(t, desc, 'push'), res, await readErrorBody(res.body));
  await res.body.dump();
  const min = Number(header(res.headers, 'oci-chunk-min-length') ?? 0);
  return { location: uploadLocation(header(res.headers, 'location'), res.url, `upload of ${what}`), minChunk: Number.isSafeInteger(min) && min > 0 ? min : 0 };
}

/** Cancel a session we will not finish; best effort, bounded: the registry purges stale ones anyway. */
export async function cancelUpload(t: UploadTarget, session: URL): Promise<void> {
  const timeout = AbortSignal.timeout(2000);
  try {
    const res = await t.transport.send({
      registry: t.registry,
      method: 'DELETE',
      url: session,
      scopes: t.scopes,
      signal: timeout,
      what: `cancel an upload to ${t.registry}/${t.repository}`,
      continuation: true,
    });
    await res.body.dump();
  } catch {
    // nothing to do: the session expires on its own
  }
}

/**
 * Upload `content` as `desc` through `session` (or a new one). The bytes are verified on the way
 * out, so a lying source fails with an IntegrityError naming the blob rather than a registry's
 * DIGEST_INVALID. A source that verifies itself (a bundle's or a registry's verified stream) is
 * sent as it is, hashed once: success then also waits for that source's own verdict at its end.
 */
export async function uploadBlob(
  t: UploadTarget,
  desc: Descriptor,
  content: Readable,
  session: URL | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const what = `blob ${desc.digest} of ${t.registry}/${t.repository}`;
  const selfVerifying = isSelfVerifying(content, desc);
  let location: URL | undefined = session;
  let sourceError: unknown;
  // The verdict of the stream that checks the bytes; settled once it ended or failed.
  let verdict: Promise<void> | undefined;
  // From the start: a source failing while the session opens must not be an unhandled 'error'.
  content.on('error', (e) => {
    if (!cutShort(e)) sourceError ??= e;
  });
  // A source that stalls must not hold the upload past an abort (a small blob is read whole first),
  // and the abort is what the caller sees, not the request machinery's AbortError.
  destroyOnAbort(content, signal);
  // What goes out: the source itself when it verifies itself, else the source hashed on the way.
  const verifiedContent = (): Readable => {
    if (selfVerifying) return content;
    const v = new VerifyStream(desc, what);
    pipeline(content, v, (e) => {
      if (e && !cutShort(e)) sourceError ??= e;
    });
    return v;
  };
  try {
    const chunkSize = t.chunks.sizeFor(t.registry);
    if (chunkSize !== undefined && desc.size > chunkSize) {
      const verified = verifiedContent();
      const state = { session: location };
      try {
        await uploadInChunks(t, desc, verified, { state, chunkSize, signal, start: () => startSession(t, desc, signal) });
      } finally {
        location = state.session;
      }
      return;
    }
    location ??= await startUpload(t, desc, signal);
    let body: Buffer | Readable;
    if (desc.size <= SMALL_BLOB_BYTES) {
      const bytes = await readAllLimited(content, desc.size, what).catch((e: unknown) => {
        // Leaving the read early destroys the source with an AbortError of its own; this is the reason.
        sourceError =
          e instanceof IntegrityError && e.code === 'MANIFEST_TOO_LARGE'
            ? new IntegrityError(`${what}: more than the expected ${desc.size} bytes`, { code: 'SIZE_MISMATCH' })
            : e;
        throw sourceError;
      });
      // A self-verifying source has ended, so its bytes matched; any other is hashed here.
      if (!selfVerifying) verifyBytes(bytes, desc, what);
      body = bytes;
    } else {
      const verified = verifiedContent();
      verdict = new Promise<void>((resolve, reject) => {
        finished(verified, { readable: true, writable: false }, (e) => (e ? reject(e) : resolve()));
      });
      // Read only after a 2xx. A stream cut because the registry answered early ends "prematurely",
      // which is no verdict: its real failures are 'error' events, caught above and by pipeline.
      verdict.catch(() => {});
      body = verified;
    }
    const res = await t.transport.send({
      registry: t.registry,
      method: 'PUT',
      url: withDigestParam(location, desc.digest),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body,
      scopes: t.scopes,
      signal,
      what: `upload ${what}`,
      continuation: false,
    });
    if (res.status === 413) {
      // Too large for one request: the registry, or a proxy in front of it, limits bodies.
      await res.body.dump();
      const lesson = t.chunks.refused(t.registry, desc.size);
      if (lesson.size === undefined) throw tooLarge(t, desc, res, desc.size, 0);
      if (lesson.first) {
        t.transport.warn('UPLOAD_CHUNKED', `${t.registry} refused a ${formatBytes(desc.size)} upload as too large (413): uploading larger blobs in chunks of ${formatBytes(lesson.size)} from now on (--chunk-size sets the size from the start)`);
      }
      await cancelUpload(t, location);
      location = undefined;
      if (Buffer.isBuffer(body)) {
        const state = { session: undefined as URL | undefined };
        try {
          await uploadInChunks(t, desc, [body], { state, chunkSize: lesson.size, signal, start: () => startSession(t, desc, signal) });
        } finally {
          location = state.session;
        }
        return;
      }
      throw new NetworkError(`cannot upload ${what} in one request: ${t.registry} refused it as too large (413) after it had begun to stream`, {
        code: 'UPLOAD_TOO_LARGE',
        hint: `the copy sends it again in chunks of ${formatBytes(lesson.size)}; --chunk-size SIZE uses chunks from the start`,
      });
    }
    if (res.status !== 201 && res.status !== 204 && res.status !== 200) {
      const err = await readErrorBody(res.body);
      if (!Buffer.isBuffer(body) && isRetryableStatus(res.status)) {
        throw new NetworkError(`cannot upload ${what}: ${t.registry} answered ${res.status} after the blob was streamed, and a stream cannot be replayed`, {
          code: 'STREAM_NOT_REPLAYABLE',
          cause: errorForResponse(subject(t, desc, 'push'), res, err),
          hint: 'retry the operation; the copy starts this blob again from its source',
        });
      }
      throw errorForResponse(subject(t, desc, 'push'), res, err);
    }
    await res.body.dump();
    // The registry has every byte; our own check of them ends with the stream (at once, normally).
    if (verdict) {
      await verdict.catch((e: unknown) => {
        if (sourceError !== undefined) throw sourceError;
        // Cut before its end (the registry answered first): its bytes went out, its check did not finish.
        if ((e as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw e;
        throw new IntegrityError(`${what}: the registry took it before its source finished checking the bytes`, {
          code: 'BLOB_UNVERIFIED',
          hint: 'the registry checked the digest itself; check the source (for a bundle: `airlock verify BUNDLE`) before relying on it',
        });
      });
    }
    const stored = header(res.headers, 'docker-content-digest');
    if (stored !== undefined && isDigest(stored) && digestAlgorithm(stored) === digestAlgorithm(desc.digest) && stored !== desc.digest) {
      throw new IntegrityError(`${what}: the registry stored it as ${stored}`, { code: 'DIGEST_MISMATCH' });
    }
    location = undefined;
  } catch (e) {
    if (!content.destroyed) content.destroy();
    // The source's own failure (a broken download, a lying bundle) explains more than the aborted
    // PUT; its 'error' event may land a tick after the request's rejection.
    if (sourceError === undefined) await new Promise((r) => setImmediate(r));
    throw sourceError ?? e;
  } finally {
    if (location !== undefined) await cancelUpload(t, location);
  }
}
