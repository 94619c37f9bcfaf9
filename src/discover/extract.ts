// Images in rendered Kubernetes objects (pure: no fs, no network).
//
//  - Pod specs are found by shape, not by kind: any object with `containers: [{name, image}]`, so
//    every workload kind and every custom resource that embeds a pod template or pod spec counts,
//    wherever it nests it (`spec.template.spec`, `spec.jobTemplate.spec.template.spec`, …).
//  - Custom resources: fields whose key says image, and `{registry, repository, tag, digest}` maps.
//  - Container args, command and env values, and ConfigMap data: free text, strict rules.
//  - `List` kinds are opened item by item.
import { hubContextOf, imageFromField, imageFromHub, imageFromMap, imageFromNamedField, keyHintsImage, type HubContext } from './image-rules.ts';
import { scanKeyedValue, scanText } from './text-scan.ts';
import { parseEmbeddedDocument } from './embedded.ts';
import type { ExtractContext, ExtractResult, Finding, Manifest, Reason } from './types.ts';
import { addFinding, sortFindings } from './findings.ts';
import { joinPath as join } from './values-path.ts';
import { isValidTag } from '../core/reference.ts';

type Obj = Record<string, unknown>;

const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;
/** API groups of built-in kinds: their `image` fields live only in pod specs. */
const BUILTIN_GROUPS = /^(|apps|batch|extensions|policy|autoscaling|networking\.k8s\.io|rbac\.authorization\.k8s\.io|storage\.k8s\.io|apiextensions\.k8s\.io|admissionregistration\.k8s\.io|apiregistration\.k8s\.io|scheduling\.k8s\.io|coordination\.k8s\.io|discovery\.k8s\.io|node\.k8s\.io|certificates\.k8s\.io|events\.k8s\.io|flowcontrol\.apiserver\.k8s\.io|resource\.k8s\.io|authentication\.k8s\.io|authorization\.k8s\.io)$/;
const MAX_DEPTH = 64;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}


/** `containers: [{…}]` where every entry is an object with a name or an image: a pod spec. */
function isPodSpec(o: Obj): boolean {
  return CONTAINER_LISTS.some((k) => {
    const list = o[k];
    return (
      Array.isArray(list) &&
      list.length > 0 &&
      list.every((c) => isObj(c) && (typeof c.name === 'string' || typeof c.image === 'string'))
    );
  });
}

/**
 * Operators compose `baseImage` + `version` (or `tag`): an untagged image field takes the tag its
 * map names beside it, so `{baseImage: quay.io/thanos/thanos, version: v0.34.0}` is that version.
 */
function withSiblingTag(map: Obj, value: string): string | undefined {
  const last = value.slice(value.lastIndexOf('/') + 1);
  // Only a repository path (`registry/name`) is composed: a bare word beside a version is anything.
  if (!value.includes('/') || last.includes(':') || value.includes('@')) return undefined;
  for (const key of ['tag', 'imageTag', 'version']) {
    const t = map[key];
    const tag = typeof t === 'number' ? String(t) : typeof t === 'string' ? t.trim() : '';
    if (isValidTag(tag)) return `${value}:${tag}`;
  }
  return undefined;
}

