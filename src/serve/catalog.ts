// The names a served bundle set answers to. Each image `host/path:tag` is served twice:
//   - as pushed: `[PREFIX/]path:tag`, through the one mapping function push and rewrite use, so a
//     node pulls from `airlock serve` exactly what it would pull from a registry `airlock push` filled;
//   - as a mirror of its original registry: containerd and k3s send `?ns=host` with the original
//     path (`/v2/library/nginx/manifests/1.27?ns=docker.io`), so nodes pull by original name.
// A repository holds its images' tags and every digest of their graphs: a blob is served under
// any name whose images use it.
import { DOCKER_HUB, formatReference } from '../core/reference.ts';
import { mapAll, mapReference, type Target } from '../rewrite/mapping.ts';
import type { SetImage } from './bundle-set.ts';

export interface Repository {
  name: string;
  /** tag → image */
  tags: ReadonlyMap<string, SetImage>;
  /** Every digest of every image in the repository. */
  digests: ReadonlySet<string>;
  images: readonly SetImage[];
}

export interface Catalog {
  prefix: string;
  /** Repositories as pushed, sorted by name (what `/v2/_catalog` lists). */
  repositories: readonly Repository[];
  /** The repository a request names; `ns` is the original registry a mirror request carries. */
  lookup(name: string, ns?: string): Repository | undefined;
  /** Where an image is served: `[PREFIX/]path[:tag|@digest]`, relative to the server. */
  servedName(image: SetImage): string;
}

class MutableRepository implements Repository {
  readonly name: string;
  readonly tags = new Map<string, SetImage>();
  readonly digests = new Set<string>();
  readonly images: SetImage[] = [];
  constructor(name: string) {
    this.name = name;
  }
  add(img: SetImage, tag: string | undefined): void {
    this.images.push(img);
    if (tag !== undefined) this.tags.set(tag, img);
    this.addDigests(img);
  }
  addDigests(img: SetImage): void {
    for (const d of img.digests) this.digests.add(d);
  }
}

/** Hosts that name Docker Hub in a mirror request's `ns`. */
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

export function normalizeNamespace(ns: string): string {
  const lower = ns.toLowerCase();
  return HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
}

/**
 * Build the names. Two originals that would land on one served name and tag (docker.io/x/app:1
 * and quay.io/x/app:1) are the conflict push refuses too: ConflictError before serving anything.
 */
export function buildCatalog(images: readonly SetImage[], prefix = '', shadowed: readonly SetImage[] = [], keepHost = false): Catalog {
  // The registry part of the target is not part of any served name; only the prefix (and the source host, when kept) is.
  const target: Target = { registry: 'airlock.serve', prefix, ...(keepHost ? { keepHost } : {}) };
  const mapping = mapAll(
    images.map((i) => i.reference),
    target,
  );
  const plain = new Map<string, MutableRepository>();
  const mirror = new Map<string, MutableRepository>();
  // A k3s mirror with a rewrite rule sends the served path *and* ns: `P/library/nginx?ns=docker.io`.
  const plainBySource = new Map<string, MutableRepository>();
  const get = (m: Map<string, MutableRepository>, key: string, name: string): MutableRepository => {
    let r = m.get(key);
    if (!r) m.set(key, (r = new MutableRepository(name)));
    return r;
  };
  for (const img of images) {
    const ref = img.reference;
    const mapped = mapping.get(formatReference(ref)) ?? mapReference(ref, target);
    get(plain, mapped.repository, mapped.repository).add(img, mapped.tag);
    get(plainBySource, `${ref.registry.toLowerCase()}\n${mapped.repository}`, mapped.repository).add(img, mapped.tag);
    get(mirror, `${ref.registry.toLowerCase()}\n${ref.repository}`, ref.repository).add(img, ref.tag);
  }
  for (const img of shadowed) {
    const ref = img.reference;
    const mapped = mapReference(ref, target);
    get(plain, mapped.repository, mapped.repository).addDigests(img);
    get(plainBySource, `${ref.registry.toLowerCase()}\n${mapped.repository}`, mapped.repository).addDigests(img);
    get(mirror, `${ref.registry.toLowerCase()}\n${ref.repository}`, ref.repository).addDigests(img);
  }
  const repositories = [...plain.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    prefix,
    repositories,
    lookup(name, ns) {
      if (ns === undefined || ns === '') return plain.get(name);
      const host = normalizeNamespace(ns);
      return mirror.get(`${host}\n${name}`) ?? plainBySource.get(`${host}\n${name}`);
    },
    servedName(img) {
      const m = mapReference(img.reference, target);
      return m.tag !== undefined ? `${m.repository}:${m.tag}` : `${m.repository}@${img.root.digest}`;
    },
  };
}
