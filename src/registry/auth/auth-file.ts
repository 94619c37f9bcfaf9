// One credentials file: docker's config.json or containers' auth.json (the same shape):
//   { "auths": { KEY: { "auth": base64(user:pass), "username", "password", "identitytoken", "registrytoken" } },
//     "credHelpers": { KEY: NAME }, "credsStore": NAME }
// Errors name the file and the key, never a value: every value in these files is a secret.
import { open } from 'node:fs/promises';
import { AuthError } from '../../core/errors.ts';
import type { Credential } from './credential.ts';

export interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface AuthFile {
  path: string;
  auths: Record<string, AuthEntry>;
  credHelpers: Record<string, string>;
  credsStore: string | undefined;
}

/** Far above any real file; stops a mistaken path (a disk image, /dev/zero) from being read whole. */
const MAX_AUTH_FILE_BYTES = 4 * 1024 * 1024;

function invalid(path: string, what: string): AuthError {
  return new AuthError(`credentials file ${path} is not valid: ${what}`, {
    code: 'AUTH_FILE_INVALID',
    hint: `fix or remove ${path} (docker login / podman login rewrite it)`,
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Read and check one file; undefined when it does not exist. */
export async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw invalid(path, 'it is not a regular file');
      if (st.size > MAX_AUTH_FILE_BYTES) throw invalid(path, `it is larger than ${MAX_AUTH_FILE_BYTES} bytes`);
      text = await fh.readFile({ encoding: 'utf8' });
    } finally {
      await fh.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (e instanceof AuthError) throw e;
    throw new AuthError(`cannot read credentials file ${path} (${code ?? 'error'})`, {
      code: 'AUTH_FILE_UNREADABLE',
      hint: `check the permissions of ${path}`,
    });
  }
  if (text.trim().length === 0) return { path, auths: {}, credHelpers: {}, credsStore: undefined };

  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // The parser's message quotes the text around the error, which may be a password.
    throw invalid(path, 'it is not JSON');
  }
  if (!isObject(raw)) throw invalid(path, 'expected a JSON object at the top');

  const auths: Record<string, AuthEntry> = {};
  if (raw.auths !== undefined && raw.auths !== null) {
    if (!isObject(raw.auths)) throw invalid(path, '"auths" must be an object');
    for (const [key, entry] of Object.entries(raw.auths)) {
      if (!isObject(entry)) throw invalid(path, `auths[${JSON.stringify(key)}] must be an object`);
      const e: AuthEntry = {};
      for (const field of ['auth', 'username', 'password', 'identitytoken', 'registrytoken'] as const) {
        const v = entry[field];
        if (v === undefined || v === null) continue;
        if (typeof v !== 'string') throw invalid(path, `auths[${JSON.stringify(key)}].${field} must be a string`);
        e[field] = v;
      }
      auths[key] = e;
    }
  }

  const credHelpers: Record<string, string> = {};
  if (raw.credHelpers !== undefined && raw.credHelpers !== null) {
    if (!isObject(raw.credHelpers)) throw invalid(path, '"credHelpers" must be an object');
    for (const [key, name] of Object.entries(raw.credHelpers)) {
      if (typeof name !== 'string') throw invalid(path, `credHelpers[${JSON.stringify(key)}] must be a string`);
      if (name.length > 0) credHelpers[key] = name;
    }
  }

  let credsStore: string | undefined;
  if (raw.credsStore !== undefined && raw.credsStore !== null) {
    if (typeof raw.credsStore !== 'string') throw invalid(path, '"credsStore" must be a string');
    if (raw.credsStore.length > 0) credsStore = raw.credsStore;
  }
  return { path, auths, credHelpers, credsStore };
}

/** The credential an `auths` entry holds, or undefined when it is empty (a placeholder a helper fills). */
export function entryCredential(entry: AuthEntry, path: string, key: string): Credential | undefined {
  const cred: Credential = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth.trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw invalid(path, `auths[${JSON.stringify(key)}].auth is not base64 of "user:password"`);
    cred.username = decoded.slice(0, colon);
    cred.password = decoded.slice(colon + 1);
  } else {
    if (entry.username) cred.username = entry.username;
    if (entry.password) cred.password = entry.password;
  }
  if (entry.identitytoken) cred.identityToken = entry.identitytoken;
  if (entry.registrytoken) cred.registryToken = entry.registrytoken;
  // `auth` of "user:" alone (what docker writes next to an identity token) carries no password.
  if (cred.password === '') delete cred.password;
  const usable = cred.password !== undefined || cred.identityToken !== undefined || cred.registryToken !== undefined;
  return usable ? cred : undefined;
}
