// `Range: bytes=…` for blob downloads (RFC 9110 §14). One range is served as 206; a list of
// ranges is ignored (a server may always answer 200 with the whole blob) rather than answered as
// multipart, which no registry client asks for. Like Go's http.ServeContent (what distribution
// uses), a malformed bytes range is refused with 416 rather than ignored.

export type RangeResult =
  | { kind: 'none' }
  | { kind: 'range'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const SPEC = /^(\d*)-(\d*)$/;

/** `end` is inclusive, as in Content-Range. */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' };
  const h = header.trim();
  const eq = h.indexOf('=');
  if (eq < 0) return { kind: 'unsatisfiable' };
  // Other units are ignored (RFC 9110 §14.2).
  if (h.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'none' };
  const spec = h.slice(eq + 1).trim();
  if (spec.includes(',')) {
    // A list of ranges: check the syntax, then serve the whole blob.
    return spec.split(',').every((s) => SPEC.test(s.trim()) && s.trim() !== '-') ? { kind: 'none' } : { kind: 'unsatisfiable' };
  }
  const m = SPEC.exec(spec);
  if (!m) return { kind: 'unsatisfiable' };
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return { kind: 'unsatisfiable' };
  if (first === '') {
    const n = Number(last);
    if (!Number.isSafeInteger(n) || n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (!Number.isSafeInteger(start) || start >= size) return { kind: 'unsatisfiable' };
  if (last === '') return { kind: 'range', start, end: size - 1 };
  const end = Number(last);
  if (!Number.isSafeInteger(end) && !/^\d+$/.test(last)) return { kind: 'unsatisfiable' };
  if (end < start) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end: Math.min(Number.isSafeInteger(end) ? end : size - 1, size - 1) };
}
