// Connections through a forward proxy (src/registry/proxy.ts decides which): undici's ProxyAgent,
// with https:// targets tunnelled through CONNECT (TLS to the target inside the tunnel, with the
// target's own CA settings) and http:// targets sent to the proxy as absolute-URI requests. The
// connection to the proxy gets the same watched connect as a direct one, and its failures are
// marked as the proxy's (proxy-errors.ts names them).
import { isIP } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { buildConnector as BuildConnector } from 'undici';
import type { ProxyRoute } from './proxy.ts';
import { ProxyConnectFailure } from './proxy-errors.ts';
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
