// pack: lock → one deterministic bundle tar, with a content-addressed cache beside it.
// Manifests (and configs) come first, so the bundle is planned before a layer is fetched; then
// every image is copied (copyGraph) into its bundle: each blob downloaded straight into its place in
// the bundle's temp file, in parallel, verified as it streams, while the cache keeps a copy (reused
// by later packs, resumed after an interruption); blobs already in the cache are copied from there.
// The temp file is renamed at the end. A split bundle (volumes, written in one sequential pass) is
// copied into the cache first.
//
// `since` packs a delta against a base (base.ts). Blobs the base has are neither downloaded
// (configs aside: small, and read for platforms) nor carried.
//
// `tools` (or `tools:` in the spec) carries airlock and the pinned helm for the platforms asked for
// (src/tools/), found before anything is downloaded; a delta carries them too (it does not rely on
// its base for them).
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { parseReference } from '../core/reference.ts';
import { collisions } from '../rewrite/mapping.ts';
import { isManifestDescriptor, type Descriptor } from '../core/manifest.ts';
import { FileStore } from '../content/file-store.ts';
import { ManifestCache } from '../content/graph.ts';
import { copyGraph, type CopyEvent } from '../copy.ts';
import type { OpenRepository } from '../lock/lock.ts';
import { lockAndWrite, lockPathFor } from '../lock/lock-file.ts';
import { diffLock, readLock, type Lock } from '../spec/lock.ts';
import { loadSpec, withPlatforms, type Spec } from '../spec/spec.ts';
import { writeBundle, type WriteBundleResult } from '../bundle/write.ts';
import type { BundleImageInput, DeltaBase } from '../bundle/plan.ts';
import type { Inventory, SignatureInfo, VolumeLayout } from '../bundle/format.ts';
import { CONFIG_MEDIA_TYPES } from '../bundle/plan.ts';
import type { ChunkSink, Storage } from '../content/types.ts';
import type { SigningKey } from '../sign/keys.ts';
import { Limiter, mapLimit } from '../util/limiter.ts';
import { TOOL_VERSION } from '../version.ts';
import type { ChartHttpClient } from '../helm/http-client.ts';
import { resolveBase } from './base.ts';
import { bundleInputs, CacheWrites, ThroughCache, type InputContext } from './sources.ts';
import type { ToolFile } from '../bundle/tools.ts';
import { carriedTools } from '../tools/carried-tools.ts';
import { parseToolPlatforms, runningPlatform, TOOL_PLATFORMS } from '../tools/platforms.ts';


export type PackEvent =
  | { type: 'phase'; phase: 'lock' | 'base' | 'download' | 'write' | 'parity'; total?: number; images?: { reference: string; size: number }[] }
  | CopyEvent
  | { type: 'write-progress'; written: number; total: number }
  | { type: 'warning'; code: 'TOOL_HELM_MISSING' | 'TARGET_COLLISION' | 'INDEX_REDUCED'; message: string };

export interface PackOptions {
  specPath: string;
  /** Default: airlock.lock beside the spec. */
  lockPath?: string;
  out: string;
  cacheDir: string;
  open: OpenRepository;
  /** For charts from https:// repositories; a default one (system CAs) when absent. */
  http?: ChartHttpClient | undefined;
  /** Lock first (and write the lock) instead of failing when it is missing or stale. */
  relock?: boolean;
  /** `--platform`: these platforms instead of the spec's (the lock must have been locked with them, or relock). */
  platforms?: readonly string[] | undefined;
  /** Pack a delta against this base: a bundle (its file, volumes or shared name) or the lock it was packed from. */
  since?: string | undefined;
  /** Cut the bundle into volumes of `size` bytes, with `parity` recovery volumes. */
  split?: { size: number; parity?: number | undefined } | undefined;
  /** Sign the inventory with this key. */
  sign?: SigningKey | undefined;
  /** Carry tools (see PackTools); default: as the spec's `tools:` says. */
  tools?: PackTools | undefined;
  /** false: leave out the signatures, attestations and SBOMs the lock lists (also `referrers: false` in the spec). */
  referrers?: boolean | undefined;
  concurrency?: number;
  signal?: AbortSignal | undefined;
  onEvent?: (e: PackEvent) => void;
}

