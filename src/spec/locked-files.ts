// The `files:` of airlock.lock: each file of the spec pinned by its sha256 and size, with the name it
// has in the bundle and the digest of the OCI artifact that carries it (the same lock always packs
// the same bytes).
import type { Digest } from '../core/digest.ts';
import { fileNameProblem, formatMode, parseMode } from '../files/artifact.ts';
import type { FileSpec } from './files.ts';
import type { LockFields } from './lock.ts';

export interface LockedFile {
  name: string;
  /** The spec's path or url, as written (exactly one). */
  path?: string;
  url?: string;
  /** The spec's version, as written. */
  version?: string;
  /** Permission bits (written as `"0755"`). */
  mode: number;
  /** sha256 of the file's bytes. */
  digest: Digest;
  size: number;
  /** Its name in the bundle: `localhost/files/<repository>:<tag>`. */
  reference: string;
  /** The OCI artifact's manifest carried in the bundle. */
  artifact: { mediaType: string; digest: Digest; size: number };
}

export function formatLockedFile(f: LockedFile): Record<string, unknown> {
  return {
    name: f.name,
    ...(f.path !== undefined ? { path: f.path } : {}),
    ...(f.url !== undefined ? { url: f.url } : {}),
    ...(f.version !== undefined ? { version: f.version } : {}),
    mode: formatMode(f.mode),
    digest: f.digest,
    size: f.size,
    reference: f.reference,
    artifact: { mediaType: f.artifact.mediaType, digest: f.artifact.digest, size: f.artifact.size },
  };
}

export function parseLockedFiles(files: unknown, f: LockFields): LockedFile[] | undefined {
  if (files === undefined || files === null) return undefined;
  if (!Array.isArray(files)) return f.fail('files must be a list');
  return (files as unknown[]).map((x, n) => parseLockedFile(x, `files[${n}]`, f));
}

function parseLockedFile(raw: unknown, where: string, f: LockFields): LockedFile {
  const { fail, num, dig, str, optStr } = f;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(`${where} must be a mapping`);
  const x = raw as Record<string, unknown>;
  const name = str(x.name, `${where}.name`);
  const why = fileNameProblem(name);
  if (why !== undefined) fail(`${where}.name ${JSON.stringify(name).slice(0, 90)} is not a safe file name: ${why}`);
  const mode = parseMode(typeof x.mode === 'string' ? x.mode : '');
  if (mode === undefined) fail(`${where}.mode must be octal permission bits like "0755"`);
  const a = (x.artifact ?? {}) as Record<string, unknown>;
  const file: LockedFile = {
    name,
    mode: mode!,
    digest: dig(x.digest, `${where}.digest`),
    size: num(x.size, `${where}.size`),
    reference: str(x.reference, `${where}.reference`),
    artifact: { mediaType: str(a.mediaType, `${where}.artifact.mediaType`), digest: dig(a.digest, `${where}.artifact.digest`), size: num(a.size, `${where}.artifact.size`) },
  };
  if (!file.digest.startsWith('sha256:')) fail(`${where}.digest must be a sha256 digest`);
  const path = optStr(x.path, `${where}.path`);
  if (path !== undefined) file.path = path;
  const url = optStr(x.url, `${where}.url`);
  if (url !== undefined) file.url = url;
  if ((file.path === undefined) === (file.url === undefined)) fail(`${where} (${name}) needs exactly one of path and url`);
  const version = optStr(x.version, `${where}.version`);
  if (version !== undefined) file.version = version;
  return file;
}

/** Where the spec's files and the lock's differ, one readable line each. */
export function diffFiles(spec: readonly FileSpec[], lock: readonly LockedFile[]): string[] {
  const out: string[] = [];
  const locked = new Map(lock.map((l) => [l.name, l]));
  const was = (x: { path?: string | undefined; url?: string | undefined }): string => (x.path !== undefined ? `path ${x.path}` : `url ${x.url}`);
  for (const s of spec) {
    const l = locked.get(s.name);
    if (!l) {
      out.push(`file ${s.name} is in the spec but not in the lock`);
      continue;
    }
    locked.delete(s.name);
    if (s.path !== l.path || s.url !== l.url) out.push(`file ${s.name} comes from ${was(s)} in the spec but ${was(l)} in the lock`);
    if (s.mode !== l.mode) out.push(`file ${s.name} has mode ${formatMode(s.mode)} in the spec but ${formatMode(l.mode)} in the lock`);
    if (s.version !== l.version) out.push(`file ${s.name} has version ${s.version ?? '(none)'} in the spec but ${l.version ?? '(none)'} in the lock`);
    if (s.sha256 !== undefined && s.sha256 !== l.digest) out.push(`file ${s.name} is pinned to ${s.sha256} in the spec but locked as ${l.digest}`);
  }
  for (const name of locked.keys()) out.push(`file ${name} is in the lock but no longer in the spec`);
  return out;
}
