// Paths discovery reports inside a resource (`spec.template.spec.containers[0].image`,
// `data["operator.yaml"]`), read back into segments so the same place can be found in the YAML
// document again. The inverse of discover/values-path.ts joinPath.
import type { PathSegment } from '../discover/values-path.ts';

export function parseResourcePath(path: string): PathSegment[] {
  const out: PathSegment[] = [];
  let i = 0;
  while (i < path.length) {
    const ch = path[i]!;
    if (ch === '.') {
      i++;
      continue;
    }
    if (ch === '[') {
      if (path[i + 1] === '"') {
        // a JSON string: find its closing quote (escaped quotes skipped), then the `]`
        let j = i + 2;
        while (j < path.length && path[j] !== '"') j += path[j] === '\\' ? 2 : 1;
        out.push(JSON.parse(path.slice(i + 1, j + 1)) as string);
        i = j + 2;
      } else {
        const close = path.indexOf(']', i);
        out.push(Number(path.slice(i + 1, close < 0 ? path.length : close)));
        i = close < 0 ? path.length : close + 1;
      }
      continue;
    }
    let j = i;
    while (j < path.length && path[j] !== '.' && path[j] !== '[') j++;
    out.push(path.slice(i, j));
    i = j;
  }
  return out;
}