/** What the caller says about carrying tools; each field left out defers to the spec. */
export interface PackTools {
  /** Carry them (true) or not (false), whatever the spec says. */
  carry?: boolean | undefined;
  /** Platforms (`linux/amd64`, comma-separated or one each); giving them asks for tools. Default: the spec's, else the running one. */
  platforms?: readonly string[] | undefined;
  /** The pinned helm, named (default: looked for, see pinned-helm.ts); giving it asks for tools. */
  helm?: string | undefined;
}

export interface PackResult {
  path: string;
  size: number;
  inventory: Inventory;
  /** sha256 of the bundle's airlock/inventory.json: its identity. */
  inventoryDigest: string;
  lock: Lock;
  /** Bytes fetched from registries in this run (0 when everything was cached). */
  downloaded: number;
  /** Every file written (the bundle, or its volumes and recovery volumes). */
  files: string[];
  /** Temp files an earlier, killed pack left beside the bundle, removed by this one. */
  cleaned: string[];
  volumes?: VolumeLayout;
  signature?: SignatureInfo;
  /** A delta: the base it names and what it relies on from there. */
  delta?: { base: { inventory: string; name: string; version: string; from: string }; blobs: number; bytes: number };
}

export async function pack(opts: PackOptions): Promise<PackResult> {
  await refuseInputsAsOutput(opts);
  const { spec, lock, lockText } = await lockForPack(opts);
  warnCollisions(lock, opts);
  const signal = opts.signal;
  // Before any download: a platform without its executable fails the pack at once.
  const tools = await toolsFor(spec, opts);
  const concurrency = opts.concurrency ?? 8;
  let downloaded = 0;
  const ctx: InputContext = {
    store: new FileStore(opts.cacheDir, { trustOwnWrites: true }),
    open: opts.open,
    http: opts.http,
    specPath: opts.specPath,
    writes: new CacheWrites(),
    onDownloaded: (n) => (downloaded += n),
    signal,
    referrers: opts.referrers !== false && spec.referrers !== false,
  };
  let result: WriteBundleResult;
  let base: DeltaBase | undefined;
  try {
    if (opts.since !== undefined) {
      opts.onEvent?.({ type: 'phase', phase: 'base' });
      base = await resolveBase(opts.since, { ...ctx, concurrency });
    }
    const inputs = await bundleInputs(lock, ctx);
    const write = { out: opts.out, images: inputs, lockText, name: lock.name, version: lock.version, toolVersion: TOOL_VERSION, base, sign: opts.sign, tools, signal, concurrency };
    result = opts.split ? await packVolumes(write, opts.split, ctx, opts) : await packOnePass(write, ctx, opts);
    // Manifests and configs reach the cache in the background; a failure to write them fails the pack.
    await ctx.writes.settle();
  } finally {
    // Never leave a write running (and its temp file behind) when the pack fails.
    await ctx.writes.settle().catch(() => {});
  }
  const d = result.inventory.delta;
  return {
    path: result.path,
    size: result.size,
    inventory: result.inventory,
    inventoryDigest: result.inventoryDigest,
    lock,
    downloaded,
    files: result.files,
    cleaned: result.cleaned,
    ...(result.volumes ? { volumes: result.volumes } : {}),
    ...(result.signature ? { signature: result.signature } : {}),
    ...(d ? { delta: { base: { ...d.base, from: resolve(opts.since!) }, blobs: d.blobs.length, bytes: d.blobs.reduce((a, b) => a + b.size, 0) } } : {}),
  };
}

/** The bundle must not replace what it is packed from: the spec or the lock, by any name. */
async function refuseInputsAsOutput(opts: PackOptions): Promise<void> {
  const out = resolve(opts.out);
  const target = await stat(out).catch(() => undefined);
  const inputs: [string, string][] = [
    ['spec', resolve(opts.specPath)],
    ['lock', resolve(opts.lockPath ?? lockPathFor(opts.specPath))],
  ];
  for (const [what, path] of inputs) {
    const input = path === out ? target : await stat(path).catch(() => undefined);
    const same = path === out || (target !== undefined && input !== undefined && target.dev === input.dev && target.ino === input.ino);
    if (same) throw new UsageError(`cannot write the bundle to ${out}: it is the ${what} (${path}) the bundle is packed from`, { code: 'OUTPUT_IS_INPUT', hint: 'name another file for the bundle, e.g. -o shop.tar' });
  }
}

