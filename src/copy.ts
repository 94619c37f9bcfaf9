// copyGraph: the one function that moves content (oras-go copy.go). Pull into the cache, pack,
// push and re-host are all this walk: manifests are fetched and parsed, their children copied
// first (blobs in parallel under a shared limiter), then the manifest itself, the root last —
// so a destination never holds a manifest whose content is missing.
import { Readable, Transform } from 'node:stream';
import { NetworkError, throwIfAborted } from './core/errors.ts';
import { childrenOf, isManifestDescriptor, MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from './core/manifest.ts';
import { isSelfVerifying, markSelfVerifying, readAllLimited } from './content/verify-stream.ts';
import { isMounter, isReferencePusher, type ReadOnlyStorage, type Storage } from './content/types.ts';
import { Limiter } from './util/limiter.ts';

export type CopyEvent =
  | { type: 'blob-start'; image: string; digest: string; size: number }
  | { type: 'blob-progress'; image: string; digest: string; bytes: number }
  | { type: 'blob-done'; image: string; digest: string; size: number; how: 'copied' | 'exists' | 'mounted' }
  | { type: 'manifest-done'; image: string; digest: string; size: number; how: 'copied' | 'exists' };

export interface CopyOptions {
  /** Shared across calls so several images copy under one concurrency budget. */
  limiter?: Limiter;
  signal?: AbortSignal | undefined;
  /** Names the image in events and errors (its source reference). */
  image?: string;
  /** Tag (or digest) to give the root on a destination that supports it. */
  tag?: string | undefined;
  onEvent?: (e: CopyEvent) => void;
  /**
   * Choose which children of a manifest to follow (platform filtering). Default: all.
   * Only called for indexes; an image manifest's config and layers are always all copied.
   */
  selectChildren?: (parent: Descriptor, children: Descriptor[]) => Descriptor[];
  /**
   * Shared by copies into sibling repositories of one registry: a blob uploaded into one of them
   * is mounted into the others instead of being uploaded again, even while the upload is running.
   */
  siblings?: SiblingUploads;
  /** Replaces fetch+push for blobs (e.g. a resumable ingest into a local store). */
  transferBlob?: (desc: Descriptor, onBytes: (n: number) => void) => Promise<void>;
  /** Digests already copied in this run (shared across images): skipped without asking the destination. */
  done?: Map<string, Promise<void>>;
  /** Whole-blob attempts on network errors (a streamed body cannot be replayed inside one request). */
  attempts?: number;
}

export interface SiblingUploads {
  /** The destination repository of this copy. */
  repository: string;
  /** digest → the repository uploading it and whether that upload succeeded. */
  uploads: Map<string, { repository: string; done: Promise<boolean> }>;
}

export interface CopyResult {
  root: Descriptor;
  /** Every descriptor reached, root included, in copy order. */
  nodes: Descriptor[];
}

/** Copy the graph under `root` from `src` to `dst`; existing content at dst counts as done. */
export async function copyGraph(src: ReadOnlyStorage, dst: Storage, root: Descriptor, options: CopyOptions = {}): Promise<CopyResult> {
  const ctx: Ctx = {
    src,
    dst,
    opts: options,
    limiter: options.limiter ?? new Limiter(8),
    done: options.done ?? new Map(),
    image: options.image ?? root.digest,
    nodes: [],
  };
  await copyNode(ctx, root, true);
  return { root, nodes: ctx.nodes };
}

interface Ctx {
  src: ReadOnlyStorage;
  dst: Storage;
  opts: CopyOptions;
  limiter: Limiter;
  done: Map<string, Promise<void>>;
  image: string;
  nodes: Descriptor[];
}

async function copyNode(ctx: Ctx, desc: Descriptor, isRoot: boolean): Promise<void> {
  throwIfAborted(ctx.opts.signal);
  // The root is always (re)written when a tag is requested, so the tag moves even if content exists.
  const key = desc.digest;
  const pending = isRoot && ctx.opts.tag !== undefined ? undefined : ctx.done.get(key);
  if (pending) {
    await pending;
    return;
  }
  const work = isManifestDescriptor(desc) ? copyManifest(ctx, desc, isRoot) : copyBlob(ctx, desc);
  if (!(isRoot && ctx.opts.tag !== undefined)) ctx.done.set(key, work);
  try {
    await work;
  } catch (e) {
    ctx.done.delete(key);
    throw e;
  }
}

async function copyManifest(ctx: Ctx, desc: Descriptor, isRoot: boolean): Promise<void> {
  const what = `manifest ${desc.digest} of ${ctx.image}`;
  const bytes = await ctx.limiter.run(async () => readAllLimited(await ctx.src.fetch(desc, { signal: ctx.opts.signal }), MAX_MANIFEST_BYTES, what), ctx.opts.signal);
  const parsed = parseManifest(bytes, desc.mediaType, what);
  let children = childrenOf(parsed);
  if (parsed.kind === 'index' && ctx.opts.selectChildren) children = ctx.opts.selectChildren(desc, children);
  await Promise.all(children.map((c) => copyNode(ctx, c, false)));

  const tag = isRoot ? ctx.opts.tag : undefined;
  const how = await ctx.limiter.run(async () => {
    if (tag !== undefined && isReferencePusher(ctx.dst)) {
      await ctx.dst.pushReference(desc, bytes, tag, { signal: ctx.opts.signal });
      return 'copied' as const;
    }
    if (await ctx.dst.exists(desc, { signal: ctx.opts.signal })) return 'exists' as const;
    await ctx.dst.push(desc, streamOf(bytes), { signal: ctx.opts.signal });
    return 'copied' as const;
  }, ctx.opts.signal);
  ctx.nodes.push(desc);
  ctx.opts.onEvent?.({ type: 'manifest-done', image: ctx.image, digest: desc.digest, size: desc.size, how });
}

async function copyBlob(ctx: Ctx, desc: Descriptor): Promise<void> {
  const { signal, onEvent } = ctx.opts;
  const image = ctx.image;
  const sib = ctx.opts.siblings;
  const waitFor = await ctx.limiter.run(async () => {
    if (await ctx.dst.exists(desc, { signal })) {
      onEvent?.({ type: 'blob-done', image, digest: desc.digest, size: desc.size, how: 'exists' });
      return undefined;
    }
    const other = sib?.uploads.get(desc.digest);
    if (other && other.repository !== sib!.repository && isMounter(ctx.dst)) return other;
    let settle: ((ok: boolean) => void) | undefined;
    if (sib && !other) sib.uploads.set(desc.digest, { repository: sib.repository, done: new Promise<boolean>((r) => (settle = r)) });
    try {
      await sendBlob(ctx, desc);
      settle?.(true);
    } catch (e) {
      settle?.(false);
      throw e;
    }
    return undefined;
  }, signal);
  if (waitFor) {
    // A sibling repository is uploading it: wait without a slot (holding one here starved the
    // uploads of other blobs), then mount it; if that upload failed or the mount is refused, upload.
    const uploaded = await waitFor.done;
    await ctx.limiter.run(async () => {
      if (uploaded && isMounter(ctx.dst) && (await ctx.dst.mount(desc, waitFor.repository, { signal }))) {
        onEvent?.({ type: 'blob-done', image, digest: desc.digest, size: desc.size, how: 'mounted' });
        return;
      }
      await sendBlob(ctx, desc);
    }, signal);
  }
  ctx.nodes.push(desc);
}

/** Send one blob (retried whole on network errors); emits blob-start, progress and blob-done. */
async function sendBlob(ctx: Ctx, desc: Descriptor): Promise<void> {
  const { signal, onEvent } = ctx.opts;
  const image = ctx.image;
  onEvent?.({ type: 'blob-start', image, digest: desc.digest, size: desc.size });
  const attempts = Math.max(1, ctx.opts.attempts ?? 3);
  for (let attempt = 1; ; attempt++) {
    let sent = 0;
    const onBytes = (n: number): void => {
      sent += n;
      onEvent?.({ type: 'blob-progress', image, digest: desc.digest, bytes: n });
    };
    try {
      if (ctx.opts.transferBlob) await ctx.opts.transferBlob(desc, onBytes);
      else await ctx.dst.push(desc, counting(await ctx.src.fetch(desc, { signal }), desc, onBytes), { signal });
      break;
    } catch (e) {
      // Take back the progress of the failed attempt so totals stay truthful.
      if (sent > 0) onEvent?.({ type: 'blob-progress', image, digest: desc.digest, bytes: -sent });
      if (attempt >= attempts || !(e instanceof NetworkError) || signal?.aborted) throw e;
    }
  }
  onEvent?.({ type: 'blob-done', image, digest: desc.digest, size: desc.size, how: 'copied' });
}

function counting(stream: Readable, desc: Descriptor, onBytes: (n: number) => void): Readable {
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
  stream.on('error', (e) => t.destroy(e));
  // Every byte passes and a source error fails it: it verifies itself exactly when its source does.
  if (isSelfVerifying(stream, desc)) markSelfVerifying(t, desc);
  return stream.pipe(t);
}

function streamOf(bytes: Uint8Array): Readable {
  return Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
}
