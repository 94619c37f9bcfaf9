// JSON as Go's encoding/json writes it, so documents airlock builds for helm (the chart config,
// the chart manifest) have the bytes `helm push` gives them. Callers build objects in Go struct
// field order; maps (Go map[string]…) are sorted here with sortedMap.

/**
 * Go escapes <, > and & (HTML safety) and U+2028/U+2029; everything else matches JSON.stringify
 * (Go 1.22+ writes \b and \f like JavaScript does).
 */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A Go map marshals with its keys sorted (byte order). */
export function sortedMap<T>(map: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(map).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) out[k] = map[k]!;
  return out;
}

/** A decoded YAML value re-marshalled the way Go marshals interface{} values: maps sorted, recursively. */
export function sortedDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedDeep);
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) out[k] = sortedDeep(o[k]);
    return out;
  }
  return value;
}