/** The files of the tools to carry, when asked for (by the caller or the spec); none otherwise. */
async function toolsFor(spec: Spec, opts: PackOptions): Promise<ToolFile[]> {
  const t = opts.tools ?? {};
  const given = t.platforms !== undefined && t.platforms.length > 0;
  // Naming the platforms or the helm to carry asks for tools as much as `carry` does.
  if (t.carry === false || (t.carry !== true && !given && t.helm === undefined && spec.tools === undefined)) return [];
  let platforms = given ? parseToolPlatforms(t.platforms!, 'tool platforms') : spec.tools?.platforms;
  if (platforms === undefined) {
    const here = runningPlatform();
    if (!TOOL_PLATFORMS.includes(here)) {
      throw new UsageError(`this machine is ${here}, and airlock has executables for ${TOOL_PLATFORMS.join(' and ')} only: name the tool platforms to carry`, { code: 'TOOL_PLATFORM_INVALID' });
    }
    platforms = [here];
  }
  return await carriedTools({
    platforms,
    helm: t.helm,
    signal: opts.signal,
    onHelmMissing: (platform, why) => opts.onEvent?.({ type: 'warning', code: 'TOOL_HELM_MISSING', message: `the bundle carries no helm for ${platform}: ${why}` }),
  });
}

/**
 * Images that differ only by registry host would land on one name when pushed: say so now, not
 * after the bundle has crossed the gap and push refuses it.
 */
function warnCollisions(lock: Lock, opts: PackOptions): void {
  for (const [a, b] of collisions(lock.images.map((i) => parseReference(i.reference)))) {
    opts.onEvent?.({ type: 'warning', code: 'TARGET_COLLISION', message: `${a} and ${b} would be pushed to the same name (they differ only by registry host); push with --keep-host (each under its host: R/P/<host>/<path>; serve, rewrite, post-render and mirrors-config take it too), or drop one` });
  }
}

/** The lock to pack: locked now (and written) when asked, else read and checked against the spec. */
async function lockForPack(opts: PackOptions): Promise<{ spec: Spec; lock: Lock; lockText: string }> {
  const lockPath = opts.lockPath ?? lockPathFor(opts.specPath);
  if (opts.relock) {
    opts.onEvent?.({ type: 'phase', phase: 'lock' });
    const { lock, text } = await lockAndWrite(opts.specPath, lockPath, { ...opts, onWarning: (w) => opts.onEvent?.({ type: 'warning', ...w }) });
    return { spec: withPlatforms(await loadSpec(opts.specPath), opts.platforms), lock, lockText: text };
  }
  const spec = withPlatforms(await loadSpec(opts.specPath), opts.platforms);
  const { lock, text } = await readLock(lockPath);
  const diff = diffLock(spec, lock);
  if (diff.length > 0) {
    throw new UsageError(`${lockPath} does not match ${opts.specPath}:\n  ${diff.join('\n  ')}`, {
      code: 'LOCK_STALE',
      hint: `run \`airlock lock\` to update it, or pack with relock to lock and pack in one step${diff.some((d) => d.startsWith('platforms are')) ? ' (a lock made with --platform is packed with the same --platform)' : ''}`,
    });
  }
  return { spec, lock, lockText: text };
}

type WriteInput = Omit<Parameters<typeof writeBundle>[0], 'source'>;

/**
 * One pass: the bundle is planned from manifests and configs (fetched now, or from the cache), then
 * every image is copied into it; each layer is downloaded straight into its place while the cache
 * keeps a copy (or copied from the cache), in parallel.
 */
