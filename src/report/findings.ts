// The audit's findings for the report: what `airlock audit --format json` writes ({"findings":[…]}),
// or its --json result line. Only the fields the report shows are taken, each checked.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { NotFoundError, UsageError } from '../core/errors.ts';
import { fileError } from '../util/file-error.ts';

export interface ReportFinding {
  severity: string;
  /** The host (with port), or the URL when the finding carried one. */
  endpoint: string;
  resource: string;
  path: string;
  category: string;
  hint: string;
}

const MAX_AUDIT_BYTES = 64 * 1024 * 1024;

export async function readFindings(path: string): Promise<ReportFinding[]> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`audit findings ${abs} do not exist`, { code: 'INPUT_NOT_FOUND', hint: 'write them with `airlock audit CHART --format json > findings.json`' });
    throw fileError(e, abs, 'read the audit findings');
  }
  if (text.length > MAX_AUDIT_BYTES) throw new UsageError(`audit findings ${abs} are larger than ${MAX_AUDIT_BYTES} bytes`, { code: 'INPUT_TOO_LARGE' });
  const bad = (why: string): UsageError => new UsageError(`${abs} is not \`airlock audit --format json\` output: ${why}`, { code: 'INPUT_INVALID', hint: 'write it with `airlock audit CHART --format json > findings.json`' });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // The --json form: NDJSON, the result line holds the findings.
    const line = text.split('\n').find((l) => l.includes('"type":"result"'));
    try {
      doc = line ? JSON.parse(line) : undefined;
    } catch {
      doc = undefined;
    }
    if (doc === undefined) throw bad('not JSON');
  }
  const list = Array.isArray(doc) ? doc : (doc as { findings?: unknown })?.findings;
  if (!Array.isArray(list)) throw bad('no "findings" list');
  return list.map((f: unknown, i) => {
    if (typeof f !== 'object' || f === null) throw bad(`findings[${i}] is not an object`);
    const o = f as Record<string, unknown>;
    const s = (k: string): string => (typeof o[k] === 'string' ? (o[k] as string) : typeof o[k] === 'number' ? String(o[k]) : '');
    if (s('severity') === '') throw bad(`findings[${i}] has no severity`);
    const host = s('host');
    const endpoint = s('url') || (host && s('port') ? `${host}:${s('port')}` : host);
    return { severity: s('severity'), endpoint, resource: s('resource'), path: s('path'), category: s('category'), hint: s('hint') };
  });
}
