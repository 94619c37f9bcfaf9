// Where a registry name actually lives: the API host (docker.io is served by registry-1.docker.io),
// and whether plain HTTP may ever be used for it.
import { DOCKER_HUB, isLoopbackHost, registryHostname } from '../core/reference.ts';

/** The host[:port] that serves the distribution API for a registry name. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
}

/**
 * Did the user mark this registry insecure? An entry matches `host:port` exactly, or, when it
 * has no port, every port of that host; `*` matches every registry (crane's and oras' bare --insecure).
 */
export function isInsecureRegistry(registry: string, insecure: readonly string[] = []): boolean {
  const host = registryHostname(registry).toLowerCase();
  const full = registry.toLowerCase();
  return insecure.some((entry) => {
    const e = entry.trim().toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    if (e === full || e === '*') return true;
    const hasPort = e.startsWith('[') ? e.includes(']:') : e.includes(':');
    return !hasPort && registryHostname(e) === host;
  });
}

/**
 * Plain HTTP is allowed only for this machine (127.0.0.0/8, localhost, [::1]) or registries the
 * user marked insecure; for those, HTTPS is still tried first. Every other registry is HTTPS only,
 * with no fallback whatever the failure.
 */
export function plainHttpAllowed(registry: string, insecure: readonly string[] = []): boolean {
  return isLoopbackHost(registry) || isInsecureRegistry(registry, insecure);
}

/**
 * TLS connect errors that mean "the server answered in plain HTTP": OpenSSL reads the start of an
 * HTTP response as a TLS record header. Certificate errors are not among them: a server that
 * speaks TLS with an untrusted certificate must stay an error, never a downgrade.
 */
export function isPlainHttpAnswer(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || code === 'ERR_SSL_HTTP_REQUEST') {
    return true;
  }
  const message = err instanceof Error ? err.message : '';
  return /wrong version number|packet length too long|http request/i.test(message) && /SSL|TLS/i.test(message);
}
