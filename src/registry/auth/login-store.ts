// Writing and removing a login where docker, podman and skopeo read it, so that a login with
// airlock serves them and theirs serves airlock (credential-store.ts reads the same files):
//   1. $REGISTRY_AUTH_FILE, when set (podman, skopeo and buildah write there too);
//   2. the containers auth.json podman would write ($XDG_RUNTIME_DIR/containers/auth.json), when
//      it exists: the user logs in with podman;
//   3. docker's config.json ($DOCKER_CONFIG or ~/.docker), when it exists: the user logs in with
//      docker, and docker reads no other file (podman and skopeo read it too);
//   4. otherwise $XDG_RUNTIME_DIR/containers/auth.json (containers-auth.json(5)), or docker's
//      config.json when there is no runtime dir (the one file all three read).
// (2 is /run/containers/$UID/auth.json without $XDG_RUNTIME_DIR, where podman as root logs in.)
// A file that hands this registry to a credential helper (credHelpers, credsStore) gets the login
// through that helper, as docker does. Everything else in a file is kept as it was, unknown keys
// included; the file is replaced atomically and is mode 0600 (it holds passwords).
import { mkdir, readFile, realpath, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { DOCKER_HUB, isValidRegistry } from '../../core/reference.ts';
import { writeFileAtomic } from '../../util/atomic-file.ts';
import { readAuthFile } from './auth-file.ts';
import { authFilePaths, containersRuntimeAuthPath, type CredentialStoreOptions } from './credential-store.ts';
import { eraseWithCredentialHelper, storeWithCredentialHelper } from './credential-helper.ts';
import { canonicalRegistry, DOCKER_HUB_SERVER_URL, helperServerUrl, lookupRegistryKey, registryOfKey } from './registry-keys.ts';

/** The registry a user typed for login/logout (host[:port], a URL of one, Docker Hub's aliases). */
export function loginRegistry(input: string): string {
  const registry = registryOfKey(input);
  if (registry === undefined || !isValidRegistry(registry)) {
    throw new UsageError(`"${input}" is not a registry: expected HOST[:PORT], e.g. registry.example.com:5000`, {
      code: 'REFERENCE_INVALID',
      hint: 'a login is for a whole registry, without a repository path',
    });
  }
  return registry;
}

const HELPER_TIMEOUT_MS = 30_000;
const HELPER_MAX_OUTPUT = 1024 * 1024;

function dockerConfigPath(env: NodeJS.ProcessEnv, home: string): string {
  return env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(home, '.docker', 'config.json');
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

/** The file `airlock login` writes (the rules at the top of this file). */
export async function loginFilePath(opts: CredentialStoreOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const home = opts.homeDir ?? env.HOME ?? homedir();
  if (env.REGISTRY_AUTH_FILE) return env.REGISTRY_AUTH_FILE;
  const docker = dockerConfigPath(env, home);
  const runtime = containersRuntimeAuthPath(env);
  if (await exists(runtime)) return runtime;
  if (await exists(docker)) return docker;
  return env.XDG_RUNTIME_DIR && (await exists(env.XDG_RUNTIME_DIR)) ? runtime : docker;
}

/** The key a file's kind spells `registry` under: docker's legacy URL for Docker Hub in docker's config.json. */
function keyFor(registry: string, path: string): string {
  return canonicalRegistry(registry) === DOCKER_HUB && path.endsWith('config.json') ? DOCKER_HUB_SERVER_URL : registry;
}

type Json = Record<string, unknown>;

/** The file's JSON as it is (unknown keys kept), checked first by the reader's own rules. */
async function readRaw(path: string): Promise<Json | undefined> {
  const checked = await readAuthFile(path);
  if (!checked) return undefined;
  const text = await readFile(path, 'utf8');
  return text.trim() === '' ? {} : (JSON.parse(text) as Json);
}

/** Keys of `auths` that stand for the whole of `registry`, in any spelling. */
function keysOf(auths: Json, registry: string): string[] {
  const want = canonicalRegistry(registry);
  return Object.keys(auths).filter((k) => registryOfKey(k) === want);
}

/** A symlinked file (dotfiles) is written where it points, keeping the link. */
async function resolved(path: string): Promise<string> {
  return await realpath(path).catch(() => path);
}

async function writeJson(path: string, json: Json): Promise<void> {
  const target = await resolved(path);
  // A new folder holds credentials only: nobody else's to list (podman makes it 0700 too).
  await mkdir(dirname(target), { recursive: true, mode: 0o700 });
  await writeFileAtomic(target, `${JSON.stringify(json, null, '\t')}\n`, { mode: 0o600 });
}

function helperFor(raw: Json, registry: string): string | undefined {
  const helpers = raw.credHelpers as Record<string, string> | undefined;
  const named = lookupRegistryKey(helpers, registry)?.value;
  if (named) return named;
  return typeof raw.credsStore === 'string' && raw.credsStore.length > 0 ? raw.credsStore : undefined;
}

export interface StoredLogin {
  /** The file written, or that named the credential helper. */
  path: string;
  /** The key of the entry (host[:port]; docker's legacy URL for Docker Hub in config.json). */
  key: string;
  /** `docker-credential-<name>` when a helper holds the secret instead of the file. */
  helper?: string | undefined;
}

/** Store `username`/`password` for `registry` (host[:port]) where `loginFilePath` says. */
export async function storeLogin(registry: string, username: string, password: string, opts: CredentialStoreOptions & { signal?: AbortSignal } = {}): Promise<StoredLogin> {
  const path = await loginFilePath(opts);
  const raw = (await readRaw(path)) ?? {};
  const key = keyFor(registry, path);
  const auths = (raw.auths && typeof raw.auths === 'object' ? raw.auths : {}) as Json;
  const helper = helperFor(raw, registry);
  // Other spellings of this registry (https://host, host/v1/) would shadow or outlive the new entry.
  for (const k of keysOf(auths, registry)) if (k !== key) delete auths[k];
  if (helper !== undefined) {
    await storeWithCredentialHelper(helper, helperServerUrl(registry), username, password, helperOptions(opts, path));
    // What docker leaves in the file beside a helper: the key, no secret.
    delete auths[key];
    raw.auths = auths;
    await writeJson(path, raw);
    return { path, key, helper: `docker-credential-${helper}` };
  }
  const entry = (auths[key] && typeof auths[key] === 'object' ? auths[key] : {}) as Json;
  for (const f of ['username', 'password', 'identitytoken', 'registrytoken']) delete entry[f];
  entry.auth = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
  auths[key] = entry;
  raw.auths = auths;
  await writeJson(path, raw);
  return { path, key };
}

function helperOptions(opts: CredentialStoreOptions & { signal?: AbortSignal }, path: string) {
  return {
    env: opts.env ?? process.env,
    timeoutMs: opts.helperTimeoutMs ?? HELPER_TIMEOUT_MS,
    maxOutputBytes: HELPER_MAX_OUTPUT,
    configuredIn: path,
    signal: opts.signal,
  };
}

export interface RemovedLogin {
  /** Every file that held a login for the registry and no longer does. */
  paths: string[];
  /** Helpers asked to forget it. */
  helpers: string[];
}

/**
 * Forget `registry` in every file airlock reads credentials from (a login left in any of them would
 * still be used), and in the credential helpers they name for it. Nothing to forget is no error
 * (both lists empty): a logout in a clean-up script must not fail on a second run.
 */
export async function removeLogin(registry: string, opts: CredentialStoreOptions & { signal?: AbortSignal } = {}): Promise<RemovedLogin> {
  const removed: RemovedLogin = { paths: [], helpers: [] };
  for (const path of authFilePaths(opts)) {
    const raw = await readRaw(path);
    if (!raw) continue;
    const auths = (raw.auths && typeof raw.auths === 'object' ? raw.auths : {}) as Json;
    const keys = keysOf(auths, registry);
    const helpers = raw.credHelpers as Record<string, string> | undefined;
    const helper = lookupRegistryKey(helpers, registry)?.value ?? (typeof raw.credsStore === 'string' && raw.credsStore ? raw.credsStore : undefined);
    if (helper !== undefined) {
      if (await eraseWithCredentialHelper(helper, helperServerUrl(registry), helperOptions(opts, path))) removed.helpers.push(`docker-credential-${helper}`);
    }
    if (keys.length === 0) continue;
    for (const k of keys) delete auths[k];
    await writeJson(path, raw);
    removed.paths.push(path);
  }
  return removed;
}
