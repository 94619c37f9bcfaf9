// Connections through a forward proxy (src/registry/proxy.ts decides which): undici's ProxyAgent,
// with https:// targets tunnelled through CONNECT (TLS to the target inside the tunnel, with the
// target's own CA settings) and http:// targets sent to the proxy as absolute-URI requests. The
// proxy connection gets the same watched connect as a direct one. And the failures that are the
// proxy's (not listening, refusing the tunnel, wanting other credentials) named as the proxy's,
// never with its password, so that nobody goes looking at a registry that was never reached.
import { STATUS_CODES } from 'node:http';
import type { SecureContext } from 'node:tls';
import { AuthError, NetworkError } from '../core/errors.ts';
import { redactText } from '../core/redact.ts';
import type { ProxyRoute } from './proxy.ts';
import { networkErrorFor } from './registry-errors.ts';
import { errorCode } from './retry.ts';
import { proxyClasses, type Dispatcher } from './undici.ts';
import { watchedConnector } from './undici-watch.ts';

export interface ProxyDispatcherOptions {
  route: ProxyRoute;
  /** TLS towards the target, for https:// targets (inside the tunnel). */
  targetTls?: { secureContext: SecureContext; rejectUnauthorized: boolean } | undefined;
  /** TLS towards the proxy itself, for an https:// proxy. */
  proxyTls?: { secureContext: SecureContext; rejectUnauthorized: boolean } | undefined;
  /** How long connecting to the proxy (and a TLS handshake through it) may take. */
  timeoutMs: number;
  /** keep-alive and timeouts of the pools, as for direct connections. */
  poolOptions: Record<string, unknown>;
}

/** A dispatcher for every request to one target origin, through `route`. */
export function proxyDispatcher(o: ProxyDispatcherOptions): Dispatcher {
  const { Pool, ProxyAgent } = proxyClasses();
  const proxyConnect = watchedConnector({ ...o.proxyTls }, o.timeoutMs);
  const proxyOrigin = o.route.url.origin;
  type PoolOptions = ConstructorParameters<typeof Pool>[1];
  return new ProxyAgent({
    uri: o.route.url.href,
    // Plain-HTTP targets as absolute-URI requests (what every proxy accepts), not CONNECT tunnels
    // (which many proxies allow to port 443 only).
    proxyTunnel: false,
    ...(o.targetTls !== undefined ? { requestTls: { ...o.targetTls, timeout: o.timeoutMs } } : {}),
    ...o.poolOptions,
    // The pool to the proxy for CONNECT, and the one absolute-URI requests go through: connects watched.
    clientFactory: (origin: string | URL, opts: object) => new Pool(origin, { ...opts, ...o.poolOptions, connect: proxyConnect } as PoolOptions),
    factory: (origin: string | URL, opts: object) =>
      new Pool(origin, { ...opts, ...o.poolOptions, ...(new URL(String(origin)).origin === proxyOrigin ? { connect: proxyConnect } : {}) } as PoolOptions),
  } as ConstructorParameters<typeof ProxyAgent>[0]);
}

/** Codes of a connection that never got to the proxy (or to its answer). */
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'CONNECT_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * A connection to the proxy that failed. Keeps the original's code, so that it is retried as a
 * direct connection's failure would be; proxyAwareNetworkError names the proxy at the end.
 */
export class ProxyConnectFailure extends Error {
  readonly code: string | undefined;
  readonly route: ProxyRoute;
  constructor(cause: unknown, route: ProxyRoute) {
    super(`cannot reach the proxy ${route.shown} (from ${route.variable}): ${redactText(cause instanceof Error ? cause.message : String(cause))}`, { cause });
    this.name = 'ProxyConnectFailure';
    this.code = errorCode(cause);
    this.route = route;
  }
}

function tunnelStatus(e: unknown): number | undefined {
  for (let c: unknown = e, depth = 0; depth < 4 && c instanceof Error; depth++, c = c.cause) {
    const m = /Proxy response \((\d{3})\) !== 200|Proxy Authentication Required \((407)\)/.exec(c.message);
    if (m !== null) return Number(m[1] ?? m[2]);
  }
  return undefined;
}

function credentialsHint(route: ProxyRoute): string {
  return `put the proxy's user and password in the URL: ${route.variable}=http://USER:PASSWORD@host:port (special characters percent-encoded)`;
}

/** The error for a proxy that answered 407 (or 401, as some proxies answer a CONNECT) to `target`. */
export function proxyAuthError(route: ProxyRoute, target: string, what: string, status: number): AuthError {
  const has = route.url.username !== '' || route.url.password !== '';
  return new AuthError(
    `cannot ${what}: the proxy ${route.shown} (from ${route.variable}) ${has ? 'refused the credentials given in' : 'asks for credentials, and none are given in'} ${route.variable} (HTTP ${status} on the way to ${target})`,
    { code: 'PROXY_AUTH_REJECTED', hint: has ? `check the user and password in ${route.variable}; ${credentialsHint(route)}` : credentialsHint(route) },
  );
}

/**
 * A failure of a request sent through `route` to `target` (host[:port]), as the proxy's when it is
 * the proxy's: a refused tunnel or refused credentials become the typed error at once (trying
 * again would only be refused again); a connection to the proxy that failed becomes a
 * ProxyConnectFailure (retried like any failed connect). Anything else is returned as it was.
 */
export function proxiedFailure(e: unknown, route: ProxyRoute, target: string, what: string): unknown {
  const status = tunnelStatus(e);
  if (status === 407 || status === 401) return proxyAuthError(route, target, what, status);
  if (status !== undefined) {
    return new NetworkError(
      `cannot ${what}: the proxy ${route.shown} (from ${route.variable}) did not open a connection to ${target}: it answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd(),
      {
        code: 'PROXY_REFUSED',
        cause: e,
        hint: `the proxy cannot reach ${target} or its rules forbid it (look at the proxy's log); a host to be reached directly goes in NO_PROXY`,
      },
    );
  }
  const code = errorCode(e);
  if (code !== undefined && CONNECT_CODES.has(code)) return new ProxyConnectFailure(e, route);
  return e;
}

const PHRASES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/**
 * networkErrorFor, with a failed connection to a proxy named as such: "cannot fetch …: cannot
 * reach the proxy http://proxy:3128 (from HTTPS_PROXY) on the way to registry.example: connection refused".
 */
export function proxyAwareNetworkError(e: unknown, host: string, what: string, attempts = 1): NetworkError {
  if (!(e instanceof ProxyConnectFailure)) return networkErrorFor(e, host, what, attempts);
  const { route, code } = e;
  const cause = e.cause instanceof Error ? e.cause.message : String(e.cause);
  const phrase = code !== undefined && PHRASES[code] !== undefined ? PHRASES[code] : redactText(cause);
  const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
  return new NetworkError(`cannot ${what}: cannot reach the proxy ${route.shown} (from ${route.variable}) on the way to ${host}: ${phrase}${code !== undefined && !phrase.includes(code) ? ` (${code})` : ''}${tries}`, {
    code: 'PROXY_UNREACHABLE',
    cause: e,
    hint: `check that the proxy is running and that ${route.variable} names it right (scheme, host and port); a host to be reached directly goes in NO_PROXY`,
  });
}
