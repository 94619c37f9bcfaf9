// When is a string an image reference? The answer depends on where it stands.
//
//  - In a field the schema defines as an image (`containers[].image`) anything that parses is one.
//  - In a custom resource field whose name says image, it must parse and look like a reference.
//  - In free text (args, command, env values, ConfigMap data) it must be unmistakable: an explicit
//    tag or digest, under a key that says image (`--solver-image=`, `SIDECAR_IMAGE=`), or, with no
//    such key, a registry host with a dot in front of a path. Labels, host:port pairs, version
//    strings, URLs, file paths and key=value pairs are refused.
import { formatReference, parseReference, splitReference, type Reference } from '../core/reference.ts';

const DIGEST_TEXT = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;
/** Domains of well-known label and annotation keys (`kubernetes.io/os:linux` is not an image). */
const LABEL_DOMAINS = /(^|\.)(kubernetes\.io|helm\.sh|prometheus\.io|x-k8s\.io|istio\.io|cert-manager\.io)$|^k8s\.io$/;

/** Does this key (a field name, env name, flag or data key) say that its value is an image? */
export function keyHintsImage(key: string): boolean {
  return /image/i.test(key);
}

function tryParse(text: string): Reference | undefined {
  try {
    return parseReference(text);
  } catch {
    return undefined;
  }
}

