// Connections through a forward proxy (src/registry/proxy.ts decides which): undici's ProxyAgent,
// with https:// targets tunnelled through CONNECT (TLS to the target inside the tunnel, with the
// target's own CA settings) and http:// targets sent to the proxy as absolute-URI requests. The
// proxy connection gets the same watched connect as a direct one. And the failures that are the
// proxy's (not listening, refusing the tunnel, wanting other credentials) named as the proxy's,
// never with its password, so that nobody goes looking at a registry that was never reached.
import { STATUS_CODES } from 'node:http';
import { isIP } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { buildConnector as BuildConnector } from 'undici';
import { AuthError, NetworkError } from '../core/errors.ts';
import { redactText } from '../core/redact.ts';
import type { ProxyRoute } from './proxy.ts';
import { networkErrorFor } from './registry-errors.ts';
import { isUntrustedCertificate } from './tls.ts';
import { errorCode } from './retry.ts';
import { DispatcherClass, proxyClasses, type Dispatcher } from './undici.ts';
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

type LegacyHandler = Record<string, ((...args: unknown[]) => unknown) | undefined>;

/**
 * Passes a response on as complete when its last declared byte arrived and the proxy then closed
 * the connection. tinyproxy closes every connection after one answer without `Connection: close`;
 * undici then fails a response whose reader was still catching up ("other side closed") although
 * every byte of it is in. Only a close after exactly Content-Length bytes counts: anything short of
 * it stays the error it is.
 */
class CompleteOnCloseHandler {
  readonly #inner: LegacyHandler;
  #expected: number | undefined;
  #received = 0;
  #done = false;

  constructor(inner: object) {
    this.#inner = inner as LegacyHandler;
  }

  onConnect(...args: unknown[]): unknown {
    return this.#inner.onConnect?.(...args);
  }
  onResponseStarted(): unknown {
    return this.#inner.onResponseStarted?.();
  }
  onHeaders(statusCode: number, headers: Buffer[] | string[] | null, ...rest: unknown[]): unknown {
    this.#expected = undefined;
    this.#received = 0;
    for (let i = 0; headers !== null && i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'content-length') {
        const n = Number(String(headers[i + 1]));
        if (Number.isSafeInteger(n)) this.#expected = n;
      }
    }
    return this.#inner.onHeaders?.(statusCode, headers, ...rest);
  }
  onData(chunk: Buffer): unknown {
    this.#received += chunk.length;
    return this.#inner.onData?.(chunk);
  }
  onComplete(trailers: unknown): unknown {
    this.#done = true;
    return this.#inner.onComplete?.(trailers);
  }
  onError(err: Error): unknown {
    if (!this.#done && this.#expected !== undefined && this.#received === this.#expected && (err as { code?: unknown }).code === 'UND_ERR_SOCKET') {
      return this.onComplete([]);
    }
    return this.#inner.onError?.(err);
  }
  onUpgrade(...args: unknown[]): unknown {
    return this.#inner.onUpgrade?.(...args);
  }
  onBodySent(...args: unknown[]): unknown {
    return this.#inner.onBodySent?.(...args);
  }
  onRequestSent(): unknown {
    return this.#inner.onRequestSent?.();
  }
}

/** A dispatcher for every request to one target origin, through `route`. */
export function proxyDispatcher(o: ProxyDispatcherOptions): Dispatcher {
  return guardedDispatcher(proxyAgent(o));
}

/** `inner`, with every handler wrapped in a CompleteOnCloseHandler. */
function guardedDispatcher(inner: Dispatcher): Dispatcher {
  const d = Object.create(DispatcherClass.prototype) as Dispatcher;
  return Object.assign(d, {
    dispatch: (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => inner.dispatch(opts, new CompleteOnCloseHandler(handler) as never),
    close: () => inner.close(),
    destroy: (err?: Error | null) => inner.destroy(err ?? null),
  });
}

function proxyAgent(o: ProxyDispatcherOptions): Dispatcher {
  const { Pool, ProxyAgent } = proxyClasses();
  const watched = watchedConnector({ ...o.proxyTls }, o.timeoutMs);
  // Every failure of a connection to the proxy is marked as the proxy's. No SNI for a proxy named
  // by its IP address (undici passes the host name whatever it is; Node warns about an IP).
  const proxyConnect: BuildConnector.connector = (opts, callback) =>
    watched(opts.servername !== undefined && opts.servername !== null && isIP(opts.servername) !== 0 ? { ...opts, servername: undefined } : opts, (err, socket) => {
      if (err) callback(new ProxyConnectFailure(err, o.route), null);
      else callback(null, socket!);
    });
  const proxyOrigin = o.route.url.origin;
  type PoolOptions = ConstructorParameters<typeof Pool>[1];
  return new ProxyAgent({
    uri: o.route.url.href,
    // Plain-HTTP targets as absolute-URI requests (what every proxy accepts), not CONNECT tunnels
    // (which many proxies allow to port 443 only).
    proxyTunnel: false,
    ...(o.targetTls !== undefined ? { requestTls: { ...o.targetTls, timeout: o.timeoutMs } } : {}),
    ...o.poolOptions,
    // The pool to the proxy for CONNECT, and the one absolute-URI requests go through: connects
    // watched. The latter without keep-alive: tinyproxy closes every connection after one answer
    // without saying so (no `Connection: close`), and the next request sent on it as it closes
    // would fail, a streamed upload beyond any retry. Inside a tunnel the target decides as usual.
    clientFactory: (origin: string | URL, opts: object) => new Pool(origin, { ...opts, ...o.poolOptions, connect: proxyConnect } as PoolOptions),
    factory: (origin: string | URL, opts: object) =>
      new Pool(origin, { ...opts, ...o.poolOptions, ...(new URL(String(origin)).origin === proxyOrigin ? { connect: proxyConnect, pipelining: 0 } : {}) } as PoolOptions),
  } as ConstructorParameters<typeof ProxyAgent>[0]);
}

/**
 * A connection to the proxy that failed (refused, timed out, its TLS). Keeps the original's code, so that it is retried as a
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
