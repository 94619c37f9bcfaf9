// Which entry of a docker config / containers auth.json belongs to a registry. The files are
// written by docker, podman, skopeo, crane and hand, so one registry appears under many spellings:
// `host:port`, `https://host`, `http://host`, `https://host/v1/`, and for Docker Hub the legacy
// `https://index.docker.io/v1/` that `docker login` still writes.
import { DOCKER_HUB } from '../../core/reference.ts';

/** The key `docker login` uses for Docker Hub, and the server URL credential helpers know it by. */
export const DOCKER_HUB_SERVER_URL = 'https://index.docker.io/v1/';
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** Lower-cased host[:port] with Docker Hub's aliases folded into `docker.io`. */
export function canonicalRegistry(registry: string): string {
  const r = registry.trim().toLowerCase();
  return HUB_ALIASES.has(r) ? DOCKER_HUB : r;
}

/**
 * The registry a config key stands for, or undefined when the key has a path that makes it a
 * repository namespace (containers' `quay.io/org` keys): those never apply to a whole registry.
 */
export function registryOfKey(key: string): string | undefined {
  let k = key.trim();
  const scheme = /^https?:\/\//i.exec(k);
  if (scheme) k = k.slice(scheme[0].length);
  const slash = k.indexOf('/');
  if (slash >= 0) {
    if (!/^\/(?:v[12]\/?)?$/i.test(k.slice(slash))) return undefined;
    k = k.slice(0, slash);
  }
  return k.length === 0 ? undefined : canonicalRegistry(k);
}

/** The spellings tried before any other matching key, most specific first. */
function preferredKeys(registry: string): string[] {
  const r = canonicalRegistry(registry);
  if (r === DOCKER_HUB) {
    return [DOCKER_HUB_SERVER_URL, 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://index.docker.io', 'https://registry-1.docker.io'];
  }
  return [r, `https://${r}`, `http://${r}`, `https://${r}/v1/`, `https://${r}/v2/`, `http://${r}/v1/`];
}

/** Find `registry`'s entry in a map keyed by any spelling of registry names. */
export function lookupRegistryKey<T>(map: Readonly<Record<string, T>> | undefined, registry: string): { key: string; value: T } | undefined {
  if (!map) return undefined;
  if (Object.hasOwn(map, registry)) return { key: registry, value: map[registry]! };
  for (const key of preferredKeys(registry)) {
    if (Object.hasOwn(map, key)) return { key, value: map[key]! };
  }
  const want = canonicalRegistry(registry);
  for (const key of Object.keys(map).sort()) {
    if (registryOfKey(key) === want) return { key, value: map[key]! };
  }
  return undefined;
}

/** The server URL a credential helper stores `registry` under (what `docker login` passed it). */
export function helperServerUrl(registry: string): string {
  return canonicalRegistry(registry) === DOCKER_HUB ? DOCKER_HUB_SERVER_URL : registry.trim();
}
