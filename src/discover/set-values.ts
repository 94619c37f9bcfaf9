// `--set` / `--set-string` expressions as helm reads them (pkg/strvals), for the values scan.
// helm itself still gets the original flags for rendering; this only has to agree with it on
// which values end up where.
//
//   a.b=c,d=e   a\.b=c (a key with a dot)   list[0].x=1   name={a,b}   v=null (removes a default)
// With --set, true/false become booleans, null becomes null and integers without a leading zero
// become numbers; everything else (and everything with --set-string) stays a string.
import { UsageError } from '../core/errors.ts';

type Obj = Record<string, unknown>;
type Segment = string | number;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typed(value: string, asString: boolean): unknown {
  if (asString) return value;
  const lower = value.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  if (lower === 'null') return null;
  if (value === '0') return 0;
  if (/^-?[1-9][0-9]*$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  return value;
}

function bad(expr: string, why: string): UsageError {
  return new UsageError(`set value "${expr}": ${why}`, {
    code: 'SET_INVALID',
    hint: 'use key.path=value pairs separated by commas, e.g. image.tag=1.2,metrics.enabled=true',
  });
}

/** Parse one --set argument into key paths and raw values. */
export function parseSetExpression(expr: string): { path: Segment[]; value: string | string[] }[] {
  const out: { path: Segment[]; value: string | string[] }[] = [];
  let i = 0;
  while (i < expr.length) {
    // key
    const path: Segment[] = [];
    let seg = '';
    let done = false;
    while (i < expr.length && !done) {
      const ch = expr[i]!;
      if (ch === '\\' && i + 1 < expr.length) {
        seg += expr[i + 1];
        i += 2;
      } else if (ch === '.') {
        if (seg !== '') path.push(seg);
        seg = '';
        i++;
      } else if (ch === '[') {
        if (seg !== '') path.push(seg);
        seg = '';
        const close = expr.indexOf(']', i);
        if (close < 0) throw bad(expr, 'a "[" without "]"');
        const n = Number(expr.slice(i + 1, close));
        if (!Number.isSafeInteger(n) || n < 0 || n > 65535) throw bad(expr, `list index "${expr.slice(i + 1, close)}" is not a small non-negative integer`);
        path.push(n);
        i = close + 1;
      } else if (ch === '=') {
        if (seg !== '') path.push(seg);
        done = true;
        i++;
      } else if (ch === ',') {
        throw bad(expr, `key "${seg}" has no "=value"`);
      } else {
        seg += ch;
        i++;
      }
    }
    if (!done) throw bad(expr, `key "${[...path, seg].join('.')}" has no "=value"`);
    if (path.length === 0) throw bad(expr, 'an empty key');
    // value
    if (expr[i] === '{') {
      const close = expr.indexOf('}', i);
      if (close < 0) throw bad(expr, 'a "{" list without "}"');
      const inner = expr.slice(i + 1, close);
      out.push({ path, value: inner === '' ? [] : inner.split(',') });
      i = close + 1;
      if (expr[i] === ',') i++;
      continue;
    }
    let value = '';
    while (i < expr.length && expr[i] !== ',') {
      if (expr[i] === '\\' && i + 1 < expr.length) {
        value += expr[i + 1];
        i += 2;
      } else value += expr[i++];
    }
    if (expr[i] === ',') i++;
    out.push({ path, value });
  }
  return out;
}

function setPath(root: Obj, path: Segment[], value: unknown): void {
  let node: Obj | unknown[] = root;
  for (let k = 0; k < path.length; k++) {
    const seg = path[k]!;
    const last = k === path.length - 1;
    const nextIsIndex = typeof path[k + 1] === 'number';
    if (typeof seg === 'number') {
      if (!Array.isArray(node)) return;
      while (node.length <= seg) node.push(null);
      if (last) node[seg] = value;
      else {
        if (nextIsIndex ? !Array.isArray(node[seg]) : !isObj(node[seg])) node[seg] = nextIsIndex ? [] : {};
        node = node[seg] as Obj | unknown[];
      }
    } else {
      if (Array.isArray(node)) return;
      if (last) node[seg] = value;
      else {
        if (nextIsIndex ? !Array.isArray(node[seg]) : !isObj(node[seg])) node[seg] = nextIsIndex ? [] : {};
        node = node[seg] as Obj | unknown[];
      }
    }
  }
}

/** Apply one --set (or --set-string) argument to `values`, in place. */
export function applySet(values: Obj, expr: string, asString: boolean): void {
  for (const { path, value } of parseSetExpression(expr)) {
    setPath(values, path, Array.isArray(value) ? value.map((v) => typed(v, asString)) : typed(value, asString));
  }
}

/** helm's merge of -f files: maps merge key by key, anything else is replaced by the later file. */
export function mergeValues(dest: Obj, src: Obj): Obj {
  for (const [k, v] of Object.entries(src)) {
    const d = dest[k];
    if (isObj(v) && isObj(d)) mergeValues(d, v);
    else dest[k] = v;
  }
  return dest;
}
