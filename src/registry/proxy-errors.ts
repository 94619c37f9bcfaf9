// The failures of requests sent through a forward proxy that are the proxy's (not listening, its
// certificate untrusted, refusing the tunnel, wanting other credentials), named as the proxy's and
// never with its password, so that nobody goes looking at a registry that was never reached.
import { STATUS_CODES } from 'node:http';
import { AuthError, NetworkError } from '../core/errors.ts';
import { redactText } from '../core/redact.ts';
import type { ProxyRoute } from './proxy.ts';
import { networkErrorFor } from './registry-errors.ts';
import { errorCode } from './retry.ts';
import { isUntrustedCertificate } from './tls.ts';

/**
 * A connection to the proxy that failed (refused, timed out, its TLS), as proxy-agent.ts marks it.
 * Keeps the original's code, so that it is retried as a direct connection's failure would be;
 * proxyAwareNetworkError names the proxy at the end.
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

/** The ProxyConnectFailure behind `e`, if it is one (undici may pass it on as a cause). */
function connectFailure(e: unknown): ProxyConnectFailure | undefined {
  for (let c: unknown = e, depth = 0; depth < 4 && c instanceof Error; depth++, c = c.cause) {
    if (c instanceof ProxyConnectFailure) return c;
  }
  return undefined;
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
 * again would only be refused again); a connection to the proxy that failed is its
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
  return connectFailure(e) ?? e;
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
  const failure = connectFailure(e);
  if (failure === undefined) return networkErrorFor(e, host, what, attempts);
  const { route, code } = failure;
  // Node suggests --use-system-ca for untrusted chains; airlock already trusts the system store.
  const cause = (failure.cause instanceof Error ? failure.cause.message : String(failure.cause)).replace(/;\s*if the root CA is installed locally.*$/s, '');
  const proxyHost = route.url.host;
  if (isUntrustedCertificate(failure.cause)) {
    return new NetworkError(`cannot ${what}: the TLS certificate of the proxy ${route.shown} (from ${route.variable}) is not trusted (${code}: ${redactText(cause)})`, {
      code: 'TLS_UNTRUSTED',
      cause: failure,
      hint: `trust the CA that signed it (a CA file, or <dir>/${proxyHost}/ca.crt in a certs.d dir), or use the proxy's http:// address`,
    });
  }
  const phrase = code !== undefined && PHRASES[code] !== undefined ? PHRASES[code] : redactText(cause);
  const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
  return new NetworkError(`cannot ${what}: cannot reach the proxy ${route.shown} (from ${route.variable}) on the way to ${host}: ${phrase}${code !== undefined && !phrase.includes(code) ? ` (${code})` : ''}${tries}`, {
    code: 'PROXY_UNREACHABLE',
    cause: failure,
    hint: `check that the proxy is running and that ${route.variable} names it right (scheme, host and port); a host to be reached directly goes in NO_PROXY`,
  });
}
