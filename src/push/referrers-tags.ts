// push: the referrers tag schema, kept up to date in a target without the referrers API. A registry
// that has the API lists a manifest with a `subject` as soon as it is pushed; one that has not
// (docker-registry 2.8) leaves it to the client, which the distribution spec tells to pull the
// index under `sha256-<hex>` (404: start from an empty one), add a descriptor for each manifest not
// listed yet (artifactType = the manifest's, else its config's media type; its annotations) and
// push it back under the same tag. Where the target has no index yet and the bundle carries the
// upstream one listing exactly these referrers, those bytes go (its digest is upstream's).
//
// Whether the target has the API is asked once per repository, with the referrers API itself.
import { AirlockError, ExitCode, IntegrityError, UsageError } from '../core/errors.ts';
import { digestOf, type Digest } from '../core/digest.ts';
import { MAX_MANIFEST_BYTES, parseManifest, type Descriptor, type Index } from '../core/manifest.ts';
import { isIndexMediaType, MediaType } from '../core/media-types.ts';
import { referrerDescriptor, referrerMark, referrersTag } from '../core/referrers.ts';
import { readManifest } from '../content/graph.ts';
import { isReferencePusher, type Fetcher, type OpOptions, type Storage, type TagResolver } from '../content/types.ts';
import { readAllLimited } from '../content/verify-stream.ts';

/** What the target repository offers: storage, tags, and (a registry) the referrers API. */
export interface ReferrersTarget extends Storage, Partial<TagResolver> {
  listReferrers?(digest: Digest, opts?: OpOptions): Promise<Descriptor[] | undefined>;
}

/** One referrers list written under the tag schema. */
export interface ReferrersTagUpdate {
  /** `REGISTRY/REPO:sha256-<hex>`. */
  target: string;
  subject: Digest;
  /** The index now under the tag. */
  digest: Digest;
  /** Descriptors it lists, and how many of them this push added. */
  entries: number;
  added: number;
  /** The upstream index's own bytes were pushed (the target had none). */
  upstream: boolean;
}

/**
 * After the entries of one target repository were pushed: for a target without the referrers API,
 * every subject the pushed referrers name gets its tag schema index updated. Returns what was
 * written (nothing for a target with the API, or when every index lists them already).
 */
export async function updateReferrersTags(
  entries: readonly { reference: string; root: Descriptor }[],
  source: Fetcher,
  dst: ReferrersTarget,
  name: string,
  opts: OpOptions & { onWarning?: ((w: { code: string; message: string }) => void) | undefined } = {},
): Promise<ReferrersTagUpdate[]> {
  const wanted = new Map<Digest, Descriptor[]>();
  const upstream = new Map<Digest, Descriptor>();
  for (const e of entries) {
    const mark = referrerMark(e.root);
    if (!mark) continue;
    if (mark.kind === 'referrers-index') {
      upstream.set(mark.subject, e.root);
      continue;
    }
    const { parsed } = await readManifest(source, e.root, { signal: opts.signal, what: e.reference });
    // cosign's tag scheme has no subject: its tag is all a client looks for.
    const subject = parsed.value.subject?.digest;
    if (subject === undefined) continue;
    const list = wanted.get(subject) ?? [];
    if (!list.some((d) => d.digest === e.root.digest)) list.push(referrerDescriptor(e.root, parsed));
    wanted.set(subject, list);
  }
  if (wanted.size === 0) return [];
  const subjects = [...wanted.keys()].sort();
  if (dst.listReferrers && (await dst.listReferrers(subjects[0]!, opts)) !== undefined) return [];
  if (!dst.resolve || !isReferencePusher(dst)) return [];
  const updates: ReferrersTagUpdate[] = [];
  for (const subject of subjects) {
    const tag = referrersTag(subject);
    const list = wanted.get(subject)!.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    const existing = await currentIndex(dst, tag, opts);
    if (existing === 'not-an-index') {
      opts.onWarning?.({ code: 'REFERRERS_TAG_TAKEN', message: `${name}:${tag} is not an index, so the referrers of ${subject} were not listed there (clients of a registry without the referrers API look for them under that tag)` });
      continue;
    }
    let bytes: Buffer;
    let added: number;
    let fromUpstream = false;
    if (existing === undefined) {
      added = list.length;
      const up = upstream.get(subject);
      const upBytes = up ? (await readManifest(source, up, { signal: opts.signal, what: `${name}:${tag}` })).bytes : undefined;
      if (up && upBytes && sameDigests(parseManifest(upBytes, up.mediaType, `${name}:${tag}`), list)) {
        bytes = upBytes;
        fromUpstream = true;
      } else {
        bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: list } satisfies Index));
      }
    } else {
      const missing = list.filter((d) => !existing.manifests.some((x) => x.digest === d.digest));
      if (missing.length === 0) continue;
      added = missing.length;
      bytes = Buffer.from(JSON.stringify({ ...existing, manifests: [...existing.manifests, ...missing] }));
    }
    const mediaType = fromUpstream ? upstream.get(subject)!.mediaType : existing?.mediaType ?? MediaType.ociIndex;
    const desc: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.length };
    await dst.pushReference(desc, bytes, tag, opts);
    updates.push({ target: `${name}:${tag}`, subject, digest: desc.digest, entries: (existing?.manifests.length ?? 0) + added, added, upstream: fromUpstream });
  }
  return updates;
}

/** The index under `tag` in the target: undefined when there is none, 'not-an-index' when the tag holds something else. */
async function currentIndex(dst: ReferrersTarget, tag: string, opts: OpOptions): Promise<(Index & { mediaType: string }) | 'not-an-index' | undefined> {
  let desc: Descriptor;
  try {
    desc = await dst.resolve!(tag, opts);
  } catch (e) {
    if (e instanceof AirlockError && e.exitCode === ExitCode.notFound) return undefined;
    throw e;
  }
  if (!isIndexMediaType(desc.mediaType)) return 'not-an-index';
  const bytes = await readAllLimited(await dst.fetch(desc, opts), MAX_MANIFEST_BYTES, `${tag} in the target`);
  let parsed;
  try {
    parsed = parseManifest(bytes, desc.mediaType, tag);
  } catch (e) {
    if (e instanceof IntegrityError || e instanceof UsageError) return 'not-an-index';
    throw e;
  }
  if (parsed.kind !== 'index') return 'not-an-index';
  return { ...parsed.value, mediaType: parsed.mediaType };
}

function sameDigests(parsed: ReturnType<typeof parseManifest>, list: readonly Descriptor[]): boolean {
  if (parsed.kind !== 'index') return false;
  const have = parsed.value.manifests.map((d) => d.digest).sort();
  const want = list.map((d) => d.digest).sort();
  return have.length === want.length && have.every((d, i) => d === want[i]);
}
