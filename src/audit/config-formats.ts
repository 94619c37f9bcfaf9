// Configuration files carried inside ConfigMaps (pure): JSON, YAML, INI, TOML, Java properties and
// dotenv, each flattened to (path, value) entries so a setting is judged by its full key
// (`analytics.reporting_enabled`) and shown by the one line it came from. The parsers are
// lenient where the formats are (INI dialects), strict where a broken file would hide settings
// (JSON, YAML, TOML): those report an error, and the caller scans the text line by line instead.
import { parseAllDocuments } from 'yaml';

export type ConfigFormat = 'json' | 'yaml' | 'ini' | 'toml' | 'properties' | 'text';

export type Scalar = string | number | boolean | null;

export interface ConfigEntry {
  path: (string | number)[];
  value: Scalar;
  /** 1-based line, for line-oriented formats. */
  line?: number;
  /** The line as written (INI, TOML, properties): what a finding shows as its value. */
  raw?: string;
}

export type ParsedConfig = { format: ConfigFormat; entries: ConfigEntry[] } | { format: ConfigFormat; error: string };

const MAX_CONFIG = 4 * 1024 * 1024;
const MAX_DEPTH = 64;

/** The format a ConfigMap key's extension declares, or undefined when it declares none. */
export function declaredFormat(key: string): ConfigFormat | undefined {
  const ext = /\.([A-Za-z0-9]+)$/.exec(key)?.[1]?.toLowerCase();
  switch (ext) {
    case 'json':
      return 'json';
    case 'yaml':
    case 'yml':
      return 'yaml';
    case 'ini':
      return 'ini';
    case 'toml':
      return 'toml';
    case 'properties':
    case 'env':
      return 'properties';
    default:
      return /^\.env$|^env$/i.test(key) ? 'properties' : undefined;
  }
}

function meaningfulLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !/^[#;!]/.test(l) && !l.startsWith('//'));
}

