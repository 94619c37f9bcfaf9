// Where credentials come from, in the order podman/skopeo (containers/image) and docker look:
//   1. $REGISTRY_AUTH_FILE
//   2. $XDG_RUNTIME_DIR/containers/auth.json (without that variable, /run/containers/$UID/auth.json)
//   3. ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json
//   4. $DOCKER_CONFIG/config.json, or ~/.docker/config.json
// In each file: credHelpers[registry] → auths[registry] → credsStore; the first answer wins.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { entryCredential, readAuthFile } from './auth-file.ts';
import type { Credential, CredentialStore } from './credential.ts';
import { runCredentialHelper } from './credential-helper.ts';
import { helperServerUrl, lookupRegistryKey } from './registry-keys.ts';

export interface CredentialStoreOptions {
  /** Environment to read the variables above from and to run helpers with (PATH finds them). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Home directory for ~/.config and ~/.docker. Default $HOME from `env`, else the OS's. */
  homeDir?: string;
  /** Deadline for one credential helper run (default 30 s). */
  helperTimeoutMs?: number;
}

const HELPER_TIMEOUT_MS = 30_000;
/** A helper's answer is a few hundred bytes; 1 MiB is only there to stop a runaway. */
const HELPER_MAX_OUTPUT = 1024 * 1024;

/** Where podman and skopeo log in by default on Linux (containers-auth.json(5)). */
export function containersRuntimeAuthPath(env: NodeJS.ProcessEnv): string {
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json') : join('/run/containers', String(process.getuid?.() ?? 0), 'auth.json');
}

/** The files consulted, in order (existing or not), without duplicates. */
export function authFilePaths(opts: CredentialStoreOptions = {}): string[] {
  const env = opts.env ?? process.env;
  const home = opts.homeDir ?? env.HOME ?? homedir();
  const paths: string[] = [];
  if (env.REGISTRY_AUTH_FILE) paths.push(env.REGISTRY_AUTH_FILE);
  paths.push(containersRuntimeAuthPath(env));
  paths.push(join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'));
  paths.push(env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(home, '.docker', 'config.json'));
  return [...new Set(paths)];
}

export function loadCredentialStore(opts: CredentialStoreOptions = {}): CredentialStore {
  const env = opts.env ?? process.env;
  const paths = authFilePaths(opts);
  const helper = (name: string, registry: string, configuredIn: string) =>
    runCredentialHelper(name, helperServerUrl(registry), {
      env,
      timeoutMs: opts.helperTimeoutMs ?? HELPER_TIMEOUT_MS,
      maxOutputBytes: HELPER_MAX_OUTPUT,
      configuredIn,
    });

  return {
    async get(registry: string): Promise<Credential | undefined> {
      for (const path of paths) {
        const file = await readAuthFile(path);
        if (!file) continue;
        const helperFor = lookupRegistryKey(file.credHelpers, registry);
        if (helperFor) {
          const cred = await helper(helperFor.value, registry, path);
          if (cred) return cred;
        }
        const entry = lookupRegistryKey(file.auths, registry);
        if (entry) {
          const cred = entryCredential(entry.value, path, entry.key);
          if (cred) return cred;
        }
        if (file.credsStore) {
          const cred = await helper(file.credsStore, registry, path);
          if (cred) return cred;
        }
      }
      return undefined;
    },
  };
}