function groupOf(apiVersion: unknown): string {
  if (typeof apiVersion !== 'string') return '';
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

class Collector {
  readonly findings = new Map<string, Finding>();
  readonly warnings: string[] = [];
  readonly #ctx: ExtractContext;

  constructor(ctx: ExtractContext) {
    this.#ctx = ctx;
  }

  add(reference: string, reason: Omit<Reason, 'chart'>): void {
    addFinding(this.findings, reference, this.#ctx.chart === undefined ? reason : { ...reason, chart: this.#ctx.chart });
  }

  document(object: unknown, origin: string | undefined, depth = 0): void {
    if (!isObj(object) || depth > 8) return;
    const kind = typeof object.kind === 'string' ? object.kind : '';
    if (/List$/.test(kind) && Array.isArray(object.items)) {
      object.items.forEach((item) => this.document(item, origin, depth + 1));
      return;
    }
    if (kind === '') return;
    const meta = isObj(object.metadata) ? object.metadata : {};
    const name = typeof meta.name === 'string' ? meta.name : '?';
    const namespace = typeof meta.namespace === 'string' ? meta.namespace : (this.#ctx.namespace ?? 'default');
    const resource = `${kind}/${namespace}/${name}`;
    const builtin = BUILTIN_GROUPS.test(groupOf(object.apiVersion));
    const base = origin === undefined ? { resource } : { resource, origin };

    if (builtin && kind === 'ConfigMap' && groupOf(object.apiVersion) === '') {
      this.#configMap(object, base);
      return;
    }
    for (const [key, value] of Object.entries(object)) {
      if (key === 'metadata' || key === 'status' || key === 'apiVersion' || key === 'kind') continue;
      this.#walk(value, key, key, base, !builtin, 1);
    }
  }

  #walk(node: unknown, key: string, path: string, base: { resource: string; origin?: string }, custom: boolean, depth: number): void {
    if (depth > MAX_DEPTH) return;
    if (Array.isArray(node)) {
      // items inherit the list's key: `images: [a:1, b:2]`
      node.forEach((item, i) => this.#walk(item, key, join(path, i), base, custom, depth + 1));
      return;
    }
    if (!isObj(node)) {
      if (custom && keyHintsImage(key) && typeof node === 'string') {
        const ref = imageFromNamedField(key, node);
        if (ref) this.add(ref, { ...base, source: 'cr-image-field', path });
      }
      return;
    }
    if (isPodSpec(node)) this.#podSpec(node, path, base);
    if (custom) {
      const map = imageFromMap(node, { allowNameTag: keyHintsImage(key), allowUntagged: keyHintsImage(key) });
      if (map) {
        this.add(map.reference, { ...base, source: 'cr-image-field', path });
        return;
      }
    }
    const podSpec = isPodSpec(node);
    for (const [k, v] of Object.entries(node)) {
      if (podSpec && CONTAINER_LISTS.includes(k as (typeof CONTAINER_LISTS)[number])) continue;
      const sibling = custom && typeof v === 'string' ? withSiblingTag(node, v) : undefined;
      this.#walk(sibling ?? v, k, join(path, k), base, custom, depth + 1);
    }
  }

  #podSpec(spec: Obj, path: string, base: { resource: string; origin?: string }): void {
    // Image volumes (Kubernetes 1.31+) pull an image too: volumes[].image.reference
    if (Array.isArray(spec.volumes)) {
      spec.volumes.forEach((v, i) => {
        if (!isObj(v) || !isObj(v.image) || v.image.reference === undefined) return;
        const ref = imageFromField(v.image.reference);
        if (ref) this.add(ref, { ...base, source: 'pod-spec', path: `${join(join(path, 'volumes'), i)}.image.reference` });
      });
    }
    for (const list of CONTAINER_LISTS) {
      const containers = spec[list];
      if (!Array.isArray(containers)) continue;
      containers.forEach((c, i) => {
        if (!isObj(c)) return;
        const cpath = join(join(path, list), i);
        if ('image' in c) {
          const ref = imageFromField(c.image);
          if (ref) this.add(ref, { ...base, source: 'pod-spec', path: `${cpath}.image` });
          else this.warnings.push(`${base.resource} ${cpath}.image: ${JSON.stringify(c.image)} is not a valid image reference; skipped`);
        }
        for (const field of ['command', 'args'] as const) {
          const items = c[field];
          if (!Array.isArray(items)) continue;
          const strings = items.map((s) => (typeof s === 'string' ? s : ''));
          strings.forEach((s, j) => {
            for (const hit of scanText(s)) this.add(hit.reference, { ...base, source: 'args', path: join(join(cpath, field), j) });
          });
          // `--solver-image` and its value as two list items
          strings.forEach((s, j) => {
            const next = strings[j + 1];
            if (next === undefined || !/^-{1,2}[A-Za-z0-9_.-]*image[A-Za-z0-9_.-]*$/i.test(s)) return;
            for (const hit of scanKeyedValue(s, next)) {
              if (hit.key === s) this.add(hit.reference, { ...base, source: 'args', path: join(join(cpath, field), j + 1) });
            }
          });
        }
        const env = c.env;
        if (Array.isArray(env)) {
          env.forEach((e, j) => {
            if (!isObj(e) || typeof e.name !== 'string' || typeof e.value !== 'string') return;
            for (const hit of scanKeyedValue(e.name, e.value)) this.add(hit.reference, { ...base, source: 'env', path: `${join(join(cpath, 'env'), j)}.value` });
          });
        }
      });
    }
  }

  #configMap(cm: Obj, base: { resource: string; origin?: string }): void {
    const data = cm.data;
    if (!isObj(data)) return;
    for (const [key, value] of Object.entries(data)) {
      if (typeof value !== 'string') continue;
      const path = join('data', key);
      const seen = new Set<string>();
      const embedded = /\n/.test(value.trim()) || /^\s*[{[]/.test(value) ? parseEmbeddedDocument(value) : undefined;
      if (embedded !== undefined) {
        for (const hit of embeddedImages(embedded, '')) {
          seen.add(hit.reference);
          this.add(hit.reference, { ...base, source: 'configmap', path: hit.path === '' ? path : `${path}.${hit.path}`.replace('.[', '[') });
        }
      }
      for (const hit of scanKeyedValue(key, value)) {
        if (!seen.has(hit.reference)) this.add(hit.reference, { ...base, source: 'configmap', path });
      }
    }
  }
}

/** Image references inside a configuration document a ConfigMap carries (YAML or JSON). */
function embeddedImages(node: unknown, path: string, key = '', depth = 0, hub?: HubContext): { reference: string; path: string }[] {
  if (depth > MAX_DEPTH) return [];
  const out: { reference: string; path: string }[] = [];
  if (Array.isArray(node)) {
    node.forEach((v, i) => out.push(...embeddedImages(v, join(path, i), key, depth + 1, hub)));
  } else if (isObj(node)) {
    const map = keyHintsImage(key) ? imageFromMap(node, { allowNameTag: true }) : imageFromMap(node);
    if (map && (keyHintsImage(key) || 'tag' in node || 'digest' in node)) {
      out.push({ reference: map.reference, path });
      return out;
    }
    const inner = hubContextOf(node, hub);
    for (const [k, v] of Object.entries(node)) out.push(...embeddedImages(v, join(path, k), k, depth + 1, inner));
  } else if (typeof node === 'string') {
    const fromHub = imageFromHub(hub, key, node);
    if (fromHub !== undefined) return [{ reference: fromHub, path }];
    const hits = keyHintsImage(key) ? scanKeyedValue(key, node) : scanText(node);
    for (const h of hits) out.push({ reference: h.reference, path });
  }
  return out;
}

/**
 * Every image the given rendered objects use, each with the reasons it was found: pod specs in any
 * kind, custom-resource image fields, container args/command/env, ConfigMap data.
 */
export function extractImages(docs: readonly Manifest[], context: ExtractContext = {}): ExtractResult {
  const c = new Collector(context);
  for (const d of docs) c.document(d.object, d.origin);
  return { findings: sortFindings([...c.findings.values()]), warnings: c.warnings };
}
