// copyGraph: the one function that moves content (oras-go copy.go). Pull into the cache, pack,
// push and re-host are all this walk: the graph is walked with walkGraph (manifests read once,
// through a manifest cache), children are copied first (blobs in parallel under a shared limiter),
// then the manifest itself, the root last — so a destination never holds a manifest whose content
// is missing. An error says whether the source or the destination failed.
import { Readable, Transform } from 'node:stream';
import { AbortedError, AirlockError, NetworkError } from './core/errors.ts';
import { isManifestDescriptor, type Descriptor } from './core/manifest.ts';
import { isSelfVerifying, markSelfVerifying } from './content/verify-stream.ts';
import { ManifestCache, walkGraph, type ManifestNode } from './content/graph.ts';
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
  /**
   * Replaces fetch+push for blobs (a resumable ingest into a local store, a bundle's slot). Its
   * errors should already say which side failed (see blame); others are taken as the source's.
   */
  transferBlob?: (desc: Descriptor, onBytes: (n: number) => void, signal: AbortSignal | undefined) => Promise<void>;
  /** Digests already copied in this run (shared across images): skipped without asking the destination. */
  done?: Map<string, Promise<void>>;
  /** Whole-blob attempts on network errors (a streamed body cannot be replayed inside one request). */
  attempts?: number;
  /** Where manifests are read from: share one across the images of a run (default: one per call). */
  manifests?: ManifestCache;
}

export interface SiblingUploads {
  /** The destination repository of this copy. */
  repository: string;
  /** digest → the repository uploading it and whether that upload succeeded. */
  uploads: Map<string, { repository: string; done: Promise<boolean> }>;
}

export interface CopyResult {
  root: Descriptor;
  /** Every descriptor copied or found, root included, in copy order. */
  nodes: Descriptor[];
}

export type CopySide = 'source' | 'destination';

/**
 * Say which side of a copy an error came from: an AirlockError gets `side` and its message is
 * prefixed with the storage's name, once (a shared failure is rethrown to several images).
 */
