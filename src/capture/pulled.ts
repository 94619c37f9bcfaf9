// From pull records to what a deployment used: the images pulled (each pinned by the digest that
// was served, with the tags nodes asked for it by and, for an index, the platforms nodes chose
// from it) and the upstream registries nodes asked for. Pure, and fed one record at a time, so a
// running capture holds one entry per image and registry, not every request it answered.
import { isDigest } from '../core/digest.ts';
import type { PullRecord } from './record.ts';

export interface PulledImage {
  registry: string;
  repository: string;
  /** The digest served for it: an index's, when nodes pulled an index. */
  digest: string;
  mediaType: string | undefined;
  /** Tags nodes asked for that resolved to this digest, sorted (none: pulled by digest only). */
  tags: string[];
  /** For an index: the platforms nodes pulled from it, sorted. */
  platforms: string[];
  /** Nodes that asked for it, sorted. */
  clients: string[];
  /** Some manifest or blob of it was refused (bad bytes upstream) or failed. */
  problems: number;
}

export interface UpstreamSummary {
  registry: string;
  /** Requests for manifests and blobs relayed to it. */
  requests: number;
  /** Of which did not end `ok`. */
  failed: number;
  /** Bytes of blobs and manifests answered whole. */
  bytes: number;
}

export interface CaptureSummary {
  images: PulledImage[];
  upstreams: UpstreamSummary[];
  /** Records whose outcome was `refused`: bytes upstream that did not match their digest. */
  refused: PullRecord[];
  /** Manifests nodes asked for that the upstream does not have (`registry/repository:tag` or `@digest`), sorted. */
  notFound: string[];
  requests: number;
}

interface ImageEntry {
  registry: string;
  repository: string;
  digest: string;
  mediaType: string | undefined;
  tags: Set<string>;
  platforms: Set<string>;
  clients: Set<string>;
  problems: number;
}

/** At most this many refused records (and missing manifests) are kept for the summary (each is also in the record file). */
const MAX_REFUSED_KEPT = 100;

export class PullLedger {
  readonly #images = new Map<string, ImageEntry>();
  readonly #upstreams = new Map<string, UpstreamSummary>();
  readonly #refused: PullRecord[] = [];
  readonly #notFound = new Set<string>();
  #requests = 0;

  add(r: PullRecord): void {
    this.#requests++;
    const up = this.#upstreams.get(r.registry) ?? { registry: r.registry, requests: 0, failed: 0, bytes: 0 };
    this.#upstreams.set(r.registry, up);
    up.requests++;
    if (r.outcome !== 'ok') up.failed++;
    else if (r.method === 'GET' && r.size !== undefined) up.bytes += r.size;
    if (r.outcome === 'refused' && this.#refused.length < MAX_REFUSED_KEPT) this.#refused.push(r);
    if (r.outcome === 'not-found' && r.kind === 'manifest' && this.#notFound.size < MAX_REFUSED_KEPT) {
      this.#notFound.add(`${r.registry}/${r.repository}${isDigest(r.reference) ? '@' : ':'}${r.reference}`);
    }
    if (r.kind !== 'manifest' || r.digest === undefined || (r.outcome !== 'ok' && r.outcome !== 'refused')) return;
    // A manifest chosen from an index belongs to that index's image: the index is what was pinned.
    const digest = r.index ?? r.digest;
    const key = `${r.registry}/${r.repository}@${digest}`;
    let e = this.#images.get(key);
    if (!e) {
      e = { registry: r.registry, repository: r.repository, digest, mediaType: r.index === undefined ? r.mediaType : undefined, tags: new Set(), platforms: new Set(), clients: new Set(), problems: 0 };
      this.#images.set(key, e);
    }
    if (r.index === undefined) e.mediaType = r.mediaType;
    if (r.platform !== undefined) e.platforms.add(r.platform);
    // A tag asked for names the image (the index, when the node was given one of its manifests for it).
    if (!isDigest(r.reference)) e.tags.add(r.reference);
    e.clients.add(r.client);
    if (r.outcome !== 'ok') e.problems++;
  }

  summary(): CaptureSummary {
    const images = [...this.#images.values()]
      .map((e) => ({
        registry: e.registry,
        repository: e.repository,
        digest: e.digest,
        mediaType: e.mediaType,
        tags: [...e.tags].sort(),
        platforms: [...e.platforms].sort(),
        clients: [...e.clients].sort(),
        problems: e.problems,
      }))
      .sort((a, b) => cmp(`${a.registry}/${a.repository}@${a.digest}`, `${b.registry}/${b.repository}@${b.digest}`));
    const upstreams = [...this.#upstreams.values()].map((u) => ({ ...u })).sort((a, b) => cmp(a.registry, b.registry));
    return { images, upstreams, refused: [...this.#refused], notFound: [...this.#notFound].sort(), requests: this.#requests };
  }
}

/** The summary of records read back (a record file). */
export function summarize(records: Iterable<PullRecord>): CaptureSummary {
  const l = new PullLedger();
  for (const r of records) l.add(r);
  return l.summary();
}

/** The spec references of a pulled image: one per tag it was asked for, each pinned; none asked: by digest. */
export function pinnedReferences(img: Pick<PulledImage, 'registry' | 'repository' | 'digest' | 'tags'>): string[] {
  const name = `${img.registry}/${img.repository}`;
  return img.tags.length > 0 ? img.tags.map((t) => `${name}:${t}@${img.digest}`) : [`${name}@${img.digest}`];
}


function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
