// Everything a bundle, a lock, a note or an audit file says is data, never markup: escaped for text
// and for attribute values alike (quotes included), so a hostile image name cannot add an element,
// an attribute or a URL the browser would fetch.
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}
