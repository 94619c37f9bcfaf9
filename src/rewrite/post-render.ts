// The post-renderer (pure): rendered manifests in, the same manifests out with every image
// reference mapped to the target registry. Discovery's extractor says where the images are (pod
// specs of every kind, custom resource image fields and maps, container args/command/env,
// ConfigMap data); each place is found again in the parsed YAML document and only the characters
// of the reference's name are replaced in the source text (node ranges from the yaml Document API).
// So documents, their order, comments, quoting and every other field come out byte for byte as
// they went in. The output is parsed again and searched again: what still points elsewhere is
// reported, never silently passed over.
import { isAlias, isMap, isScalar, isSeq, parseAllDocuments, type Document, type Scalar, type YAMLMap } from 'yaml';
import { IntegrityError, UsageError } from '../core/errors.ts';
import { formatReference, parseReference } from '../core/reference.ts';
import type { ReasonSource } from '../discover/types.ts';
import type { PathSegment } from '../discover/values-path.ts';
import { ImageSet, isAtTarget, mapImagesInText, mapLiteral, targetOf, type BareNames, type TextMapping } from './image-text.ts';
import { locateImages, type ImageLocation } from './locate.ts';
import type { Target } from './mapping.ts';
import { yamlValue } from '../util/yaml.ts';

export interface PostRenderOptions {
  /** Namespace for resources that name none, in reports (helm's --namespace; default `default`). */
  namespace?: string;
}

export interface RewrittenImage {
  resource: string;
  path: string;
  from: string;
  to: string;
}

export interface RemainingImage {
  resource: string;
  path: string;
  source: ReasonSource;
  image: string;
}

