// Where in a rendered object each image stands, as segments from the document root (pure).
// Discovery's extractor decides what is an image and where (pod specs of every kind, custom
// resource image fields, args/command/env, ConfigMap data); this only turns its reasons back into
// places, opening `List` items one by one so their index is known.
import { extractImages } from '../discover/extract.ts';
import type { ExtractContext, ReasonSource } from '../discover/types.ts';
import { joinPath, type PathSegment } from '../discover/values-path.ts';
import { parseResourcePath } from './resource-path.ts';

export interface ImageLocation {
  /** From the document root to the string (or image map) that names the image(s). */
  segments: PathSegment[];
  source: ReasonSource;
  /** `Kind/namespace/name`, as discovery reports it. */
  resource: string;
  /** The path discovery reports inside the resource (for ConfigMaps, the data key holding the text). */
  path: string;
  /** Normalised references found there, sorted. */
  references: string[];
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function collect(object: unknown, prefix: PathSegment[], context: ExtractContext, into: Map<string, ImageLocation>, warnings: string[], depth: number): void {
  if (!isObj(object) || depth > 8) return;
  if (typeof object.kind === 'string' && /List$/.test(object.kind) && Array.isArray(object.items)) {
    object.items.forEach((item, i) => collect(item, [...prefix, 'items', i], context, into, warnings, depth + 1));
    return;
  }
  const { findings, warnings: w } = extractImages([{ object }], context);
  warnings.push(...w);
  for (const f of findings) {
    for (const r of f.reasons) {
      let inner = parseResourcePath(r.path);
      // ConfigMap paths go on into the document a data value carries; the value is one string.
      if (r.source === 'configmap') inner = inner.slice(0, 2);
      const segments = [...prefix, ...inner];
      const key = JSON.stringify(segments);
      const at = into.get(key);
      if (at) {
        if (!at.references.includes(f.reference)) at.references.push(f.reference);
        continue;
      }
      const path = r.source === 'configmap' ? inner.reduce<string>((p, s) => joinPath(p, s), '') : r.path;
      into.set(key, { segments, source: r.source, resource: r.resource, path, references: [f.reference] });
    }
  }
}

/** Every place in one rendered object (a resource or a List of them) where discovery finds an image. */
export function locateImages(object: unknown, context: ExtractContext = {}): { locations: ImageLocation[]; warnings: string[] } {
  const into = new Map<string, ImageLocation>();
  const warnings: string[] = [];
  collect(object, [], context, into, warnings, 0);
  const locations = [...into.values()];
  for (const l of locations) l.references.sort();
  return { locations, warnings };
}
