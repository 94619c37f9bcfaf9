// `files:` in airlock.yaml: files the bundle carries beside the images (k3s binaries and their install
// scripts, licence files, offline docs). Each has a safe name, and comes from a local `path` or a
// `url`; `sha256` pins what it must be, `mode` what it is extracted with, `version` its tag.
import { isScalar, type Document } from 'yaml';
import { parseDigest, type Digest } from '../core/digest.ts';
import { DEFAULT_FILE_MODE, fileNameProblem, fileRepository, fileVersionProblem, FILES_PATH, parseMode } from '../files/artifact.ts';

export interface FileSpec {
  /** Its name: what it is extracted and served as (a safe file name, see fileNameProblem). */
  name: string;
  /** A local file, relative to airlock.yaml, as written. */
  path?: string;
  /** An http(s) URL, fetched with the chart repositories' TLS settings and credentials. */
  url?: string;
  /** What its bytes must hash to, when the spec pins it. */
  sha256?: Digest;
  /** Permission bits, e.g. 0o755 (default 0o644). */
  mode: number;
  /** Its version, as written: the tag it is pushed under (else its sha256's first 12 hex digits). */
  version?: string;
}

const FILE_KEYS = ['name', 'path', 'url', 'sha256', 'mode', 'version'];

type Fail = (msg: string) => never;
type CheckKeys = (o: Record<string, unknown>, known: readonly string[], fail: Fail, at: { label?: string }) => void;

/** The `files:` list, checked: names safe and unique (also as registry names), one source each. Sorted by name. */
export function parseFiles(raw: unknown, fail: Fail, doc: Document, checkKeys: CheckKeys): FileSpec[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) return fail('files must be a list of {name, path or url, sha256, mode, version}');
  const out: FileSpec[] = [];
  const byName = new Map<string, number>();
  const byRepository = new Map<string, { i: number; name: string }>();
  raw.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return fail(`files[${i}] must be a mapping like {name: k3s, url: https://…/k3s, mode: 0755}`);
    const f = entry as Record<string, unknown>;
    const label = typeof f.name === 'string' ? `files[${i}] (${JSON.stringify(f.name).slice(1, -1).slice(0, 80)})` : `files[${i}]`;
    checkKeys(f, FILE_KEYS, fail, { label: `${label}: ` });
    const why = fileNameProblem(f.name);
    if (why !== undefined) return fail(`${label}: the name ${JSON.stringify(f.name ?? null).slice(0, 90)} is not a safe file name: ${why}`);
    const name = f.name as string;
    const before = byName.get(name);
    if (before !== undefined) fail(`${label}: the file ${name} is listed twice (also files[${before}])`);
    byName.set(name, i);
    const repository = fileRepository(name);
    const clash = byRepository.get(repository);
    if (clash !== undefined) fail(`${label}: ${name} and files[${clash.i}] (${clash.name}) would both be ${FILES_PATH}/${repository} in a registry: rename one`);
    byRepository.set(repository, { i, name });
    const hasPath = f.path !== undefined && f.path !== null;
    const hasUrl = f.url !== undefined && f.url !== null;
    if (hasPath === hasUrl) fail(`${label} needs exactly one of path (a file, relative to airlock.yaml) and url (http:// or https://)`);
    const spec: FileSpec = { name, mode: DEFAULT_FILE_MODE };
    if (hasPath) {
      if (typeof f.path !== 'string' || f.path === '') fail(`${label}: path must be a file, relative to airlock.yaml`);
      spec.path = f.path as string;
    } else {
      spec.url = checkUrl(f.url, label, fail);
    }
    if (f.sha256 !== undefined && f.sha256 !== null) {
      // A digest of digits alone is a number to YAML: the text as written.
      const text = typeof f.sha256 === 'string' || typeof f.sha256 === 'number' ? sourceText(doc, ['files', i, 'sha256'], f.sha256).trim().toLowerCase() : '';
      if (!/^(?:sha256:)?[a-f0-9]{64}$/.test(text)) fail(`${label}: sha256 must be 64 hex digits (what sha256sum prints), got ${JSON.stringify(f.sha256).slice(0, 90)}`);
      spec.sha256 = parseDigest(text.startsWith('sha256:') ? text : `sha256:${text}`, `${label} sha256`);
    }
    if (f.mode !== undefined && f.mode !== null) {
      // YAML 1.2 reads an unquoted 0755 as the number 755: the mode is the text as written.
      const written = sourceText(doc, ['files', i, 'mode'], f.mode);
      const mode = parseMode(written);
      if (mode === undefined) fail(`${label}: mode must be octal permission bits like 0755 or 0644, got ${JSON.stringify(written).slice(0, 40)}`);
      spec.mode = mode!;
    }
    if (f.version !== undefined && f.version !== null) {
      if (typeof f.version !== 'string' && typeof f.version !== 'number') fail(`${label}: version must be a string like v1.30.2+k3s1`);
      // An unquoted 1.10 is the number 1.1 to YAML: the version is the text as written.
      const version = sourceText(doc, ['files', i, 'version'], f.version).trim();
      const bad = fileVersionProblem(version);
      if (bad !== undefined) fail(`${label}: version "${version.slice(0, 140)}" cannot be a registry tag: ${bad}`);
      spec.version = version;
    }
    out.push(spec);
  });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function checkUrl(raw: unknown, label: string, fail: Fail): string {
  if (typeof raw !== 'string' || !/^https?:\/\//i.test(raw)) return fail(`${label}: url must be an http:// or https:// URL, got ${JSON.stringify(raw).slice(0, 90)}`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail(`${label}: url ${JSON.stringify(raw).slice(0, 90)} is not a valid URL`);
  }
  // The URL is written into the lock and the bundle: a password in it would travel with them.
  if (url.username !== '' || url.password !== '') return fail(`${label}: url must not carry credentials (they would be written into airlock.lock); store them with \`docker login ${url.host}\` instead`);
  return raw;
}

/** A scalar's text as written in the document (numbers included), else its value as a string. */
function sourceText(doc: Document, path: (string | number)[], value: unknown): string {
  const node = doc.getIn(path, true);
  return isScalar(node) && typeof node.source === 'string' ? node.source : String(value);
}