/** A guess for text with no declaring extension (or a `.conf`/`.cfg` that may be anything). */
export function sniffFormat(text: string): ConfigFormat {
  const lines = meaningfulLines(text);
  if (lines.length === 0) return 'text';
  const first = lines[0]!;
  if (/^[{[]/.test(first) && !/^\[[A-Za-z0-9_. "'-]{1,100}\]$/.test(first)) {
    try {
      JSON.parse(text);
      return 'json';
    } catch {
      // not JSON: a YAML flow document or a script that starts with a bracket
    }
  }
  if (/^\[{1,2}[A-Za-z0-9_. "'-]{1,100}\]{1,2}$/.test(first)) {
    // TOML quotes its string values; INI dialects mostly do not.
    const quoted = lines.filter((l) => /^[A-Za-z0-9_."'-]{1,100}\s*=\s*["'[{]/.test(l)).length;
    const assigned = lines.filter((l) => /^[A-Za-z0-9_."'-]{1,100}\s*=/.test(l)).length;
    return assigned > 0 && quoted === assigned ? 'toml' : 'ini';
  }
  if (lines.length >= 1 && lines.every((l) => /^(export\s+)?[A-Za-z_][A-Za-z0-9_.\-]{0,100}\s*=/.test(l))) return 'properties';
  if (lines.some((l) => /^[A-Za-z0-9_"'.\-]{1,100}:(\s|$)/.test(l)) && !lines.some((l) => /^(if|for|while|case|then|do|done|fi|exec|set|echo|cd)\b/.test(l))) {
    const docs = parseYaml(text);
    if (!('error' in docs) && docs.entries.length > 0) return 'yaml';
  }
  return 'text';
}

function flatten(node: unknown, path: (string | number)[], out: ConfigEntry[], depth = 0): void {
  if (depth > MAX_DEPTH) return;
  if (Array.isArray(node)) {
    node.forEach((v, i) => flatten(v, [...path, i], out, depth + 1));
  } else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) flatten(v, [...path, k], out, depth + 1);
  } else if (node === null || typeof node === 'string' || typeof node === 'number' || typeof node === 'boolean') {
    out.push({ path, value: node });
  }
}

function parseJson(text: string): ParsedConfig {
  try {
    const entries: ConfigEntry[] = [];
    flatten(JSON.parse(text), [], entries);
    return { format: 'json', entries };
  } catch (e) {
    return { format: 'json', error: (e as Error).message.split('\n')[0]! };
  }
}

function parseYaml(text: string): ParsedConfig {
  try {
    const docs = parseAllDocuments(text, { uniqueKeys: false, prettyErrors: false });
    const list = Array.isArray(docs) ? docs : [docs];
    const entries: ConfigEntry[] = [];
    for (const [i, d] of list.entries()) {
      const first = d.errors[0];
      if (first) return { format: 'yaml', error: first.message.split('\n')[0]! };
      flatten(d.toJS({ maxAliasCount: 100 }), list.length > 1 ? [i] : [], entries);
    }
    return { format: 'yaml', entries };
  } catch (e) {
    return { format: 'yaml', error: (e as Error).message.split('\n')[0]! };
  }
}

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'")))) return t.slice(1, -1);
  return t;
}

/** INI in its dialects: `[section]`, `[section "sub"]`, `key = value`, `key: value`, bare flags. */
function parseIni(text: string): ParsedConfig {
  const entries: ConfigEntry[] = [];
  let section: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const l = raw.trim();
    if (l === '' || /^[#;]/.test(l)) continue;
    if (l.startsWith('[')) {
      const m = /^\[\s*([^\]"]{1,200}?)\s*(?:"([^"]{0,200})")?\s*\]$/.exec(l);
      if (!m) return { format: 'ini', error: `line ${i + 1}: section header ${JSON.stringify(l.slice(0, 80))} is not closed` };
      section = [...m[1]!.split('.').map((s) => s.trim()), ...(m[2] !== undefined ? [m[2]] : [])];
      continue;
    }
    const kv = /^([^=:]{1,200}?)\s*[=:]\s*(.*)$/.exec(l);
    if (kv) entries.push({ path: [...section, kv[1]!.trim()], value: unquote(kv[2]!), line: i + 1, raw: l });
    else if (/^[A-Za-z0-9_.\-]{1,200}$/.test(l)) entries.push({ path: [...section, l], value: true, line: i + 1, raw: l });
    else if (/^@?[A-Za-z0-9_.\-]{1,200}\s+\S/.test(l)) {
      // `Key Value` dialects (fluent-bit, HAProxy-style sections): the first word is the key.
      const m = /^(@?[A-Za-z0-9_.\-]{1,200})\s+(.*)$/.exec(l)!;
      entries.push({ path: [...section, m[1]!], value: unquote(m[2]!), line: i + 1, raw: l });
    } else return { format: 'ini', error: `line ${i + 1}: ${JSON.stringify(l.slice(0, 80))} is neither a section, a comment nor key = value` };
  }
  return { format: 'ini', entries };
}

/** Java properties and dotenv: `key=value`, `key: value`, `key value`, `export KEY=value`, `\` continuations. */
function parseProperties(text: string): ParsedConfig {
  const entries: ConfigEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let l = lines[i]!.trim();
    if (l === '' || /^[#!]/.test(l)) continue;
    while (/(^|[^\\])(\\\\)*\\$/.test(l) && i + 1 < lines.length) l = l.slice(0, -1) + lines[++i]!.trim();
    l = l.replace(/^export\s+/, '');
    const m = /^((?:\\.|[^=:\s\\]){1,300})\s*(?:[=:]\s*|\s+)(.*)$/.exec(l);
    const key = (m ? m[1]! : l).replace(/\\(.)/g, '$1');
    const value = m ? unquote(m[2]!) : '';
    entries.push({ path: [key], value, line: start + 1, raw: l });
  }
  return { format: 'properties', entries };
}

// --- TOML (the subset configuration files use; anything else is an error, not a guess) ---

interface TomlCursor {
  text: string;
  pos: number;
  line: number;
}

class TomlError extends Error {}

function tomlKey(c: TomlCursor): string[] {
  const parts: string[] = [];
  for (;;) {
    skipSpaces(c);
    const ch = c.text[c.pos];
    if (ch === '"' || ch === "'") parts.push(tomlString(c));
    else {
      const m = /^[A-Za-z0-9_-]{1,200}/.exec(c.text.slice(c.pos, c.pos + 201));
      if (!m) throw new TomlError(`line ${c.line}: expected a key`);
      parts.push(m[0]);
      c.pos += m[0].length;
    }
    skipSpaces(c);
    if (c.text[c.pos] !== '.') return parts;
    c.pos++;
  }
}

function skipSpaces(c: TomlCursor): void {
  while (c.text[c.pos] === ' ' || c.text[c.pos] === '\t') c.pos++;
}

/** Spaces, newlines and comments (inside arrays). */
function skipWs(c: TomlCursor): void {
  for (;;) {
    const ch = c.text[c.pos];
    if (ch === ' ' || ch === '\t' || ch === '\r') c.pos++;
    else if (ch === '\n') {
      c.pos++;
      c.line++;
    } else if (ch === '#') {
      while (c.pos < c.text.length && c.text[c.pos] !== '\n') c.pos++;
    } else return;
  }
}

function tomlString(c: TomlCursor): string {
  const q = c.text[c.pos]!;
  const multi = c.text.startsWith(q.repeat(3), c.pos);
  const delim = multi ? q.repeat(3) : q;
  c.pos += delim.length;
  let out = '';
  for (;;) {
    if (c.pos >= c.text.length) throw new TomlError(`line ${c.line}: string not closed`);
    if (c.text.startsWith(delim, c.pos)) {
      c.pos += delim.length;
      return multi ? out.replace(/^\r?\n/, '') : out;
    }
    const ch = c.text[c.pos]!;
    if (ch === '\n') {
      if (!multi) throw new TomlError(`line ${c.line}: string not closed before the end of the line`);
      c.line++;
    }
    if (ch === '\\' && q === '"') {
      const next = c.text[c.pos + 1] ?? '';
      const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\', b: '\b', f: '\f' };
      if (next in map) {
        out += map[next];
        c.pos += 2;
        continue;
      }
      if (next === 'u' || next === 'U') {
        const len = next === 'u' ? 4 : 8;
        out += String.fromCodePoint(parseInt(c.text.slice(c.pos + 2, c.pos + 2 + len), 16) || 0xfffd);
        c.pos += 2 + len;
        continue;
      }
      if (multi && /\s/.test(next)) {
        c.pos++;
        while (/\s/.test(c.text[c.pos] ?? '')) {
          if (c.text[c.pos] === '\n') c.line++;
          c.pos++;
        }
        continue;
      }
      throw new TomlError(`line ${c.line}: unknown escape \\${next}`);
    }
    out += ch;
    c.pos++;
  }
}

function tomlValue(c: TomlCursor, path: (string | number)[], out: ConfigEntry[], line: number, raw: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new TomlError(`line ${c.line}: nested too deeply`);
  skipSpaces(c);
  const ch = c.text[c.pos];
  if (ch === '"' || ch === "'") {
    out.push({ path, value: tomlString(c), line, raw });
    return;
  }
  if (ch === '[') {
    c.pos++;
    let i = 0;
    for (;;) {
      skipWs(c);
      if (c.text[c.pos] === ']') {
        c.pos++;
        return;
      }
      tomlValue(c, [...path, i++], out, line, raw, depth + 1);
      skipWs(c);
      if (c.text[c.pos] === ',') c.pos++;
      else if (c.text[c.pos] !== ']') throw new TomlError(`line ${c.line}: expected , or ] in an array`);
    }
  }
  if (ch === '{') {
    c.pos++;
    for (;;) {
      skipSpaces(c);
      if (c.text[c.pos] === '}') {
        c.pos++;
        return;
      }
      const key = tomlKey(c);
      skipSpaces(c);
      if (c.text[c.pos] !== '=') throw new TomlError(`line ${c.line}: expected = in an inline table`);
      c.pos++;
      tomlValue(c, [...path, ...key], out, line, raw, depth + 1);
      skipSpaces(c);
      if (c.text[c.pos] === ',') c.pos++;
      else if (c.text[c.pos] !== '}') throw new TomlError(`line ${c.line}: expected , or } in an inline table`);
    }
  }
  const m = /^[^\s,\]}#]{1,100}/.exec(c.text.slice(c.pos, c.pos + 101));
  if (!m) throw new TomlError(`line ${c.line}: expected a value`);
  const word = m[0];
  c.pos += word.length;
  let value: Scalar;
  if (word === 'true' || word === 'false') value = word === 'true';
  else if (/^[+-]?(0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|[0-9_]+(\.[0-9_]+)?([eE][+-]?[0-9_]+)?|inf|nan)$/.test(word)) value = Number(word.replace(/_/g, '')) ;
  else if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(word) || /^[0-9]{2}:[0-9]{2}/.test(word)) value = word;
  else throw new TomlError(`line ${c.line}: ${JSON.stringify(word)} is not a TOML value (strings need quotes)`);
  out.push({ path, value, line, raw });
}

function parseToml(text: string): ParsedConfig {
  const c: TomlCursor = { text: text.replace(/\r\n/g, '\n'), pos: 0, line: 1 };
  const entries: ConfigEntry[] = [];
  let table: (string | number)[] = [];
  const arrayCounts = new Map<string, number>();
  const lines = c.text.split('\n');
  try {
    for (;;) {
      skipWs(c);
      if (c.pos >= c.text.length) break;
      const lineNo = c.line;
      const raw = (lines[lineNo - 1] ?? '').trim();
      if (c.text[c.pos] === '[') {
        const isArray = c.text[c.pos + 1] === '[';
        c.pos += isArray ? 2 : 1;
        const key = tomlKey(c);
        if (!c.text.startsWith(isArray ? ']]' : ']', c.pos)) throw new TomlError(`line ${c.line}: table header not closed`);
        c.pos += isArray ? 2 : 1;
        if (isArray) {
          const id = key.join('\u0000');
          const n = arrayCounts.get(id) ?? 0;
          arrayCounts.set(id, n + 1);
          table = [...key, n];
        } else table = key;
      } else {
        const key = tomlKey(c);
        skipSpaces(c);
        if (c.text[c.pos] !== '=') throw new TomlError(`line ${c.line}: expected = after the key ${key.join('.')}`);
        c.pos++;
        tomlValue(c, [...table, ...key], entries, lineNo, raw, 0);
      }
      skipSpaces(c);
      if (c.text[c.pos] === '#') while (c.pos < c.text.length && c.text[c.pos] !== '\n') c.pos++;
      if (c.pos < c.text.length && c.text[c.pos] !== '\n' && c.text[c.pos] !== '\r') throw new TomlError(`line ${c.line}: unexpected text after a value`);
    }
  } catch (e) {
    if (e instanceof TomlError) return { format: 'toml', error: e.message };
    throw e;
  }
  return { format: 'toml', entries };
}

/** Parse `text` as `format`; 'text' yields no entries (the caller scans it line by line). */
export function parseConfig(format: ConfigFormat, text: string): ParsedConfig {
  if (text.length > MAX_CONFIG) return { format, error: `larger than ${MAX_CONFIG} bytes` };
  switch (format) {
    case 'json':
      return parseJson(text);
    case 'yaml':
      return parseYaml(text);
    case 'ini':
      return parseIni(text);
    case 'toml':
      return parseToml(text);
    case 'properties':
      return parseProperties(text);
    case 'text':
      return { format, entries: [] };
  }
}
