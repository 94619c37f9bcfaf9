// `capture --write`: every image the nodes pulled, merged into airlock.yaml pinned by the digest
// that was served (an index's, for an index), with a comment saying who pulled it and, for an
// index, which platforms were pulled from it. The merge is discover --write's: the user's entries
// and comments stay, an image already listed (pinned or not) is left as the user wrote it.
import { mergeImagesIntoSpec, type SpecEntry, type WriteSpecResult } from '../discover/write-spec.ts';
import { isIndexMediaType } from '../core/media-types.ts';
import { pinnedReferences, type PulledImage } from './pulled.ts';

export type { WriteSpecResult };

export function specEntries(images: readonly PulledImage[]): SpecEntry[] {
  const entries: SpecEntry[] = [];
  for (const img of images) {
    const name = `${img.registry}/${img.repository}`;
    const nodes = `${img.clients.length} node${img.clients.length === 1 ? '' : 's'}`;
    const index = img.mediaType !== undefined && isIndexMediaType(img.mediaType);
    const platforms = index ? (img.platforms.length > 0 ? `; an index: pulled for ${img.platforms.join(', ')}` : '; an index: resolved, no platform pulled') : '';
    const problems = img.problems > 0 ? `; ${img.problems} answer${img.problems === 1 ? '' : 's'} refused or failed upstream` : '';
    const comment = ` captured: pulled by ${nodes}${platforms}${problems}`;
    for (const ref of pinnedReferences(img)) {
      const tag = /:([^:@/]+)@/.exec(ref)?.[1];
      entries.push({ reference: ref, comment, aliases: [...(tag !== undefined ? [`${name}:${tag}`] : []), `${name}@${img.digest}`] });
    }
  }
  return entries;
}

/** Merge the pulled images into the spec at `path` (created if missing). */
export async function writeCapturedToSpec(path: string, images: readonly PulledImage[], opts: { name?: string } = {}): Promise<WriteSpecResult> {
  return await mergeImagesIntoSpec(path, specEntries(images), {
    ...opts,
    header: ' Written by `airlock capture --write`: the images a staging deployment pulled. Edit freely: later runs keep your entries and comments.',
  });
}
