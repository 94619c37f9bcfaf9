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
