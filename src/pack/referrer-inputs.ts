// What pack carries for the referrers a lock lists: each as an entry of its own in index.json, in its
// image's repository — by its tag when it was found under one (`repo:sha256-<hex>.sig`, the tag
// schema's `repo:sha256-<hex>`), else by its digest (`repo@sha256:…`) — marked with the digest it
// refers to and its kind. So OCI tools see them, push puts the tagged ones under their tags and the
// others by digest (a referrer carries its `subject`), serve answers both, and verify derives the
// inventory's `referrer` from index.json like every other field.
import { UsageError } from '../core/errors.ts';
import type { Descriptor } from '../core/manifest.ts';
import { formatReference, parseReference, type Reference } from '../core/reference.ts';
import { REFERRER_KIND_ANNOTATION, REFERRER_SUBJECT_ANNOTATION } from '../core/referrers.ts';
import type { ReadOnlyStorage } from '../content/types.ts';
import type { BundleImageInput } from '../bundle/plan.ts';
import type { Lock, LockedReferrer } from '../spec/lock.ts';

/** The bundle entry of a referrer of `image` (a locked reference). */
export function referrerName(image: string, r: Pick<LockedReferrer, 'digest' | 'tag'>): string {
  const ref = parseReference(image);
  const repo = { registry: ref.registry, repository: ref.repository };
  return formatReference(r.tag !== undefined ? { ...repo, tag: r.tag } : { ...repo, digest: r.digest });
}

/**
 * One input per referrer of the lock's images, each name once: two images of one repository share
 * their referrers, and a referrer also listed as an image (a `.sig` tag named by hand) is that image.
 */
export function referrerInputs(lock: Lock, images: readonly BundleImageInput[], open: (ref: Reference) => ReadOnlyStorage): BundleImageInput[] {
  const taken = new Map(images.map((i) => [i.reference, i.root.digest as string]));
  // A manifest carried under a tag in a repository need not be carried by digest there too.
  const inRepo = new Set(images.map((i) => repoKey(i.reference, i.root.digest)));
  const out: BundleImageInput[] = [];
  const all = lock.images.flatMap((img) => (img.referrers ?? []).map((r) => ({ img, r })));
  // Tagged ones first: they claim their digests.
  for (const { img, r } of [...all.filter((x) => x.r.tag !== undefined), ...all.filter((x) => x.r.tag === undefined)]) {
    const reference = referrerName(img.reference, r);
    const before = taken.get(reference);
    if (before !== undefined) {
      if (before !== r.digest) {
        throw new UsageError(`${reference} is locked as ${before} and as ${r.digest} (a referrer of ${img.reference})`, { code: 'LOCK_INVALID', hint: 'run `airlock lock` again' });
      }
      continue;
    }
    if (r.tag === undefined && inRepo.has(repoKey(img.reference, r.digest))) continue;
    taken.set(reference, r.digest);
    inRepo.add(repoKey(img.reference, r.digest));
    const root: Descriptor = {
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      ...(r.artifactType !== undefined ? { artifactType: r.artifactType } : {}),
      annotations: { [REFERRER_SUBJECT_ANNOTATION]: r.subject, [REFERRER_KIND_ANNOTATION]: r.kind },
    };
    out.push({ reference, root, source: open(parseReference(img.reference)) });
  }
  return out;
}

function repoKey(reference: string, digest: string): string {
  const ref = parseReference(reference);
  return `${ref.registry}/${ref.repository}@${digest}`;
}
