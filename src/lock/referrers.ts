// lock: what refers to an image upstream, so that its signatures, attestations and SBOMs cross
// with it without being named. For each subject (the image's root, each platform manifest kept,
// and in turn what refers to those, a few levels deep):
//   - cosign's tag scheme: `sha256-<hex>.sig`, `.att`, `.sbom` in the same repository (HEAD each);
//   - OCI 1.1 referrers: the registry's referrers API where it has one; where it answers 404 (no
//     API, as docker-registry 2.8), the index under the referrers tag schema `sha256-<hex>`, whose
//     entries are checked to still be there (an index left stale by a deleted referrer is not
//     carried, its live entries are).
// The registry's answer to the referrers API is learnt once per repository.
import { AirlockError, ExitCode } from '../core/errors.ts';
import type { Digest } from '../core/digest.ts';
import { parseManifest, type Descriptor } from '../core/manifest.ts';
import { isIndexMediaType, isManifestMediaType } from '../core/media-types.ts';
import { COSIGN_SUFFIXES, cosignTag, kindOfArtifactType, referrersTag } from '../core/referrers.ts';
import type { OpOptions } from '../content/types.ts';
import { sortReferrers, type LockedReferrer } from '../spec/lock.ts';
import { mapLimit } from '../util/limiter.ts';

/** What finding referrers needs of a source repository (the registry client's RemoteRepository has it all). */
export interface ReferrerSource {
  fetchManifest(reference: string, opts?: OpOptions): Promise<{ descriptor: Descriptor; bytes: Buffer }>;
  /** A HEAD for a tag (cheaper than fetchManifest, and not counted by pull limits). */
  resolve?(reference: string, opts?: OpOptions): Promise<Descriptor>;
  exists(desc: Descriptor, opts?: OpOptions): Promise<boolean>;
  /** The referrers API: undefined when the registry has none. */
  listReferrers?(digest: Digest, opts?: OpOptions): Promise<Descriptor[] | undefined>;
}

/** Referrers of referrers are followed this many levels from the image (a signature of an SBOM is two). */
const MAX_DEPTH = 3;
/** Subjects looked up at once within one image (each is a handful of small requests). */
const CONCURRENCY = 4;

/** Every referrer of `subjects` (and of those referrers, MAX_DEPTH levels in all), sorted, each (subject, digest, tag) once. */
export async function findReferrers(repo: ReferrerSource, subjects: readonly Digest[], opts: { signal?: AbortSignal | undefined; what: string }): Promise<LockedReferrer[]> {
  const found = new Map<string, LockedReferrer>();
  const seen = new Set<string>(subjects);
  const api = { known: repo.listReferrers === undefined ? false : undefined } as { known: boolean | undefined };
  let level: Digest[] = [...new Set(subjects)];
  for (let depth = 0; depth < MAX_DEPTH && level.length > 0; depth++) {
    const lists = await mapLimit(level, CONCURRENCY, (s) => referrersOf(repo, s, api, opts), opts.signal);
    const next: Digest[] = [];
    for (const r of lists.flat()) {
      const key = `${r.subject}\0${r.digest}\0${r.tag ?? ''}`;
      if (found.has(key)) continue;
      found.set(key, r);
      // The tag schema's index lists referrers; nothing refers to it.
      if (r.kind !== 'referrers-index' && !seen.has(r.digest)) {
        seen.add(r.digest);
        next.push(r.digest);
      }
    }
    level = next;
  }
  return sortReferrers([...found.values()]);
}

async function referrersOf(repo: ReferrerSource, subject: Digest, api: { known: boolean | undefined }, opts: { signal?: AbortSignal | undefined; what: string }): Promise<LockedReferrer[]> {
  const o = { signal: opts.signal };
  const out: LockedReferrer[] = [];
  const tagged = await Promise.all(COSIGN_SUFFIXES.map(async ({ suffix, kind }) => ({ tag: cosignTag(subject, suffix), kind, desc: await lookup(repo, cosignTag(subject, suffix), o) })));
  for (const { tag, kind, desc } of tagged) {
    if (desc && isManifestMediaType(desc.mediaType)) out.push({ subject, kind, digest: desc.digest, mediaType: desc.mediaType, size: desc.size, found: 'tag', tag });
  }
  if (api.known !== false) {
    const listed = await repo.listReferrers!(subject, o);
    if (listed !== undefined) {
      api.known = true;
      for (const d of listed) if (isManifestMediaType(d.mediaType)) out.push(fromListing(subject, d, 'referrers'));
      return out;
    }
    api.known = false;
  }
  const tag = referrersTag(subject);
  const index = await lookup(repo, tag, o);
  // Not an index: the spec has the client take it for no referrers.
  if (!index || !isIndexMediaType(index.mediaType)) return out;
  const { bytes } = await repo.fetchManifest(index.digest, o);
  const parsed = parseManifest(bytes, index.mediaType, `referrers tag ${tag} of ${opts.what}`);
  if (parsed.kind !== 'index') return out;
  const listed = parsed.value.manifests.filter((d) => isManifestMediaType(d.mediaType));
  const present = await Promise.all(listed.map((d) => repo.exists({ mediaType: d.mediaType, digest: d.digest, size: d.size }, o)));
  listed.forEach((d, i) => {
    if (present[i]) out.push(fromListing(subject, d, 'tag-schema'));
  });
  if (present.every(Boolean) && listed.length === parsed.value.manifests.length) {
    out.push({ subject, kind: 'referrers-index', digest: index.digest, mediaType: index.mediaType, size: index.size, found: 'tag', tag });
  }
  return out;
}

function fromListing(subject: Digest, d: Descriptor, found: 'referrers' | 'tag-schema'): LockedReferrer {
  return {
    subject,
    kind: kindOfArtifactType(d.artifactType),
    ...(d.artifactType !== undefined ? { artifactType: d.artifactType } : {}),
    digest: d.digest,
    mediaType: d.mediaType,
    size: d.size,
    found,
  };
}

/** The descriptor a tag points at, or undefined when there is no such tag. */
async function lookup(repo: ReferrerSource, tag: string, opts: OpOptions): Promise<Descriptor | undefined> {
  try {
    return repo.resolve ? await repo.resolve(tag, opts) : (await repo.fetchManifest(tag, opts)).descriptor;
  } catch (e) {
    if (e instanceof AirlockError && e.exitCode === ExitCode.notFound) return undefined;
    throw e;
  }
}
