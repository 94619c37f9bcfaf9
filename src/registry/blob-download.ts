// Blob downloads that survive a dropped connection: when the body breaks (or ends short) the
// download continues with `Range: bytes=N-` from the byte reached, so the consumer (and the
// hashing behind it) sees one unbroken sequence of bytes. Bodies are pumped: handed to a sink
// chunk by chunk from the transport's reused read buffers (see lean-http.ts); `openBlobStream`
// wraps that in a Readable for stream consumers.
import { Readable } from 'node:stream';
import { AbortedError, IntegrityError, NetworkError, isAirlockError } from '../core/errors.ts';
import type { Descriptor } from '../core/manifest.ts';
import { pumpedStream } from '../content/pumped.ts';
import type { PumpedBody } from '../content/types.ts';
import { errorForResponse, readErrorBody, type ErrorSubject } from './registry-errors.ts';
import { errorCode, retryingNote } from './retry.ts';
import { formatBytes } from '../core/bytes.ts';
import { TransferStallError } from './transfer-watch.ts';
import { header, type Headers, type SendRequest, type Transport } from './transport.ts';

/** How many times one download may be resumed before it counts as a network failure. */
export const MAX_RESUMES = 5;

/** Why a body broke off, in words: airlock's own cut says what it saw; anything else is a broken connection. */
function breakReason(failure: unknown, registry: string): string {
  if (failure instanceof TransferStallError) return failure.reason;
  if (failure === undefined) return `${registry} ended the body early`;
  const code = errorCode(failure);
  return `the connection to ${registry} broke${code !== undefined ? ` (${code})` : ''}`;
}

export interface BlobSource {
  transport: Transport;
  registry: string;
  repository: string;
  scopes: string[];
}

/** One answer's body, and how many of its first bytes to drop. */
interface Answer extends PumpedBody {
  skip: number;
}

function subjectFor(src: BlobSource, desc: Descriptor): ErrorSubject {
  return { registry: src.registry, repository: src.repository, kind: 'blob', reference: desc.digest, action: 'fetch' };
}

function blobName(src: BlobSource, desc: Descriptor): string {
  return `blob ${desc.digest} of ${src.registry}/${src.repository}`;
}

/**
 * Bytes to skip at the front of a 200/206 answer to a GET from `offset`; undefined for any other
 * status. A 206 must start exactly at `offset`.
 */
function skipFor(src: BlobSource, desc: Descriptor, offset: number, status: number, headers: Headers): number | undefined {
  if (status === 200) {
    // A whole blob of another size is not this descriptor's content. Caught here, it is an
    // IntegrityError; later the short body would read as a broken connection and be resumed.
    const length = header(headers, 'content-length');
    const encoding = header(headers, 'content-encoding') ?? 'identity';
    if (length !== undefined && encoding === 'identity' && Number(length) !== desc.size) {
      throw new IntegrityError(`${blobName(src, desc)}: the registry holds ${length} bytes, expected ${desc.size}`, { code: 'SIZE_MISMATCH' });
    }
    return offset;
  }
  if (status !== 206 || offset === 0) return undefined;
  const range = /^bytes (\d+)-\d*\/(?:\d+|\*)$/.exec(header(headers, 'content-range') ?? '');
  if (range === null || Number(range[1]) !== offset) {
    throw new IntegrityError(`${blobName(src, desc)}: asked for bytes from ${offset} on, the server answered Content-Range "${header(headers, 'content-range') ?? ''}"`, {
      code: 'RANGE_MISMATCH',
    });
  }
  return 0;
}

async function openAt(src: BlobSource, desc: Descriptor, offset: number, signal: AbortSignal | undefined, continuation: boolean): Promise<Answer> {
  const req: SendRequest = {
    registry: src.registry,
    method: 'GET',
    path: `/v2/${src.repository}/blobs/${desc.digest}`,
    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    scopes: src.scopes,
    signal,
    what: `fetch ${blobName(src, desc)}`,
    continuation,
  };
  const answer = await src.transport.getForPump(req);
  if ('lean' in answer) {
    const { lean } = answer;
    let skip: number | undefined;
    try {
      skip = skipFor(src, desc, offset, lean.status, lean.headers);
    } catch (e) {
      lean.discard();
      throw e;
    }
    // getForPump hands over only 200 and 206 answers.
    return { pump: (sink) => lean.pump(sink), cancel: () => lean.discard(), skip: skip ?? 0 };
  }
  const { res } = answer;
  let skip: number | undefined;
  try {
    skip = skipFor(src, desc, offset, res.status, res.headers);
  } catch (e) {
    await res.body.dump();
    throw e;
  }
  if (skip === undefined) throw errorForResponse(subjectFor(src, desc), res, await readErrorBody(res.body));
  return { ...pumpedStream(res.body), skip };
}