export function blame(e: unknown, side: CopySide, storage: ReadOnlyStorage): unknown {
  if (e instanceof AirlockError && !(e instanceof AbortedError) && e.side === undefined) {
    e.side = side;
    // "source: … not found in reg/repo", or "the bundle being written (destination): …".
    e.message = storage.label === undefined || e.message.includes(storage.label) ? `${side}: ${e.message}` : `${storage.label} (${side}): ${e.message}`;
  }
  return e;
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
  const manifests = (options.manifests ?? new ManifestCache()).wrap(src);
  // A manifest being copied by this call: settled when it is at the destination (or failed).
  const mine = new Map<string, { settle: (e?: unknown) => void }>();
  const retag = options.tag !== undefined;
  try {
    await walkGraph(manifests, root, {
      signal: options.signal,
      image: ctx.image,
      concurrent: true,
      selectChildren: options.selectChildren,
      visit: async (desc, parent) => {
        const isRoot = parent === undefined;
        // The root is always (re)written when a tag is requested, so the tag moves even if content exists.
        const shared = isRoot && retag ? undefined : ctx.done.get(desc.digest);
        if (shared) {
          await shared;
          return false;
        }
        if (!isManifestDescriptor(desc)) {
          await track(ctx, desc, copyBlob(ctx, desc));
          return false;
        }
        let settle!: (e?: unknown) => void;
        const copied = new Promise<void>((resolve, reject) => (settle = (e) => (e === undefined ? resolve() : reject(e))));
        copied.catch(() => {});
        mine.set(desc.digest, { settle });
        if (!(isRoot && retag)) ctx.done.set(desc.digest, copied);
        return true;
      },
      leave: async (desc, node) => {
        await copyManifest(ctx, desc, node, desc.digest === root.digest);
        mine.get(desc.digest)?.settle();
        mine.delete(desc.digest);
      },
    });
  } catch (e) {
    // Images waiting on a manifest this call was copying fail with it; a later copy starts afresh.
    for (const [digest, m] of mine) {
      ctx.done.delete(digest);
      m.settle(e);
    }
    throw blame(e, 'source', src);
  }
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

/** Record a blob's copy as shared work: other images wait for it; a failure lets a later copy retry. */
async function track(ctx: Ctx, desc: Descriptor, work: Promise<void>): Promise<void> {
  ctx.done.set(desc.digest, work);
  try {
    await work;
  } catch (e) {
    if (ctx.done.get(desc.digest) === work) ctx.done.delete(desc.digest);
    throw e;
  }
}

async function copyManifest(ctx: Ctx, desc: Descriptor, node: ManifestNode, isRoot: boolean): Promise<void> {
  const { signal } = ctx.opts;
  const tag = isRoot ? ctx.opts.tag : undefined;
  const how = await ctx.limiter.run(async () => {
    try {
      if (tag !== undefined && isReferencePusher(ctx.dst)) {
        await ctx.dst.pushReference(desc, node.bytes, tag, { signal });
        return 'copied' as const;
      }
      if (await ctx.dst.exists(desc, { signal })) return 'exists' as const;
      await ctx.dst.push(desc, Readable.from([node.bytes]), { signal });
      return 'copied' as const;
    } catch (e) {
      throw blame(e, 'destination', ctx.dst);
    }
  }, signal);
  ctx.nodes.push(desc);
  ctx.opts.onEvent?.({ type: 'manifest-done', image: ctx.image, digest: desc.digest, size: desc.size, how });
}

async function copyBlob(ctx: Ctx, desc: Descriptor): Promise<void> {
  const { signal, onEvent } = ctx.opts;
  const image = ctx.image;
  const sib = ctx.opts.siblings;
  const waitFor = await ctx.limiter.run(async () => {
    if (await existsAtDestination(ctx, desc)) {
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
      if (uploaded && isMounter(ctx.dst)) {
        let mounted: boolean;
        try {
          mounted = await ctx.dst.mount(desc, waitFor.repository, { signal });
        } catch (e) {
          throw blame(e, 'destination', ctx.dst);
        }
        if (mounted) {
          onEvent?.({ type: 'blob-done', image, digest: desc.digest, size: desc.size, how: 'mounted' });
          return;
        }
      }
      await sendBlob(ctx, desc);
    }, signal);
  }
  ctx.nodes.push(desc);
}

async function existsAtDestination(ctx: Ctx, desc: Descriptor): Promise<boolean> {
  try {
    return await ctx.dst.exists(desc, { signal: ctx.opts.signal });
  } catch (e) {
    throw blame(e, 'destination', ctx.dst);
  }
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
      if (ctx.opts.transferBlob) await ctx.opts.transferBlob(desc, onBytes, signal);
      else await pushFrom(ctx, desc, onBytes);
      break;
    } catch (e) {
      // Take back the progress of the failed attempt so totals stay truthful.
      if (sent > 0) onEvent?.({ type: 'blob-progress', image, digest: desc.digest, bytes: -sent });
      if (attempt >= attempts || !(e instanceof NetworkError) || signal?.aborted) throw blame(e, 'source', ctx.src);
    }
  }
  onEvent?.({ type: 'blob-done', image, digest: desc.digest, size: desc.size, how: 'copied' });
}

/** Stream a blob from the source into the destination; a failure is blamed on the side that failed. */
async function pushFrom(ctx: Ctx, desc: Descriptor, onBytes: (n: number) => void): Promise<void> {
  const { signal } = ctx.opts;
  let stream: Readable;
  try {
    stream = await ctx.src.fetch(desc, { signal });
  } catch (e) {
    throw blame(e, 'source', ctx.src);
  }
  let sourceFailed = false;
  stream.once('error', () => (sourceFailed = true));
  try {
    await ctx.dst.push(desc, counting(stream, desc, onBytes), { signal });
  } catch (e) {
    // A destination that gave up does not read on: release the source (its connection, its file).
    stream.destroy();
    throw blame(e, sourceFailed ? 'source' : 'destination', sourceFailed ? ctx.src : ctx.dst);
  }
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
