// `capture --compare`: what discovery predicted against what the nodes pulled. Images pulled that
// no prediction names are what discovery missed (an operator's choice at run time, an image named
// in a way no rule reads); predicted images no node pulled are optional parts, or a deployment that
// did not come up whole.
import { readFile } from 'node:fs/promises';
import { UsageError } from '../core/errors.ts';
import { formatReference, parseReference, type Reference } from '../core/reference.ts';
import { fileError } from '../util/file-error.ts';
import { pinnedReferences, type PulledImage } from './pulled.ts';

export interface CompareResult {
  /** Pulled, not predicted: one reference per image (pinned). */
  missed: string[];
  /** Predicted, never pulled: as discovery wrote them. */
  unused: string[];
  /** Predicted and pulled. */
  matched: { predicted: string; pulled: string }[];
}

function matches(p: Reference, img: PulledImage): boolean {
  if (p.registry !== img.registry || p.repository !== img.repository) return false;
  if (p.digest !== undefined) return p.digest === img.digest;
  return p.tag !== undefined && img.tags.includes(p.tag);
}

export function compareWithDiscovery(images: readonly PulledImage[], predicted: readonly string[]): CompareResult {
  const refs = predicted.map((text) => ({ text, ref: parseReference(text) }));
  const used = new Set<string>();
  const missed: string[] = [];
  const matched: CompareResult['matched'] = [];
  for (const img of images) {
    const hits = refs.filter((p) => matches(p.ref, img));
    if (hits.length === 0) missed.push(...pinnedReferences(img).slice(0, 1));
    for (const h of hits) {
      used.add(h.text);
      matched.push({ predicted: h.text, pulled: pinnedReferences(img)[0]! });
    }
  }
  return { missed: missed.sort(), unused: refs.filter((p) => !used.has(p.text)).map((p) => p.text).sort(), matched };
}

/**
 * The references a discovery lists: `airlock discover --json` output (its result line), a JSON
 * document `{"images":[{"reference":…}]}` or `["ref", …]`, or discover's plain output (one
 * reference a line, `# …` comments allowed).
 */
export async function readPredicted(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fileError(e, path, 'read the discovery');
  }
  const fromJson = (v: unknown): string[] | undefined => {
    const list = Array.isArray(v) ? v : (v as { images?: unknown } | null)?.images;
    if (!Array.isArray(list)) return undefined;
    return list.map((x: unknown) => (typeof x === 'string' ? x : (x as { reference?: unknown } | null)?.reference)).filter((x): x is string => typeof x === 'string');
  };
  const trimmed = text.trim();
  let refs: string[] | undefined;
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      refs = fromJson(JSON.parse(trimmed));
    } catch {
      // NDJSON (discover --json): the result line holds the images.
      for (const line of trimmed.split('\n')) {
        try {
          const v = JSON.parse(line) as { type?: unknown };
          if (v.type === 'result') refs = fromJson(v);
        } catch {
          refs = undefined;
          break;
        }
      }
    }
    if (refs === undefined) throw new UsageError(`${path}: no image list in it`, { code: 'INPUT_INVALID', hint: 'pass the output of `airlock discover --json` (or its plain output)' });
  } else {
    refs = trimmed
      .split('\n')
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter((l) => l !== '');
  }
  return refs.map((r, i) => {
    try {
      return formatReference(parseReference(r));
    } catch (e) {
      throw new UsageError(`${path}: entry ${i + 1}: ${(e as Error).message}`, { code: 'INPUT_INVALID', cause: e });
    }
  });
}
