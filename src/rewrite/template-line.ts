// Where an image that values cannot move is written in the chart (file and line), so the user can
// see it is hard-coded: helm's `# Source: chart/templates/x.yaml` names the template; the line is
// the first that holds the image as it is usually written (with or without docker.io/library/).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseReference } from '../core/reference.ts';

/** The spellings an image may have in a template, longest first. */
function spellings(image: string): string[] {
  const ref = parseReference(image);
  const names = [`${ref.registry}/${ref.repository}`];
  if (ref.registry === 'docker.io') {
    names.push(ref.repository);
    if (ref.repository.startsWith('library/')) names.push(ref.repository.slice('library/'.length));
  }
  const out: string[] = [];
  for (const n of names) {
    if (ref.tag !== undefined) out.push(`${n}:${ref.tag}`);
    if (ref.digest !== undefined) out.push(`${n}@${ref.digest}`);
  }
  for (const n of names) out.push(n);
  return out;
}

function lineOf(text: string, image: string): number | undefined {
  const lines = text.split('\n');
  for (const s of spellings(image)) {
    const re = new RegExp(`(^|[^A-Za-z0-9._/-])${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9_/-])`);
    const i = lines.findIndex((l) => re.test(l));
    if (i >= 0) return i + 1;
  }
  return undefined;
}

/**
 * Fill in `line` for each place whose template (a path below the chart, as helm's Source comment
 * gives it, first component being the chart's name) has the image written in it. A packaged chart
 * or an unreadable template leaves the line out.
 */
export async function templateLines(chartDir: string, places: { image: string; template?: string; line?: number }[]): Promise<void> {
  const texts = new Map<string, string | undefined>();
  for (const p of places) {
    if (p.template === undefined || /\.(tgz|tar\.gz)$/i.test(chartDir)) continue;
    const rel = p.template.split('/').slice(1).join('/');
    if (!texts.has(rel)) texts.set(rel, await readFile(join(chartDir, rel), 'utf8').catch(() => undefined));
    const text = texts.get(rel);
    const line = text === undefined ? undefined : lineOf(text, p.image);
    if (line !== undefined) p.line = line;
  }
}
