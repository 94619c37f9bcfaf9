// lock, for `files:`: each file's bytes hashed (a URL downloaded into the blob cache, so pack does not
// download it again), checked against the sha256 the spec pins, and written into the lock with the
// name and artifact it has in the bundle.
import { IntegrityError, throwIfAborted } from '../core/errors.ts';
import { MediaType } from '../core/media-types.ts';
import type { FileSpec } from '../spec/files.ts';
import type { LockedFile } from '../spec/locked-files.ts';
import { buildFileArtifact } from './artifact.ts';
import { describeFile, fetchFile, type FileSourceContext } from './fetch.ts';

/** Every file of the spec, in order (one at a time: they may be big, and share one link). */
export async function lockFiles(specs: readonly FileSpec[], ctx: FileSourceContext, onFile?: (f: LockedFile) => void): Promise<LockedFile[]> {
  const out: LockedFile[] = [];
  for (const spec of specs) {
    throwIfAborted(ctx.signal);
    const f = await lockFile(spec, ctx);
    onFile?.(f);
    out.push(f);
  }
  return out;
}

async function lockFile(spec: FileSpec, ctx: FileSourceContext): Promise<LockedFile> {
  const { digest, size } = await fetchFile(spec, ctx);
  if (spec.sha256 !== undefined && spec.sha256 !== digest) {
    throw new IntegrityError(`${describeFile(spec)} hashes to ${digest}, airlock.yaml pins ${spec.sha256}`, {
      code: 'DIGEST_MISMATCH',
      hint: 'check where the file comes from; if the new content is right, change sha256 in airlock.yaml',
    });
  }
  const artifact = buildFileArtifact({ name: spec.name, digest, size, mode: spec.mode, version: spec.version });
  return {
    name: spec.name,
    ...(spec.path !== undefined ? { path: spec.path } : {}),
    ...(spec.url !== undefined ? { url: spec.url } : {}),
    ...(spec.version !== undefined ? { version: spec.version } : {}),
    mode: spec.mode,
    digest,
    size,
    reference: artifact.reference,
    artifact: { mediaType: MediaType.ociManifest, digest: artifact.manifest.descriptor.digest, size: artifact.manifest.descriptor.size },
  };
}
