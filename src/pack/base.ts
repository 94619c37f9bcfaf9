// The base of a delta (`pack --since`): a bundle, read for its inventory, or the lock it was packed
// from, whose inventory is worked out as `pack` would write it — from manifests and configs only
// (the cache's, else the registries') — so the delta names the same base either way.
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { digestOf } from '../core/digest.ts';
import { loadDeltaBase, type DeltaBase } from '../bundle/index.ts';
import { allBlobs, canonicalJson } from '../bundle/format.ts';
import { planBundle } from '../bundle/plan.ts';
import { readLock } from '../spec/lock.ts';
import { bundleInputs, type InputContext } from './sources.ts';

export async function resolveBase(since: string, ctx: InputContext & { concurrency: number }): Promise<DeltaBase> {
  const abs = resolve(since);
  if (await looksLikeLock(abs)) return await baseFromLock(abs, ctx);
  return await loadDeltaBase(abs, ctx.signal);
}

/** A file that is not a tar (no ustar magic in its first header) is taken for a lock. */
async function looksLikeLock(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return false;
  }
  try {
    if (!(await fh.stat()).isFile()) return false;
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    return !(bytesRead === 512 && head.toString('latin1', 257, 262) === 'ustar');
  } finally {
    await fh.close();
  }
}

/** The inventory `pack` would write for a lock: the same digest as the bundle packed from it. */
async function baseFromLock(path: string, ctx: InputContext & { concurrency: number }): Promise<DeltaBase> {
  const { lock, text } = await readLock(path);
  const inputs = await bundleInputs(lock, ctx);
  // Planning reads manifests and configs; the base's layers need not be here, only its identity.
  const plan = await planBundle(inputs, ctx.store, { signal: ctx.signal, lock: { name: lock.name, version: lock.version, text }, checkBlobs: false, concurrency: ctx.concurrency });
  await ctx.writes.settle();
  return {
    inventory: digestOf(Buffer.from(canonicalJson(plan.inventory, true))),
    name: lock.name,
    version: lock.version,
    blobs: new Map(allBlobs(plan.inventory).map((b) => [b.digest, b.size])),
  };
}