/**
 * Start downloading the blob's bytes from `offset` on, unverified (the caller hashes them,
 * possibly continuing a digest of the bytes before `offset`). The first request is answered
 * before this resolves, so a missing blob or a refusing registry rejects here.
 */
export async function openBlob(src: BlobSource, desc: Descriptor, offset: number, signal?: AbortSignal): Promise<PumpedBody> {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > desc.size) {
    throw new RangeError(`offset ${offset} is outside blob ${desc.digest} of ${desc.size} bytes`);
  }
  let current = offset === desc.size ? undefined : await openAt(src, desc, offset, signal, false);
  let cancelled = false;
  const what = blobName(src, desc);
  return {
    cancel() {
      cancelled = true;
      current?.cancel();
    },
    async pump(sink) {
      let position = offset;
      for (let resumes = 0; current !== undefined; ) {
        let skip = current.skip;
        let failure: unknown;
        try {
          await current.pump((raw) => {
            let chunk = raw;
            if (skip > 0) {
              if (chunk.length <= skip) {
                skip -= chunk.length;
                return;
              }
              chunk = chunk.subarray(skip);
              skip = 0;
            }
            if (position + chunk.length > desc.size) {
              throw new IntegrityError(`${what}: more than the expected ${desc.size} bytes`, { code: 'SIZE_MISMATCH' });
            }
            position += chunk.length;
            return sink(chunk);
          });
        } catch (e) {
          failure = e;
          current.cancel();
        }
        if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
        if (cancelled) throw new AbortedError(`the download of ${what} was cancelled`, { cause: failure });
        if (failure !== undefined && isAirlockError(failure)) throw failure;
        if (position >= desc.size) return;
        // The body broke, stalled, crawled, or ended cleanly but short (a proxy that closed without a length check).
        resumes++;
        const reason = breakReason(failure, src.registry);
        if (resumes > MAX_RESUMES) {
          const stalled = failure instanceof TransferStallError ? failure : undefined;
          const message = stalled
            ? `cannot fetch ${what}: ${reason} (${resumes} attempts, the last at byte ${position} of ${desc.size})`
            : `cannot fetch ${what}: the connection broke ${resumes} times, last at byte ${position} of ${desc.size}`;
          throw new NetworkError(message, {
            code: stalled?.code ?? 'DOWNLOAD_INTERRUPTED',
            cause: failure,
            hint:
              stalled?.code === 'TRANSFER_TOO_SLOW'
                ? `check the network path to ${src.registry}, or allow a slower link with a lower --min-rate (0 turns the check off); a retried copy resumes where it stopped`
                : `check the network path to ${src.registry}; the copy can be retried and resumes where it stopped`,
          });
        }
        src.transport.warn('REGISTRY_RETRY', `${reason} while downloading ${what} (after ${formatBytes(position)}); ${retryingNote(resumes, MAX_RESUMES)}`);
        current = await openAt(src, desc, position, signal, true);
      }
    },
  };
}

/** Bytes a stream reader may have buffered before the download waits for it. */
const STREAM_HIGH_WATER = 1024 * 1024;

/**
 * `openBlob` as a Readable of the blob's bytes from `offset` on, for stream consumers (each chunk
 * is copied out of the transport's read buffer). A reader that stops early cancels the download.
 */
export async function openBlobStream(src: BlobSource, desc: Descriptor, offset: number, signal?: AbortSignal): Promise<Readable> {
  const body = await openBlob(src, desc, offset, signal);
  let wake: (() => void) | undefined;
  let started = false;
  const stream: Readable = new Readable({
    highWaterMark: STREAM_HIGH_WATER,
    read() {
      if (started) {
        const w = wake;
        wake = undefined;
        w?.();
        return;
      }
      started = true;
      body
        .pump((chunk) => {
          if (stream.destroyed) throw new AbortedError('the reader stopped');
          if (!stream.push(Buffer.from(chunk))) return new Promise<void>((resolve) => (wake = resolve));
        })
        .then(
          () => stream.push(null),
          (e: unknown) => stream.destroy(e as Error),
        );
    },
    destroy(error, callback) {
      body.cancel();
      const w = wake;
      wake = undefined;
      w?.();
      callback(error);
    },
  });
  return stream;
}
