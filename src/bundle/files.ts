// The files a bundle carries (`files:`), as its inventory lists them: derived from the artifacts
// index.json names and marks as files — each manifest read back (src/files/artifact.ts), so what the
// inventory says of a file is what its artifact says, and verify derives the same list again.
import { IntegrityError } from '../core/errors.ts';
import type { Descriptor } from '../core/manifest.ts';
import { formatMode, isFileRoot, readFileArtifact } from '../files/artifact.ts';
import { compareStrings, type InventoryFile } from './format.ts';

/** The inventory's `files` for these images (their manifests' bytes by digest), sorted by name; a name carried twice is refused. */
export function inventoryFiles(images: readonly { reference: string; root: Descriptor }[], manifests: ReadonlyMap<string, Buffer>): InventoryFile[] {
  const out: InventoryFile[] = [];
  const seen = new Map<string, string>();
  for (const img of images) {
    if (!isFileRoot(img.root)) continue;
    const bytes = manifests.get(img.root.digest);
    if (!bytes) throw new IntegrityError(`${img.reference}: its manifest ${img.root.digest} was not read`, { code: 'MANIFEST_INVALID' });
    const f = readFileArtifact(img.reference, img.root, bytes);
    const other = seen.get(f.name);
    if (other !== undefined) throw new IntegrityError(`the file ${f.name} is carried twice: as ${other} and as ${img.reference}`, { code: 'BUNDLE_INCONSISTENT' });
    seen.set(f.name, img.reference);
    out.push({ name: f.name, reference: img.reference, digest: f.digest, size: f.size, mode: formatMode(f.mode), ...(f.version !== undefined ? { version: f.version } : {}) });
  }
  return out.sort((a, b) => compareStrings(a.name, b.name));
}