export interface PostRenderResult {
  text: string;
  /** Each reference replaced, once per place. */
  changed: RewrittenImage[];
  /** Images the output still pulls from outside the target (re-read from the output). */
  remaining: RemainingImage[];
  documents: number;
  warnings: string[];
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

type AnyNode = NonNullable<Document['contents']>;

function parseStream(text: string): Document[] {
  const docs = parseAllDocuments(text, { uniqueKeys: false, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((d, i) => {
    if (d.errors.length > 0) {
      throw new UsageError(`rendered manifests: document ${i + 1} is not valid YAML: ${d.errors[0]!.message.split('\n')[0]}`, {
        code: 'YAML_INVALID',
        hint: 'post-render reads what `helm template` (or helm as a post-renderer) writes: Kubernetes objects as multi-document YAML',
      });
    }
  });
  return list as Document[];
}

function nodeAt(doc: Document, segments: readonly PathSegment[]): AnyNode | undefined {
  let node: unknown = doc.contents;
  for (const seg of segments) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) node = node.get(seg, true);
    else if (isSeq(node) && typeof seg === 'number') node = node.get(seg, true);
    else return undefined;
  }
  if (isAlias(node)) node = node.resolve(doc);
  return (node ?? undefined) as AnyNode | undefined;
}

function sameMappings(a: TextMapping[], b: TextMapping[]): boolean {
  return a.length === b.length && a.every((m, i) => m.from === b[i]!.from && m.to === b[i]!.to);
}

/**
 * The new source text of a string scalar: the references replaced in the source itself, so quoting,
 * block style and indentation stay; a scalar whose source differs from its value where a reference
 * stands (escapes) is written again as a double-quoted (JSON) string.
 */
function scalarEdit(source: string, node: Scalar, images: ImageSet, target: Target, bare: BareNames): { edit?: Edit; mappings: TextMapping[] } {
  if (typeof node.value !== 'string' || !node.range) return { mappings: [] };
  const [start, end] = node.range;
  const value = mapImagesInText(node.value, images, target, bare);
  if (value.mappings.length === 0) return { mappings: [] };
  const raw = source.slice(start, end);
  const inSource = mapImagesInText(raw, images, target, bare);
  if (sameMappings(inSource.mappings, value.mappings)) return { edit: { start, end, text: inSource.text }, mappings: value.mappings };
  return { edit: { start, end, text: `${JSON.stringify(value.text)}${raw.endsWith('\n') ? '\n' : ''}` }, mappings: value.mappings };
}

/** A scalar holding `value`, in the style `node` was written (block scalars become double-quoted). */
function styled(node: Scalar, value: string, raw: string): string {
  if (node.type === 'QUOTE_SINGLE') return `'${value.replace(/'/g, "''")}'`;
  if (node.type === 'PLAIN' && /^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/.test(value)) return value;
  return `${JSON.stringify(value)}${raw.endsWith('\n') ? '\n' : ''}`;
}

/**
 * An image map (`{registry, repository, tag, digest}`, `{repository, tag}`, `{image, tag}`,
 * `{name, tag}`): the registry and repository are written as the mapping says; tag and digest stay.
 */
function mapEdits(source: string, map: YAMLMap, reference: string, target: Target): { edits: Edit[]; mappings: TextMapping[] } {
  const ref = parseReference(reference);
  if (isAtTarget(ref, target)) return { edits: [], mappings: [] };
  const mapped = targetOf(ref, target);
  const scalar = (key: string): Scalar | undefined => {
    const n = map.get(key, true);
    return isScalar(n) && n.range ? n : undefined;
  };
  const edits: Edit[] = [];
  const set = (node: Scalar, value: string): void => {
    const [start, end] = node.range!;
    if (node.value !== value) edits.push({ start, end, text: styled(node, value, source.slice(start, end)) });
  };
  const mapping = { from: reference, to: formatReference(mapped) };
  // A digest the target holds another index for (Target.digests): its own field, mapped as well.
  const digest = scalar('digest');
  const newDigest = typeof digest?.value === 'string' ? target.digests?.get(digest.value.trim()) : undefined;
  if (digest && newDigest) set(digest, newDigest);
  const registry = scalar('registry');
  if (registry && typeof registry.value === 'string' && registry.value.trim() !== '') {
    const repository = scalar('repository') ?? scalar('image') ?? scalar('name');
    if (!repository || typeof repository.value !== 'string') return { edits: [], mappings: [] };
    set(registry, mapped.registry);
    set(repository, mapped.repository);
    return { edits, mappings: [mapping] };
  }
  for (const key of ['repository', 'image', 'name']) {
    const field = scalar(key);
    if (!field || typeof field.value !== 'string') continue;
    const m = mapLiteral(field.value.trim(), new ImageSet([ref]), target, 'any');
    if (!m) continue;
    set(field, m.text);
    return { edits, mappings: [mapping] };
  }
  return edits.length > 0 ? { edits, mappings: [mapping] } : { edits: [], mappings: [] };
}

function bareFor(l: ImageLocation): BareNames {
  return l.source === 'pod-spec' || l.source === 'cr-image-field' ? 'any' : 'qualified';
}

function applyEdits(text: string, edits: Edit[]): string {
  const sorted = [...edits].sort((a, b) => b.start - a.start);
  let out = text;
  let limit = Infinity;
  for (const e of sorted) {
    if (e.end > limit) continue; // overlapping: the later place wins, the result is re-checked anyway
    out = `${out.slice(0, e.start)}${e.text}${out.slice(e.end)}`;
    limit = e.start;
  }
  return out;
}

function objectsOf(docs: Document[]): unknown[] {
  return docs.map((d) => yamlValue(d, 'the rendered manifests', 'YAML_INVALID', 1000));
}

/** Images in rendered manifests that do not point at the target. */
export function imagesOutside(text: string, target: Target, opts: PostRenderOptions = {}): RemainingImage[] {
  return remainingIn(objectsOf(parseStream(text)), target, opts);
}

function remainingIn(objects: unknown[], target: Target, opts: PostRenderOptions): RemainingImage[] {
  const out: RemainingImage[] = [];
  for (const object of objects) {
    for (const l of locateImages(object, { namespace: opts.namespace ?? 'default' }).locations) {
      for (const image of l.references) {
        if (!isAtTarget(parseReference(image), target)) out.push({ resource: l.resource, path: l.path, source: l.source, image });
      }
    }
  }
  return out;
}

/** Map every image reference in rendered manifests (multi-document YAML) to `target`. */
export function postRender(text: string, target: Target, opts: PostRenderOptions = {}): PostRenderResult {
  const docs = parseStream(text);
  const context = { namespace: opts.namespace ?? 'default' };
  const edits: Edit[] = [];
  const changed: RewrittenImage[] = [];
  const warnings: string[] = [];
  const objects = objectsOf(docs);
  docs.forEach((doc, i) => {
    const { locations, warnings: w } = locateImages(objects[i], context);
    warnings.push(...w);
    for (const l of locations) {
      const outside = l.references.filter((r) => !isAtTarget(parseReference(r), target));
      if (outside.length === 0) continue;
      const node = nodeAt(doc, l.segments);
      let found: { edits: Edit[]; mappings: TextMapping[] } = { edits: [], mappings: [] };
      if (isScalar(node)) {
        const s = scalarEdit(text, node, new ImageSet(outside), target, bareFor(l));
        found = { edits: s.edit ? [s.edit] : [], mappings: s.mappings };
      } else if (isMap(node) && outside.length === 1) {
        found = mapEdits(text, node, outside[0]!, target);
      }
      edits.push(...found.edits);
      const seen = new Set<string>();
      for (const m of found.mappings) {
        if (seen.has(m.from)) continue;
        seen.add(m.from);
        changed.push({ resource: l.resource, path: l.path, from: m.from, to: m.to });
      }
    }
  });
  const out = applyEdits(text, edits);
  let after: Document[];
  try {
    after = parseStream(out);
  } catch (e) {
    throw new IntegrityError(`post-render produced YAML that does not parse (${(e as Error).message})`, {
      code: 'POST_RENDER_BROKEN',
      cause: e,
      hint: 'this is a bug in airlock: report it with the manifests that caused it',
    });
  }
  if (after.length !== docs.length) {
    throw new IntegrityError(`post-render turned ${docs.length} documents into ${after.length}`, { code: 'POST_RENDER_BROKEN', hint: 'this is a bug in airlock: report it with the manifests that caused it' });
  }
  return { text: out, changed, remaining: remainingIn(objectsOf(after), target, opts), documents: docs.length, warnings: [...new Set(warnings)] };
}
