// What refers to an image: signatures, attestations and SBOMs attached to it, as cosign's tag scheme
// (`sha256-<hex>.sig`, `.att`, `.sbom` in the image's repository) and OCI 1.1 referrers (manifests
// whose `subject` names it, listed by the referrers API or, where a registry has none, by the
// index under the referrers tag schema `sha256-<hex>`) lay them out. Pure: names, kinds, and the
// descriptor a referrers list holds for a manifest.
import { digestAlgorithm, digestEncoded, isDigest, type Digest } from './digest.ts';
import type { Descriptor, ParsedManifest } from './manifest.ts';

/** What a referrer is to a user; `referrers-index` is the referrers tag schema's index itself. */
export type ReferrerKind = 'signature' | 'attestation' | 'sbom' | 'artifact' | 'referrers-index';
export const REFERRER_KINDS: readonly ReferrerKind[] = ['signature', 'attestation', 'sbom', 'artifact', 'referrers-index'];

/** How a referrer was found: a tag (cosign's, or the tag schema's index), the referrers API, or listed in the tag schema's index. */
export type ReferrerFound = 'tag' | 'referrers' | 'tag-schema';
export const REFERRER_FOUND: readonly ReferrerFound[] = ['tag', 'referrers', 'tag-schema'];

/** cosign's tag suffixes and what each holds. */
export const COSIGN_SUFFIXES: readonly { suffix: string; kind: ReferrerKind }[] = [
  { suffix: 'sig', kind: 'signature' },
  { suffix: 'att', kind: 'attestation' },
  { suffix: 'sbom', kind: 'sbom' },
];

/**
 * index.json annotations on a referrer the bundle carries: the digest it refers to and its kind.
 * With them push, serve, export and inspect tell a referrer from an image without reading it, and
 * verify derives the inventory's `referrer` from index.json as for any other field.
 */
export const REFERRER_SUBJECT_ANNOTATION = 'dev.airlock.referrer.subject';
export const REFERRER_KIND_ANNOTATION = 'dev.airlock.referrer.kind';

/**
 * `<alg>-<hex>`: the referrers tag schema's tag for a subject, the hex cut to 64 characters as the
 * distribution spec says (a tag holds at most 128). cosign's tags start the same way.
 */
export function referrersTag(subject: Digest): string {
  return `${digestAlgorithm(subject)}-${digestEncoded(subject).slice(0, 64)}`;
}

/** cosign's tag for what it attaches to `subject`: `sha256-<hex>.sig`, `.att`, `.sbom`. */
export function cosignTag(subject: Digest, suffix: string): string {
  return `${referrersTag(subject)}.${suffix}`;
}

/** What an OCI artifactType is, as far as a user cares: an SBOM, an attestation, a signature, or another artifact. */
export function kindOfArtifactType(artifactType: string | undefined): ReferrerKind {
  const t = (artifactType ?? '').toLowerCase();
  if (/spdx|cyclonedx|syft|sbom/.test(t)) return 'sbom';
  if (/in-toto|intoto|dsse|attestation|provenance|vex/.test(t)) return 'attestation';
  if (/(^|[./+-])sig([./+-]|$)|signature|notary|sigstore/.test(t)) return 'signature';
  return 'artifact';
}

/**
 * The descriptor a referrers list holds for a manifest with a subject (distribution spec): its
 * artifactType (else its config's media type) and every annotation of the manifest.
 */
export function referrerDescriptor(desc: Pick<Descriptor, 'mediaType' | 'digest' | 'size'>, parsed: ParsedManifest): Descriptor {
  const v = parsed.value;
  const artifactType = v.artifactType ?? (parsed.kind === 'manifest' ? parsed.value.config.mediaType : undefined);
  return {
    mediaType: parsed.mediaType,
    digest: desc.digest,
    size: desc.size,
    ...(artifactType !== undefined ? { artifactType } : {}),
    ...(v.annotations !== undefined && Object.keys(v.annotations).length > 0 ? { annotations: { ...v.annotations } } : {}),
  };
}

/** What the bundle's index.json says of an entry that is a referrer (absent for an image or chart). */
export function referrerMark(d: Pick<Descriptor, 'annotations'>): { subject: Digest; kind: ReferrerKind } | undefined {
  const subject = d.annotations?.[REFERRER_SUBJECT_ANNOTATION];
  const kind = d.annotations?.[REFERRER_KIND_ANNOTATION];
  if (subject === undefined || !isDigest(subject)) return undefined;
  return { subject, kind: REFERRER_KINDS.includes(kind as ReferrerKind) ? (kind as ReferrerKind) : 'artifact' };
}