function basicallyClean(text: string): boolean {
  return text.length > 0 && text.length <= 512 && !/\s/.test(text) && !text.includes('://') && !/[{}$=,;"'`<>|\\]/.test(text);
}

/** A field the schema defines as an image (`containers[].image`): anything that parses. */
export function imageFromField(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  if (!basicallyClean(value)) return undefined;
  const ref = tryParse(value);
  return ref ? formatReference(ref) : undefined;
}

/**
 * A custom-resource field whose key says image (`image`, `sidecarImage`, `images[2]`). A bare word
 * is accepted only under a key named exactly `image`; otherwise the value must carry a `/`, a tag
 * or a digest, so a `defaultImage: true` or an `imageTag: v2` is not taken for an image.
 */
export function imageFromNamedField(key: string, value: unknown): string | undefined {
  if (typeof value !== 'string' || !basicallyClean(value)) return undefined;
  if (value.startsWith('/') || value.startsWith('.') || value.startsWith('-')) return undefined;
  const { name, tag, digest } = splitReference(value);
  const exact = key.toLowerCase() === 'image';
  if (!exact && !name.includes('/') && tag === undefined && digest === undefined) return undefined;
  if (!exact && tag !== undefined && digest === undefined && looksLikeHostPort(name, tag)) return undefined;
  const ref = tryParse(value);
  return ref ? formatReference(ref) : undefined;
}

function looksLikeHostPort(name: string, tag: string): boolean {
  if (name.includes('/')) return false;
  if (name.includes('.') || name === 'localhost') return true;
  // Ports are 3–5 digits; numeric image tags without a path (`postgres:16`) are short.
  return /^[0-9]{3,5}$/.test(tag) && Number(tag) <= 65535;
}

/**
 * A candidate from free text (args, command, env, ConfigMap data). `keyed` says the key or flag
 * it stood under names an image. Returns the normalised reference, or undefined if it is not one.
 */
export function imageFromText(raw: string, keyed: boolean): string | undefined {
  const text = raw.replace(/^["']+|["']+$/g, '');
  if (!basicallyClean(text)) return undefined;
  if (/^[/.~\-:@]/.test(text)) return undefined;
  const { name, tag, digest } = splitReference(text);
  if (tag === undefined && digest === undefined) return undefined;
  if (digest !== undefined && !DIGEST_TEXT.test(digest)) return undefined;
  if (tag !== undefined && digest === undefined && looksLikeHostPort(name, tag)) return undefined;
  if (!keyed) {
    // Without a key saying "image", only a registry host in front of a path is convincing.
    const slash = name.indexOf('/');
    if (slash < 0) return undefined;
    const host = name.slice(0, slash);
    if (!host.includes('.') || LABEL_DOMAINS.test(host.replace(/:[0-9]+$/, ''))) return undefined;
    if (digest === undefined && !/[0-9]/.test(tag ?? '')) return undefined;
  }
  const ref = tryParse(text);
  return ref ? formatReference(ref) : undefined;
}

export interface MapImage {
  /** The reference as the chart would most likely compose it. */
  reference: string;
  /** Other compositions that mean the same slot (with or without a global registry). */
  variants: string[];
  /** No tag or digest in the map: the tag came from the chart's appVersion (or `latest`). */
  tagDefaulted: boolean;
}

export interface MapImageOptions {
  /** `global.imageRegistry` (or another global registry key): wins over a map's own `registry`, like the common library charts. */
  globalRegistry?: string | undefined;
  /** Tag to use when the map has none (a chart's appVersion, as `helm create` charts do). */
  defaultTag?: string | undefined;
  /** `v1.30.2`: what an untagged kubectl image means (the cluster's version); without it such an image is left out. */
  kubeVersion?: string | undefined;
  /** Accept `{name, tag}` maps (only where the key says image: `name` alone means too many things). */
  allowNameTag?: boolean;
  /** Accept maps with a repository but neither tag nor digest (only where the key says image). */
  allowUntagged?: boolean;
}

function scalarText(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** Images whose empty tag charts fill with the Kubernetes version (`.Capabilities.KubeVersion`). */
const KUBE_VERSIONED = /(^|\/)(kubectl|hyperkube|kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy)$/;

/** `1.30` → `v1.30.0`, as helm reads --kube-version. */
export function normaliseKubeVersion(v: string | undefined): string | undefined {
  const m = v === undefined ? null : /^v?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?([-+].*)?$/.exec(v.trim());
  return m ? `v${m[1]}.${m[2]}.${m[3] ?? '0'}${m[4] ?? ''}` : undefined;
}

/** Could this text be an image tag (`1.4.2`, `v2`, `2024.01-alpine`)? */
export function isValidTagText(t: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(t);
}

/** Does the first path component name a registry host (`ghcr.io/x`, `localhost:5000/x`)? */
function hasRegistryHost(repo: string): boolean {
  const slash = repo.indexOf('/');
  if (slash < 0) return false;
  const first = repo.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/**
 * An image-shaped map: `{registry, repository, tag, digest}`, `{repository, tag}`, `{image, tag}`,
 * `{name, tag}`, `{registry, name}`. Returns undefined for any other map or when the pieces do not
 * form a reference.
 */
export function imageFromMap(map: Record<string, unknown>, opts: MapImageOptions = {}): MapImage | undefined {
  // `version` stands for the tag under a key that says image (`{name, version}` in linkerd's values)
  // and beside a repository path (`{image: vendor.example/app/admin, version: 2.3}`).
  const pathImage = typeof map.image === 'string' && map.image.includes('/');
  const tagKey = 'tag' in map ? 'tag' : (opts.allowNameTag || pathImage) && 'version' in map ? 'version' : undefined;
  const tagged = tagKey !== undefined || 'digest' in map;
  let repo: string | undefined;
  if (typeof map.repository === 'string') repo = map.repository.trim();
  else if (typeof map.image === 'string' && tagged) repo = map.image.trim();
  else if (opts.allowNameTag && typeof map.name === 'string' && (tagged || typeof map.registry === 'string')) repo = map.name.trim();
  if (!repo) return undefined;
  const tag = tagKey === undefined ? undefined : scalarText(map[tagKey]);
  const digest = typeof map.digest === 'string' ? map.digest.trim() : undefined;
  const ownRegistry = typeof map.registry === 'string' ? map.registry.trim() : undefined;
  const hasTag = Boolean(tag) || Boolean(digest) || /[:@]/.test(repo.slice(repo.lastIndexOf('/') + 1));
  if (!hasTag && !opts.allowUntagged && tagKey === undefined) return undefined;
  if (digest && !DIGEST_TEXT.test(digest)) return undefined;

  let suffix = '';
  let tagDefaulted = false;
  if (tag) suffix += `:${tag}`;
  else if (!/[:@]/.test(repo.slice(repo.lastIndexOf('/') + 1)) && !digest) {
    tagDefaulted = true;
    if (KUBE_VERSIONED.test(repo)) {
      // the cluster's version, never `latest` or the chart's appVersion
      if (opts.kubeVersion === undefined) return undefined;
      suffix += `:${opts.kubeVersion}`;
    } else if (opts.defaultTag) suffix += `:${opts.defaultTag}`;
  }
  if (digest) suffix += `@${digest}`;

  const compose = (registry: string | undefined): string | undefined => {
    const name = registry ? `${registry.replace(/\/+$/, '')}/${repo}` : repo!;
    return imageFromField(`${name}${suffix}`);
  };
  const global = opts.globalRegistry?.trim() || undefined;
  // Common charts: a global registry replaces a map's own registry; a repository that names no
  // registry host of its own is prefixed with it.
  const primaryRegistry = 'registry' in map ? (global ?? ownRegistry) : hasRegistryHost(repo) ? undefined : global;
  const primary = compose(primaryRegistry);
  if (primary === undefined) return undefined;
  const variants = new Set<string>();
  for (const r of [ownRegistry, global, undefined]) {
    const v = compose(r);
    if (v !== undefined && v !== primary) variants.add(v);
  }
  return { reference: primary, variants: [...variants], tagDefaulted };
}

/**
 * A repository path standing alone under an image key (`admin.image: vendor.example/app/admin`),
 * its tag from another key (`.Values.appVersion`, `.Chart.AppVersion`): composed like a map.
 */
export function imageFromUntaggedText(text: string, opts: MapImageOptions): MapImage | undefined {
  const t = text.trim();
  if (!t.includes('/') || /[:@]/.test(t.slice(t.lastIndexOf('/') + 1)) || !basicallyClean(t) || /^[/.~-]/.test(t)) return undefined;
  return imageFromMap({ repository: t }, { ...opts, allowUntagged: true });
}

/** A map that sets `hub` and `tag` for the images named below it (istio's values: `global.hub`). */
export interface HubContext {
  hub: string;
  tag: string;
}

/** The hub context a map sets, or the one it inherits. */
export function hubContextOf(map: Record<string, unknown>, inherited: HubContext | undefined): HubContext | undefined {
  const hub = typeof map.hub === 'string' ? map.hub.trim().replace(/\/+$/, '') : '';
  const tag = scalarText(map.tag) ?? '';
  return hub.includes('/') || hub.includes('.') ? (tag !== '' ? { hub, tag } : inherited) : inherited;
}

/** `image: proxyv2` below a hub context: `docker.io/istio/proxyv2:1.24.0`. */
export function imageFromHub(ctx: HubContext | undefined, key: string, value: unknown): string | undefined {
  if (!ctx || typeof value !== 'string' || !/^image$/i.test(key)) return undefined;
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(value)) return undefined;
  return imageFromField(`${ctx.hub}/${value}:${ctx.tag}`);
}
