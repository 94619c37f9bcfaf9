// An index reduced to some of its children (the platforms a spec chooses): the upstream document
// with only those manifests, every other field untouched. Lock, pack and verify all derive it with
// this one function, so they agree on its bytes and digest; verify also checks that an original
// index a bundle carries is the one its reduced index was cut from.
import type { Descriptor } from './manifest.ts';

/**
 * The index with only the chosen manifests, every other field untouched. Deterministic for the
 * same upstream bytes, so lock and pack agree on its digest.
 */
export function reduceIndex(indexBytes: Uint8Array, keep: ReadonlySet<string>): Buffer {
  const doc = JSON.parse(Buffer.from(indexBytes).toString('utf8')) as { manifests: Descriptor[] };
  doc.manifests = doc.manifests.filter((m) => keep.has(m.digest));
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n');
}

/**
 * Is `reduced` exactly `original` cut down to the children `reduced` lists? Whatever either holds
 * (bytes that are not an index included), false unless reducing `original` gives `reduced` byte for byte.
 */
export function isReductionOf(original: Uint8Array, reduced: Uint8Array): boolean {
  try {
    const kept = (JSON.parse(Buffer.from(reduced).toString('utf8')) as { manifests?: unknown }).manifests;
    if (!Array.isArray(kept)) return false;
    const keep = new Set(kept.map((m) => String((m as { digest?: unknown } | null)?.digest)));
    const all = (JSON.parse(Buffer.from(original).toString('utf8')) as { manifests?: unknown }).manifests;
    if (!Array.isArray(all) || all.length <= kept.length) return false;
    return reduceIndex(original, keep).equals(Buffer.from(reduced));
  } catch {
    return false;
  }
}
