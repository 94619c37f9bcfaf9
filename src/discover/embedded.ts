// Configuration documents carried inside ConfigMaps (YAML or JSON), parsed leniently: a value that
// is not a document is simply scanned as text instead.
import { parseAllDocuments } from 'yaml';

const MAX_EMBEDDED = 1024 * 1024;

/** The parsed document(s) in `text`, or undefined when it is not YAML/JSON holding a map or list. */
export function parseEmbeddedDocument(text: string): unknown {
  if (text.length > MAX_EMBEDDED) return undefined;
  // JSON first: dashboards and injector configs are JSON, and JSON.parse is ~50x faster than YAML.
  if (/^\s*[{[]/.test(text)) {
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v === 'object' && v !== null) return v;
    } catch {
      // not JSON after all: YAML flow style, or a document that merely starts with a bracket
    }
  }
  try {
    const docs = parseAllDocuments(text, { strict: false, uniqueKeys: false });
    if (!Array.isArray(docs) || docs.some((d) => d.errors.length > 0)) return undefined;
    const values = docs.map((d) => d.toJS({ maxAliasCount: 100 }) as unknown).filter((v) => typeof v === 'object' && v !== null);
    if (values.length === 0) return undefined;
    return values.length === 1 ? values[0] : values;
  } catch {
    return undefined;
  }
}
