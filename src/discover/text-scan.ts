// Pull image candidates out of free text: container args and commands (also shell scripts passed
// to `sh -c`), env values, ConfigMap data. Every candidate still has to pass imageFromText.
import { imageFromText, keyHintsImage } from './image-rules.ts';

export interface TextHit {
  reference: string;
  /** The key or flag it stood under (`--solver-image`, `SIDECAR_IMAGE`), if any. */
  key?: string;
}

// Bounded repeats throughout: unbounded ones backtrack quadratically on long tokens (a 200 kB word
// of repeated "image" took 11 s).
const KEY = String.raw`-{0,2}[A-Za-z0-9_.\-]{0,64}[Ii][Mm][Aa][Gg][Ee][A-Za-z0-9_.\-]{0,64}`;
const VALUE = String.raw`[^\s"'\x60,;{}\[\]()]{1,512}`;
// key=value, key: value, "key": "value", --flag=value
const KEYED = new RegExp(String.raw`(?:^|[^A-Za-z0-9_.\-])(${KEY})["']?\s*[=:]\s*["']?(${VALUE})`, 'g');
// --flag value (two tokens), including `-entrypoint-image x`
const FLAG_SPACE = new RegExp(String.raw`(?:^|\s)(-{1,2}[A-Za-z0-9_.\-]{0,64}[Ii][Mm][Aa][Gg][Ee][A-Za-z0-9_.\-]{0,64})\s{1,16}["']?([^\s"'\x60,;{}\[\]()\-][^\s"'\x60,;{}\[\]()]{0,511})`, 'g');
// a bare registry.host/path:tag with no key in front (it must convince on its own)
const BARE = new RegExp(String.raw`(?:^|[\s=:"'(,\[])((?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z0-9\-]{1,63}(?::[0-9]{1,5})?/[a-z0-9._\-/]{1,255}(?::[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127})?(?:@sha(?:256|512):[a-f0-9]{64,128})?)`, 'g');

/** Every image reference in `text` that free-text rules accept, each once, in order of appearance. */
export function scanText(text: string): TextHit[] {
  if (text.length > 4 * 1024 * 1024) return [];
  const hits = new Map<string, TextHit>();
  const add = (value: string, key: string | undefined): void => {
    const reference = imageFromText(value, key !== undefined);
    if (reference !== undefined && !hits.has(reference)) hits.set(reference, key === undefined ? { reference } : { reference, key });
  };
  for (const m of text.matchAll(KEYED)) add(m[2]!, m[1]!);
  for (const m of text.matchAll(FLAG_SPACE)) add(m[2]!, m[1]!);
  for (const m of text.matchAll(BARE)) add(m[1]!, undefined);
  return [...hits.values()];
}

/** A value that stands under a key of its own (an env var, a ConfigMap key). */
export function scanKeyedValue(key: string, value: string): TextHit[] {
  const hits = new Map<string, TextHit>();
  if (keyHintsImage(key)) {
    const reference = imageFromText(value.trim(), true);
    if (reference !== undefined) hits.set(reference, { reference, key });
  }
  for (const h of scanText(value)) if (!hits.has(h.reference)) hits.set(h.reference, h);
  return [...hits.values()];
}
