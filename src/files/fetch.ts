// The bytes of a file of `files:`, from where the spec says: a local path (relative to airlock.yaml)
// read and hashed in chunks, or a URL streamed through the chart repositories' HTTP client (its TLS
// settings and credentials) into the blob cache while it is hashed — never held whole in memory, at
// most `limit` bytes. lock pins what they hash to; pack takes them from the cache, or fetches them
// again and refuses them when they are no longer what the lock pinned.
import { open, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AbortedError, isAirlockError, NotFoundError, throwIfAborted, UsageError } from '../core/errors.ts';
import type { Digest } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import { redactUrl } from '../core/redact.ts';
import type { FileStore } from '../content/file-store.ts';
import type { ChartHttpClient } from '../helm/http-client.ts';
import { networkErrorFor } from '../registry/registry-errors.ts';
import { fileError } from '../util/file-error.ts';
import { FILE_LAYER_MEDIA_TYPE } from './artifact.ts';

/** The largest file airlock carries (a k3s airgap image tarball is ~600 MB; a whole OS image fits). */
export const MAX_FILE_BYTES = 32 * 1024 ** 3;

const CHUNK = 1024 * 1024;

export interface FileSourceContext {
  http: ChartHttpClient;
  /** The folder of airlock.yaml: paths are relative to it. */
  baseDir: string;
  /** The blob cache, where a downloaded file is kept (lock: for pack; pack: for the bundle). Without it, a URL is only hashed. */
  store?: FileStore | undefined;
  signal?: AbortSignal | undefined;
}

/** Where a file comes from, as the spec and the lock write it. */
export interface FileSource {
  name: string;
  path?: string | undefined;
  url?: string | undefined;
}

/** `file k3s (https://…/k3s)`: how errors name a file. */
export function describeFile(f: FileSource): string {
  return `file ${f.name} (${f.path !== undefined ? `path ${f.path}` : redactUrl(f.url!)})`;
}

/** The file's bytes as a stream: a local file, or the body of a GET. `limit` refuses a declared length above it. */
export async function openFileSource(f: FileSource, ctx: FileSourceContext, limit: number): Promise<{ body: Readable; host?: string }> {
  const what = describeFile(f);
  if (f.path !== undefined) {
    const abs = resolve(ctx.baseDir, f.path);
    return { body: Readable.from(readChunks(abs, what, ctx.signal), { objectMode: false }) };
  }
  try {
    const { body, url } = await ctx.http.stream(f.url!, { what, limit, signal: ctx.signal });
    return { body, host: url.host };
  } catch (e) {
    // The client names a 404 as a chart's; here it is a file's.
    if (e instanceof NotFoundError && e.code === 'CHART_NOT_FOUND') throw new NotFoundError(e.message, { code: 'FILE_NOT_FOUND', cause: e, hint: 'check the url in airlock.yaml' });
    throw e;
  }
}

/**
 * The file's sha256 and size, its bytes kept in `ctx.store` (when given) as a blob of its digest.
 * Streamed; more than `limit` bytes is refused (TOO_LARGE).
 */
export async function fetchFile(f: FileSource, ctx: FileSourceContext, limit = MAX_FILE_BYTES): Promise<{ digest: Digest; size: number }> {
  const what = describeFile(f);
  const { body, host } = await openFileSource(f, ctx, limit);
  try {
    // A local file is only hashed: pack reads it again, and it is not worth a copy in the cache yet.
    if (ctx.store && f.url !== undefined) {
      const d = await ctx.store.pushUnknown(body, { limit, what, mediaType: FILE_LAYER_MEDIA_TYPE, signal: ctx.signal });
      return { digest: d.digest, size: d.size };
    }
    return await hashStream(body, limit, what, ctx.signal);
  } catch (e) {
    body.destroy();
    throw asNetworkError(e, host, what, ctx.signal);
  }
}

/**
 * Put the file's bytes into `store` as the blob the lock pins (`layer`), unless it holds it already.
 * Refused when they are no longer what the lock pinned: `onChanged` makes the error.
 */
export async function stageFileBytes(
  f: FileSource,
  layer: Descriptor,
  store: FileStore,
  ctx: Omit<FileSourceContext, 'store'>,
  onChanged: (now: { digest: Digest; size: number } | 'larger') => Error,
  onDownloaded?: (n: number) => void,
): Promise<void> {
  if (await store.exists(layer, { signal: ctx.signal })) return;
  const what = describeFile(f);
  const { body, host } = await openFileSource(f, ctx, layer.size).catch((e: unknown) => {
    if (isAirlockError(e) && e.code === 'TOO_LARGE') throw onChanged('larger');
    throw e;
  });
  let got: Descriptor;
  try {
    got = await store.pushUnknown(body, { limit: layer.size, what, mediaType: FILE_LAYER_MEDIA_TYPE, signal: ctx.signal });
  } catch (e) {
    body.destroy();
    if (isAirlockError(e) && e.code === 'TOO_LARGE') throw onChanged('larger');
    throw asNetworkError(e, host, what, ctx.signal);
  }
  if (f.url !== undefined) onDownloaded?.(got.size);
  if (got.digest !== layer.digest || got.size !== layer.size) throw onChanged({ digest: got.digest, size: got.size });
}

async function hashStream(body: AsyncIterable<Buffer>, limit: number, what: string, signal: AbortSignal | undefined): Promise<{ digest: Digest; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    throwIfAborted(signal);
    size += chunk.length;
    if (size > limit) throw new UsageError(`${what} is more than ${limit} bytes, the most airlock carries`, { code: 'INPUT_TOO_LARGE' });
    h.update(chunk);
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

/** A failure of the body on its way (a reset, a cut connection) as the network error it is. */
function asNetworkError(e: unknown, host: string | undefined, what: string, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return new AbortedError('interrupted', { cause: signal.reason });
  if (isAirlockError(e) || host === undefined) return e;
  return networkErrorFor(e, host, `fetch ${what}`);
}

/** A local file's bytes in chunks; a missing one, or one that is not a regular file, named. */
async function* readChunks(abs: string, what: string, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  let fh: FileHandle;
  try {
    fh = await open(abs, 'r');
  } catch (e) {
    const err = fileError(e, abs, 'read');
    if (err instanceof NotFoundError) throw new NotFoundError(`${what}: ${abs} does not exist`, { code: 'FILE_NOT_FOUND', cause: e, hint: 'paths are relative to airlock.yaml' });
    throw err;
  }
  try {
    if (!(await fh.stat()).isFile()) throw new UsageError(`${what}: ${abs} is not a regular file`, { code: 'NOT_A_REGULAR_FILE' });
    for (;;) {
      throwIfAborted(signal);
      // A fresh buffer each time: the consumer may keep the chunk until it is written.
      const buf = Buffer.allocUnsafe(CHUNK);
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } catch (e) {
    throw fileError(e, abs, 'read');
  } finally {
    await fh.close();
  }
}
