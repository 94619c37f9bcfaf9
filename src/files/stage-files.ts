// pack, for `files:`: each locked file's artifact (its bytes, the empty config, the manifest) put into
// the blob cache, checked against the lock, ready for the bundle writer like any image. The bytes are
// taken from the cache when lock (or an earlier pack) kept them there, else read or downloaded again
// — and refused, naming the file, when they are no longer what the lock pinned.
import { IntegrityError, UsageError } from '../core/errors.ts';
import type { Digest } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import { formatBytes } from '../core/bytes.ts';
import { redactUrl } from '../core/redact.ts';
import type { FileStore } from '../content/file-store.ts';
import type { BundleImageInput } from '../bundle/plan.ts';
import type { LockedFile } from '../spec/locked-files.ts';
import { ChartHttpClient } from '../helm/http-client.ts';
import { buildFileArtifact, FILE_LAYER_MEDIA_TYPE } from './artifact.ts';
import { describeFile, stageFileBytes } from './fetch.ts';

export interface FileStageContext {
  store: FileStore;
  /** For files from URLs; a default one (system CAs) when absent. */
  http: ChartHttpClient | undefined;
  /** The folder of airlock.yaml: paths are relative to it. */
  baseDir: string;
  signal: AbortSignal | undefined;
  /** Bytes downloaded now (not taken from the cache). */
  onDownloaded?: ((n: number) => void) | undefined;
}

/** The bundle inputs for the lock's files, each artifact in the cache. */
export async function stageFiles(files: readonly LockedFile[], ctx: FileStageContext): Promise<BundleImageInput[]> {
  const http = ctx.http ?? new ChartHttpClient();
  try {
    const out: BundleImageInput[] = [];
    for (const f of files) out.push(await stageFile(f, { ...ctx, http }));
    return out;
  } finally {
    if (!ctx.http) await http.close();
  }
}

async function stageFile(f: LockedFile, ctx: FileStageContext & { http: ChartHttpClient }): Promise<BundleImageInput> {
  const what = describeFile(f);
  const artifact = buildFileArtifact({ name: f.name, digest: f.digest, size: f.size, mode: f.mode, version: f.version });
  if (artifact.manifest.descriptor.digest !== f.artifact.digest || artifact.reference !== f.reference) {
    throw new IntegrityError(`${what}: its artifact comes out as ${artifact.reference}@${artifact.manifest.descriptor.digest}, the lock says ${f.reference}@${f.artifact.digest}`, {
      code: 'LOCK_MISMATCH',
      hint: 'the lock was written by a different airlock version or edited; run `airlock lock` again',
    });
  }
  const layer: Descriptor = { mediaType: FILE_LAYER_MEDIA_TYPE, digest: f.digest, size: f.size };
  const { store, signal } = ctx;
  await stageFileBytes(f, layer, store, ctx, (now) => changed(f, now), ctx.onDownloaded);
  await store.write(artifact.config.descriptor, artifact.config.bytes, { signal });
  await store.write(artifact.manifest.descriptor, artifact.manifest.bytes, { signal });
  return { reference: artifact.reference, root: artifact.root, source: store };
}

/** The error for a file whose bytes are no longer what the lock pinned. */
function changed(f: LockedFile, now: { digest: Digest; size: number } | 'larger'): Error {
  const is = now === 'larger' ? `now more than the ${f.size} bytes it had` : `now ${now.digest} (${formatBytes(now.size)})`;
  const pinned = `airlock.lock pins ${f.digest} (${formatBytes(f.size)})`;
  if (f.path !== undefined) {
    return new UsageError(`file ${f.name}: ${f.path} changed since airlock.lock was written: it is ${is}; ${pinned}`, {
      code: 'LOCK_STALE',
      hint: 'run `airlock lock` to pin the new content, or pack with relock',
    });
  }
  return new IntegrityError(`file ${f.name}: ${redactUrl(f.url!)} no longer serves what was locked: it is ${is}; ${pinned}`, {
    code: 'DIGEST_MISMATCH',
    hint: 'the server changed the file; check why, then run `airlock lock` to accept the new content',
  });
}
