// The line of each finding in the file it came from, for SARIF regions and editors. Rendered objects
// keep no positions, so the value is looked up in its file: from the line that names the resource
// on (the whole file when no line names it), the first line holding the value as shown (else its
// URL, else its host, else the key of the embedded file it stands in). A value that came
// from chart values and is not in the template text gets no line: better none than a wrong one.
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { AuditFinding } from './types.ts';

const MAX_FILE = 8 * 1024 * 1024;

async function linesOf(path: string): Promise<string[] | undefined> {
  try {
    const s = await stat(path);
    if (!s.isFile() || s.size > MAX_FILE) return undefined;
    return (await readFile(path, 'utf8')).split(/\r?\n/);
  } catch {
    // Not a file here (a template inside a packaged chart, a stream): no line, the finding stands.
    return undefined;
  }
}

/** Needles to look for, most specific first; values cut or redacted for display are not in the file as shown. */
function needles(f: AuditFinding): string[] {
  const out: string[] = [];
  const shown = f.value.trim();
  if (shown !== '' && !shown.endsWith('…') && !shown.includes('REDACTED')) out.push(shown);
  if (f.url !== undefined && !f.url.includes('REDACTED')) out.push(f.url);
  // A setting shown as `key = value` whose value a template fills in: the key is in the template.
  const setting = /^(-{0,2}[A-Za-z_][A-Za-z0-9_.-]{2,100})\s*(=|:\s)/.exec(shown);
  // A host the value does not name (a setting that implies grafana.com) may stand elsewhere in the
  // file, in another setting: the setting's key finds the right line first.
  const named = f.rule.startsWith('external-') || f.url !== undefined || shown.toLowerCase().includes(f.host.toLowerCase());
  if (f.host !== '' && named) out.push(f.host);
  if (setting) out.push(setting[1]!);
  if (f.host !== '' && !named) out.push(f.host);
  // Last: the key of the embedded file (`data["alertmanager.yaml"]`), where base64 or a template hides the value.
  const file = /^(?:data|stringData|binaryData)(?:\["((?:[^"\\]|\\.)+)"\]|\.([A-Za-z0-9_.-]+))/.exec(f.path);
  if (file) out.push(`${file[1] ?? file[2]}:`);
  return out;
}

/** 1-based line of the first needle found from the resource's `name:` line on (or from the top). */
export function lineOf(lines: readonly string[], f: AuditFinding): number | undefined {
  const name = f.resource.slice(f.resource.lastIndexOf('/') + 1);
  const nameLine = new RegExp(`^\\s*name:\\s*["']?${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']?\\s*$`);
  // From the resource on: the same host earlier in the file belongs to another resource.
  const anchor = Math.max(0, lines.findIndex((l) => nameLine.test(l)));
  for (const n of needles(f)) {
    for (let i = anchor; i < lines.length; i++) if (lines[i]!.includes(n)) return i + 1;
  }
  return undefined;
}

/** Copies of the findings with `line` set where the file and the value in it were found. */
export async function withLines(findings: readonly AuditFinding[], cwd: string): Promise<AuditFinding[]> {
  const files = new Map<string, Promise<string[] | undefined>>();
  const read = (origin: string): Promise<string[] | undefined> => {
    let p = files.get(origin);
    if (!p) {
      p = linesOf(isAbsolute(origin) ? origin : join(cwd, origin));
      files.set(origin, p);
    }
    return p;
  };
  return Promise.all(
    findings.map(async (f) => {
      if (f.origin === undefined) return f;
      const lines = await read(f.origin);
      const line = lines ? lineOf(lines, f) : undefined;
      return line === undefined ? f : { ...f, line };
    }),
  );
}
