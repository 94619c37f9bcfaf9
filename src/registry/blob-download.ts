// Blob downloads that survive a dropped connection: when the body breaks (or ends short) the
// download continues with `Range: bytes=N-` from the byte reached, so the consumer (and the
// VerifyStream hashing behind it) sees one unbroken sequence of bytes.
import { Readable } from 'node:stream';
import { AbortedError, IntegrityError, NetworkError, isAirlockError } from '../core/errors.ts';
import type { Descriptor } from '../core/manifest.ts';
import { errorForResponse, readErrorBody, type ErrorSubject } from './registry-errors.ts';
import { header, type SendResponse, type Transport } from './transport.ts';

/** How many times one download may be resumed before it counts as a network failure. */
export const MAX_RESUMES = 5;

export interface BlobSource {
  transport: Transport;
  registry: string;
  repository: string;
  scopes: string[];
}

interface OpenBody {
  body: SendResponse['body'];
  /** Bytes to drop from the front: the server ignored Range and sent the blob from its start. */
  skip: number;
}

function subjectFor(src: BlobSource, desc: Descriptor): ErrorSubject {
  return { registry: src.registry, repository: src.repository, kind: 'blob', reference: desc.digest, action: 'fetch' };
}

async function openAt(src: BlobSource, desc: Descriptor, offset: number, signal: AbortSignal | undefined, continuation: boolean): Promise<OpenBody> {
  const what = `blob ${desc.digest} of ${src.registry}/${src.repository}`;
  const res = await src.transport.send({
    registry: src.registry,
    method: 'GET',
    path: `/v2/${src.repository}/blobs/${desc.digest}`,
    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    scopes: src.scopes,
    signal,
    what: `fetch ${what}`,
    continuation,
  });
  if (res.status === 200) return { body: res.body, skip: offset };
  if (res.status === 206 && offset > 0) {
    const range = /^bytes (\d+)-\d*\/(?:\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '');
    if (range === null || Number(range[1]) !== offset) {
      await res.body.dump();
      throw new IntegrityError(`${what}: asked for bytes from ${offset} on, the server answered Content-Range "${header(res.headers, 'content-range') ?? ''}"`, {
        code: 'RANGE_MISMATCH',
      });
    }
    return { body: res.body, skip: 0 };
  }
  throw errorForResponse(subjectFor(src, desc), res, await readErrorBody(res.body));
}

async function* resumingChunks(
  src: BlobSource,
  desc: Descriptor,
  start: number,
  first: OpenBody,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer> {
  const what = `blob ${desc.digest} of ${src.registry}/${src.repository}`;
  let offset = start;
  let current = first;
  for (let resumes = 0; ; ) {
    let failure: unknown;
    try {
      let skip = current.skip;
      for await (const raw of current.body) {
        let chunk = raw as Buffer;
        if (skip > 0) {
          if (chunk.length <= skip) {
            skip -= chunk.length;
            continue;
          }
          chunk = chunk.subarray(skip);
          skip = 0;
        }
        offset += chunk.length;
        if (offset > desc.size) {
          throw new IntegrityError(`${what}: more than the expected ${desc.size} bytes`, { code: 'SIZE_MISMATCH' });
        }
        yield chunk;
      }
    } catch (e) {
      failure = e;
    }
    if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
    if (failure !== undefined && isAirlockError(failure)) throw failure;
    if (offset >= desc.size) return;
    // The body broke, or ended cleanly but short (a proxy that closed without a length check).
    resumes++;
    if (resumes > MAX_RESUMES) {
      throw new NetworkError(`cannot fetch ${what}: the connection broke ${resumes} times, last at byte ${offset} of ${desc.size}`, {
        code: 'DOWNLOAD_INTERRUPTED',
        cause: failure,
        hint: `check the network path to ${src.registry}; the copy can be retried and resumes where it stopped`,
      });
    }
    current = await openAt(src, desc, offset, signal, true);
  }
}

/**
 * The blob's bytes from `offset` on, unverified (the caller hashes them, possibly continuing a
 * digest of the bytes before `offset`). The first request is made before returning, so a missing
 * blob rejects the promise instead of erroring the stream.
 */
export async function openBlobStream(src: BlobSource, desc: Descriptor, offset: number, signal?: AbortSignal): Promise<Readable> {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > desc.size) {
    throw new RangeError(`offset ${offset} is outside blob ${desc.digest} of ${desc.size} bytes`);
  }
  if (offset === desc.size) return Readable.from([], { objectMode: false });
  const first = await openAt(src, desc, offset, signal, false);
  return Readable.from(resumingChunks(src, desc, offset, first, signal), { objectMode: false });
}