async function packOnePass(write: WriteInput, ctx: InputContext, opts: PackOptions): Promise<WriteBundleResult> {
  const manifests = new ManifestCache();
  return await writeBundle({
    ...write,
    source: ctx.store,
    manifests,
    planConcurrency: opts.concurrency ?? 8,
    blobsLater: true,
    onEvent: opts.onEvent,
    onPlan: async (plan) => {
      const carried = plan.blobs.filter((b) => !plan.manifests.has(b.digest));
      const missing = await mapLimit(carried, 16, async (b) => ((await ctx.store.exists(b, { signal: ctx.signal })) ? 0 : b.size), ctx.signal);
      opts.onEvent?.({
        type: 'phase',
        phase: missing.some((n) => n > 0) ? 'download' : 'write',
        total: carried.reduce((a, b) => a + b.size, 0),
        images: plan.inventory.images.map((i) => ({ reference: i.reference, size: i.totalSize })),
      });
    },
    // The writer's signal, not ours: it also fires when another blob fails, stopping this download.
    fill: async (desc, sink, signal, image) => {
      // A config read while planning is in memory already.
      const held = manifests.peek(desc.digest);
      if (held) return await sink([held], 0);
      if (image.source instanceof ThroughCache) return await ingest(ctx, desc, image.source, sink, signal);
      // Built into the cache by this run (a chart artifact): nowhere else to fetch it from.
      await ctx.store.feed(desc, sink, { signal });
    },
  });
}

/**
 * Volumes are written (and hashed) in one sequential pass: every image is copied into the cache
 * first, then the bundle is written from there.
 */
async function packVolumes(write: WriteInput, split: NonNullable<PackOptions['split']>, ctx: InputContext, opts: PackOptions): Promise<WriteBundleResult> {
  const { store, signal } = ctx;
  const base = write.base;
  // Blobs the base has are not downloaded, configs aside (read for platforms).
  const fromBase = (d: Descriptor): boolean => base !== undefined && base.blobs.get(d.digest) === d.size && !isManifestDescriptor(d) && !CONFIG_MEDIA_TYPES.includes(d.mediaType);
  const target: Storage = base ? { label: store.label, exists: async (d, o) => fromBase(d) || (await store.exists(d, o)), fetch: (d, o) => store.fetch(d, o), push: (d, c, o) => store.push(d, c, o) } : store;
  opts.onEvent?.({ type: 'phase', phase: 'download', images: write.images.map((i) => ({ reference: i.reference, size: 0 })) });
  const limiter = new Limiter(write.concurrency ?? 8);
  const manifests = new ManifestCache();
  const done = new Map<string, Promise<void>>();
  await mapLimit(write.images, 2 * (write.concurrency ?? 8), async (img: BundleImageInput) => {
    const source = img.source ?? store;
    await copyGraph(source, target, img.root, {
      limiter,
      done,
      manifests,
      signal,
      image: img.reference,
      onEvent: opts.onEvent,
      transferBlob: async (desc, onBytes, s) => {
        if (source instanceof ThroughCache) await ingest(ctx, desc, source, undefined, s, onBytes);
      },
    });
  }, signal);
  await ctx.writes.settle();
  opts.onEvent?.({ type: 'phase', phase: 'write' });
  let phase: 'write' | 'parity' = 'write';
  return await writeBundle({
    ...write,
    images: write.images.map(({ reference, root, original }) => ({ reference, root, ...(original ? { original } : {}) })),
    source: store,
    split,
    onProgress: (p) => {
      if (p.phase === 'parity' && phase !== 'parity') {
        phase = 'parity';
        opts.onEvent?.({ type: 'phase', phase: 'parity' });
      }
      opts.onEvent?.({ type: 'write-progress', written: p.written, total: p.total });
    },
  });
}

/**
 * One layer from its registry into the cache (resuming what an interrupted run kept), and at once
 * into `sink`; a copy the cache has is fed from there. Bytes fetched now count as downloaded.
 */
async function ingest(ctx: InputContext, desc: Descriptor, source: ThroughCache, sink: ChunkSink | undefined, signal: AbortSignal | undefined, onBytes?: (n: number) => void): Promise<void> {
  let fetched = 0;
  try {
    await ctx.store.ingest(desc, source.repo, {
      signal,
      ...(sink ? { also: sink } : {}),
      onBytes: (n, resumed) => {
        if (!resumed) fetched += n;
        onBytes?.(n);
      },
    });
  } finally {
    ctx.onDownloaded(fetched);
  }
}
