// Paths into YAML: `spec.template.spec.containers[0].image` for resources, and values paths in the
// form `--set` accepts (`ingress.annotations.nginx\.org/x`, `sidecars[1].image`).

export type PathSegment = string | number;

/** A path inside a resource, for people: keys joined by dots, odd keys quoted, indexes in brackets. */
export function joinPath(path: string, key: PathSegment): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

/** A values path as `--set` takes it: dots in keys escaped, list indexes in brackets. */
export function formatValuesPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += `${out === '' ? '' : '.'}${s.replace(/([.,=\\[\]])/g, '\\$1')}`;
  }
  return out;
}

/** `joinPath`'s output (`a.b[0]["c.d"]`) back into its segments; undefined for text of another form. */
export function splitPath(path: string): PathSegment[] | undefined {
  const out: PathSegment[] = [];
  const re = /([A-Za-z_][A-Za-z0-9_-]*)|\[([0-9]+)\]|\[("(?:[^"\\]|\\.)*")\]|(\.)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < path.length && (m = re.exec(path)) !== null) {
    pos = re.lastIndex;
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(JSON.parse(m[3]) as string);
  }
  return pos === path.length ? out : undefined;
}

/** The value at `segments` in parsed YAML (keys into maps, numbers into lists); undefined when absent. */
export function valueAt(values: unknown, segments: readonly PathSegment[]): unknown {
  let node = values;
  for (const s of segments) {
    if (typeof s === 'number') node = Array.isArray(node) ? node[s] : undefined;
    else node = typeof node === 'object' && node !== null && !Array.isArray(node) ? (node as Record<string, unknown>)[s] : undefined;
  }
  return node;
}
