// One OCI-archive tarball (an OCI image layout in a tar) holding some images of a bundle set,
// named by their full original references in index.json: what `ctr images import` and k3s/RKE2
// (agent/images/) take, and `skopeo copy oci-archive:F:NAME` reads. Manifest bytes are copied
// untouched, so every digest stays what it was. Blobs stream from the bundle, verified (a blob that
// does not match its digest fails the write, naming the images using it), into the target through
// the atomic writer (util/atomic-file.ts): a tarball is either whole or absent. stageOciArchive
// leaves the commit to the caller, so several tarballs can appear together or not at all.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError, NotFoundError, throwIfAborted } from '../core/errors.ts';
import { digestAlgorithm, type Digest } from '../core/digest.ts';
import { MediaType } from '../core/media-types.ts';
import type { Descriptor } from '../core/manifest.ts';
import { asAborted } from '../content/file-store.ts';
import { openAtomic, writeFailure, type AtomicFile } from '../util/atomic-file.ts';
import { blobPath, canonicalJson, CONTAINERD_NAME_ANNOTATION, OCI_LAYOUT_PATH, INDEX_PATH, OCI_LAYOUT_VERSION, REF_NAME_ANNOTATION } from '../bundle/format.ts';
import { encodedEntrySize, encodeHeader, END_OF_ARCHIVE, paddingFor, type TarHeaderInput } from '../bundle/tar.ts';
import type { BundleSet, SetImage } from '../serve/bundle-set.ts';

export interface WriteArchiveOptions {
  signal?: AbortSignal | undefined;
  onBytes?: ((n: number) => void) | undefined;
}

interface Entry {
  header: TarHeaderInput;
  bytes?: Buffer;
  blob?: Descriptor;
}

/** Write `images` of `set` as one OCI archive at `out`; returns its size in bytes. */
export async function writeOciArchive(set: BundleSet, images: readonly SetImage[], out: string, opts: WriteArchiveOptions = {}): Promise<number> {
  const staged = await stageOciArchive(set, images, out, opts);
  try {
    await staged.file.commit();
  } catch (e) {
    throw asAborted(e, opts.signal);
  }
  return staged.size;
}

/** An archive written whole (not yet flushed) beside its target: `file.commit()` puts it in place, `file.discard()` removes it. */
export interface StagedArchive {
  file: AtomicFile;
  size: number;
}

/** Write the archive for `out` into a temp file beside it; nothing is at `out` until the caller commits. */
export async function stageOciArchive(set: BundleSet, images: readonly SetImage[], out: string, opts: WriteArchiveOptions = {}): Promise<StagedArchive> {
  const { signal } = opts;
  throwIfAborted(signal);
  const digests = new Set<string>();
  for (const img of images) for (const d of img.digests) digests.add(d);
  const blobs: Descriptor[] = [...digests].sort().map((d) => {
    const loc = set.locate(d);
    if (!loc) {
      const users = images.filter((i) => i.digests.has(d)).map((i) => i.name);
      throw new NotFoundError(`blob ${d} of ${users.join(', ')} is in none of the bundles`, {
        code: 'BLOB_UNKNOWN',
        hint: 'an update bundle needs its base: give every bundle the images came in',
      });
    }
    return { mediaType: 'application/octet-stream', digest: d as Digest, size: loc.entry.size };
  });

  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    // A reduced index is named by the upstream one, so the import keeps the upstream digest
    // (`ctr images import` for this platform or --platform; not --all-platforms: the others are absent).
    manifests: images.map((img) => ({
      ...(img.original ?? img.root),
      annotations: { ...img.root.annotations, [CONTAINERD_NAME_ANNOTATION]: img.name, [REF_NAME_ANNOTATION]: img.name },
    })),
  };
  const file = (name: string, bytes: Buffer): Entry => ({ header: { name, type: 'file', size: bytes.length }, bytes });
  const entries: Entry[] = [
    file(OCI_LAYOUT_PATH, Buffer.from(canonicalJson({ imageLayoutVersion: OCI_LAYOUT_VERSION }, false))),
    file(INDEX_PATH, Buffer.from(canonicalJson(index, false))),
    // Explicit parent directories: containers/storage chowns implicit ones (see bundle/write.ts).
    { header: { name: 'blobs/', type: 'dir', size: 0 } },
  ];
  let algorithm = '';
  for (const b of blobs) {
    const alg = digestAlgorithm(b.digest);
    if (alg !== algorithm) entries.push({ header: { name: `blobs/${alg}/`, type: 'dir', size: 0 } });
    algorithm = alg;
    entries.push({ header: { name: blobPath(b.digest), type: 'file', size: b.size }, blob: b });
  }
  const total = entries.reduce((a, e) => a + encodedEntrySize(e.header), 0) + END_OF_ARCHIVE.length;

  async function* tar(): AsyncGenerator<Buffer> {
    for (const e of entries) {
      yield encodeHeader(e.header);
      if (e.bytes) yield e.bytes;
      else if (e.blob) {
        try {
          for await (const chunk of await set.fetch(e.blob, { signal })) {
            opts.onBytes?.((chunk as Buffer).length);
            yield chunk as Buffer;
          }
        } catch (err) {
          if (err instanceof IntegrityError) {
            const users = images.filter((i) => i.digests.has(e.blob!.digest)).map((i) => i.name);
            err.message += `; ${users.length === 1 ? 'it belongs to' : 'images using it:'} ${users.join(', ')}`;
          }
          throw err;
        }
      }
      const pad = e.header.type === 'file' ? paddingFor(e.header.size) : 0;
      if (pad > 0) yield Buffer.alloc(pad);
    }
    yield END_OF_ARCHIVE;
  }

  const target = await openAtomic(out, { signal });
  try {
    await pipeline(Readable.from(tar()), target.createWriteStream(), { signal });
  } catch (e) {
    await target.discard();
    throw asAborted(writeFailure(e, target.path, [target]), signal);
  }
  return { file: target, size: total };
}
