// The one adapter that binds the handler to a socket (node:http or node:https): keep-alive and
// timeouts, a bound on responses in flight (each holds at most a couple of MiB of read buffers),
// an access log, and a graceful stop: stop accepting, let responses in flight finish within a
// bound, cut what is left, close the bundles. A blob response whose check fails (see handler.ts)
// is cut before its last chunk: the client sees a short body and a closed connection, never a
// complete one.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { IntegrityError, NetworkError, NotFoundError, UsageError, throwIfAborted } from '../core/errors.ts';
import { isValidRepository } from '../core/reference.ts';
import { openBundleSet, type BlobCheckEvent, type BundleSet, type FileRange } from './bundle-set.ts';
import { buildCatalog, type Catalog } from './catalog.ts';
import { createHandler, ociError, type Handler, type ServeResponse } from './handler.ts';
import { loadHtpasswd } from './htpasswd.ts';
import { Limiter } from '../util/limiter.ts';

export interface ServeOptions {
  bundles: readonly string[];
  /** `[HOST]:PORT`, `PORT`, `[::1]:PORT`; port 0 picks a free one. Default `:5000` (every address). */
  listen?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** bcrypt htpasswd file: Basic auth on every request. */
  htpasswd?: string | undefined;
  /** Path prefix images are served under, as `airlock push REGISTRY/PREFIX` would place them. */
  prefix?: string | undefined;
  /** Serve each image under its source host too (`P/quay.io/x/app`), as `airlock push --keep-host` places them. */
  keepHost?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Responses in flight at once (default 64); more wait, up to `maxQueued` (default 1024), then 503. */
  maxConcurrent?: number | undefined;
  maxQueued?: number | undefined;
  /** How long a stop waits for responses in flight (default 10 s). */
  drainTimeoutMs?: number | undefined;
  onAccess?: ((e: AccessLogEntry) => void) | undefined;
  /** Each blob checked against its digest (once per blob and process); `ok: false`: it is no longer served. */
  onBlobCheck?: ((e: BlobCheckEvent) => void) | undefined;
}

export interface AccessLogEntry {
  time: string;
  remote: string;
  method: string;
  /** Path and query as requested (no credentials ever travel there). */
  path: string;
  status: number;
  /** Body bytes sent (Content-Length of the response; 0 for HEAD and 304). */
  bytes: number;
  ms: number;
  user?: string | undefined;
  /** The body was not sent whole: the client went away, or the blob failed its check (`error` says so). */
  aborted?: boolean | undefined;
  /** What went wrong behind a 500, or why content was refused or cut. */
  error?: string | undefined;
}

export interface RunningServer {
  /** e.g. `http://127.0.0.1:5000`; an unspecified bind address shows as the address itself. */
  url: string;
  /** Bound address and actual port (`--listen :0` picks one). */
  address: string;
  port: number;
  tls: boolean;
  set: BundleSet;
  catalog: Catalog;
  /** Graceful stop; idempotent. */
  close(): Promise<void>;
}

export interface ListenAddress {
  /** undefined: every address. */
  host: string | undefined;
  port: number;
}

export const DEFAULT_LISTEN = ':5000';

export function parseListen(input: string): ListenAddress {
  const bad = (why: string): UsageError =>
    new UsageError(`invalid listen address "${input}": ${why}`, { code: 'LISTEN_INVALID', hint: 'expected [HOST]:PORT, e.g. :5000, 127.0.0.1:5000, [::1]:5000 (port 0: any free port)' });
  let host: string | undefined;
  let portText: string;
  if (/^\d+$/.test(input)) portText = input;
  else if (input.startsWith('[')) {
    const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(input);
    if (!m) throw bad('an IPv6 address needs brackets and a port, e.g. [::1]:5000');
    host = m[1]!;
    portText = m[2]!;
  } else {
    const colon = input.lastIndexOf(':');
    if (colon < 0) throw bad('no port');
    host = input.slice(0, colon) || undefined;
    portText = input.slice(colon + 1);
    if (host !== undefined && !/^[A-Za-z0-9.-]+$/.test(host)) throw bad(`"${host}" is not a host name or IPv4 address`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(`"${portText}" is not a port (0-65535)`);
  return { host, port: Number(portText) };
}

export function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (p !== '' && !isValidRepository(p)) {
    throw new UsageError(`invalid prefix "${prefix}": lowercase path components joined by /`, { code: 'PREFIX_INVALID' });
  }
  return p;
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`${what} ${path} does not exist`, { code: 'TLS_FILE_NOT_FOUND', cause: e });
    throw new UsageError(`cannot read ${what} ${path}: ${(e as Error).message}`, {
      code: 'TLS_FILE_UNREADABLE',
      cause: e,
      hint: code === 'EACCES' ? 'run airlock as a user that may read it, or fix its permissions' : undefined,
    });
  }
}

async function loadTls(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer }> {
  const [cert, key] = await Promise.all([readPem(certFile, 'TLS certificate'), readPem(keyFile, 'TLS key')]);
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw new UsageError(`TLS certificate ${certFile} and key ${keyFile} cannot be used: ${(e as Error).message}`, {
      code: 'TLS_INVALID',
      cause: e,
      hint: 'pass a PEM certificate (chain) and the PEM private key that belongs to it',
    });
  }
  return { cert, key };
}

/** Bytes per positioned read of a blob; two such buffers per response in flight. */
const CHUNK = 512 * 1024;

/** Reusable read buffers: fresh ones per chunk cost page faults and GC work at GB/s. */
class BufferPool {
  readonly #size: number;
  readonly #max: number;
  readonly #free: Buffer[] = [];
  constructor(size: number, max: number) {
    this.#size = size;
    this.#max = max;
  }
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#size);
  }
  give(b: Buffer): void {
    if (this.#free.length < this.#max) this.#free.push(b);
  }
}

/**
 * Send `range` with two pooled buffers: one is read while the other is being written, and a
 * buffer is read into again only after the socket has taken all of it (the write callback).
 * Memory per response is two buffers whatever the blob's size; a slow client slows the reads.
 */
async function sendFileRange(res: ServerResponse, range: FileRange, pool: BufferPool): Promise<void> {
  const bufs = [pool.take(), pool.take()] as const;
  let closed = false;
  const onClose = (): void => {
    closed = true;
  };
  res.once('close', onClose);
  let pending: Promise<void> | undefined;
  let clean = false;
  try {
    let pos = range.position;
    const end = range.position + range.length;
    for (let i = 0; pos < end; i ^= 1) {
      const buf = bufs[i]!;
      const { bytesRead } = await range.fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
      if (bytesRead === 0) throw new Error(`unexpected end of the bundle file at offset ${pos}`);
      pos += bytesRead;
      if (pending) await pending;
      if (closed) throw new Error('the client closed the connection');
      // The blob's check decides whether the body may be completed; a failure leaves it short.
      if (pos >= end && range.verdict) await range.verdict();
      const chunk = buf.subarray(0, bytesRead);
      pending = new Promise<void>((resolve, reject) => {
        const done = (err?: Error | null): void => {
          res.off('close', done);
          if (err) reject(err);
          else if (closed && !res.writableFinished && res.destroyed) reject(new Error('the client closed the connection'));
          else resolve();
        };
        res.once('close', done);
        res.write(chunk, done);
      });
      // Awaited after the next read; until then a failed write must not count as unhandled.
      pending.catch(() => {});
    }
    if (pending) await pending;
    await new Promise<void>((resolve) => {
      res.once('close', resolve);
      res.end(() => {
        res.off('close', resolve);
        resolve();
      });
    });
    clean = !closed || res.writableFinished;
  } finally {
    res.off('close', onClose);
    // After a failure the socket may still hold a buffer: leave both to the garbage collector.
    if (clean) for (const b of bufs) pool.give(b);
  }
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Open the bundles, bind, and answer until close() (or the signal). */
export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  if (opts.bundles.length === 0) throw new UsageError('serve needs at least one bundle');
  const listen = parseListen(opts.listen ?? DEFAULT_LISTEN);
  const prefix = normalizePrefix(opts.prefix);
  const tls = await loadTlsPair(opts.tlsCert, opts.tlsKey);
  const auth = opts.htpasswd !== undefined ? await loadHtpasswd(opts.htpasswd) : undefined;
  throwIfAborted(opts.signal);

  const set = await openBundleSet(opts.bundles, { signal: opts.signal, onBlobCheck: opts.onBlobCheck });
  let catalog: Catalog;
  let bound: BoundHandler;
  try {
    catalog = buildCatalog(set.images, prefix, set.shadowed, opts.keepHost === true);
    const handler = createHandler({ set, catalog, auth });
    bound = await bindHandler(handler, { ...opts, listen: opts.listen ?? DEFAULT_LISTEN, parsedListen: listen, tls, onClosed: () => set.close() });
  } catch (e) {
    await set.close();
    throw e;
  }
  return { url: bound.url, address: bound.address, port: bound.port, tls: bound.tls, set, catalog, close: bound.close };
}

/** `--tls-cert` and `--tls-key`, read and checked; neither: plain HTTP. */
export async function loadTlsPair(certFile: string | undefined, keyFile: string | undefined): Promise<{ cert: Buffer; key: Buffer } | undefined> {
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError('a TLS certificate and its key go together', { code: 'TLS_INVALID', hint: 'give both, or neither for plain HTTP' });
  }
  return certFile !== undefined && keyFile !== undefined ? await loadTls(certFile, keyFile) : undefined;
}

export interface BindOptions {
  /** As given, for errors. */
  listen: string;
  parsedListen: ListenAddress;
  tls: { cert: Buffer; key: Buffer } | undefined;
  signal?: AbortSignal | undefined;
  maxConcurrent?: number | undefined;
  maxQueued?: number | undefined;
  drainTimeoutMs?: number | undefined;
  onAccess?: ((e: AccessLogEntry) => void) | undefined;
  /** Runs once the socket is closed and the responses in flight are done (or cut). */
  onClosed?: (() => Promise<void>) | undefined;
}

export interface BoundHandler {
  url: string;
  address: string;
  port: number;
  tls: boolean;
  /** Graceful stop (then onClosed); idempotent. */
  close(): Promise<void>;
}

/**
 * Bind a handler to a socket: the one adapter serve and capture share (keep-alive, timeouts,
 * bounded responses in flight, the access log, the graceful stop).
 */
export async function bindHandler(handler: Handler, opts: BindOptions): Promise<BoundHandler> {
  const listen = opts.parsedListen;
  const tls = opts.tls;
  const maxConcurrent = opts.maxConcurrent ?? 64;
  // Responses in flight are bounded; waiting requests are bounded too (beyond that: 503).
  const gate = new Limiter(maxConcurrent);
  const maxQueued = opts.maxQueued ?? 1024;
  const pool = new BufferPool(CHUNK, 2 * maxConcurrent);
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void respond(handler, gate, maxQueued, pool, req, res, opts.onAccess);
  };
  const server: Server = tls ? createHttpsServer({ ...tls }, onRequest) : createHttpServer(onRequest);
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  // A client that stops reading a blob must not hold its slot forever.
  server.setTimeout(120_000);

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: listen.port, host: listen.host, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    throw listenError(e, opts.listen, listen);
  }
  server.on('error', () => {
    // Errors after listening belong to single connections; node reports them per socket.
  });
  const addr = server.address() as AddressInfo;
  const url = `${tls ? 'https' : 'http'}://${formatHost(addr.address)}:${addr.port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const stopped = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const drained = await Promise.race([gate.idle().then(() => true), sleep(opts.drainTimeoutMs ?? 10_000, false, { ref: false })]);
      if (!drained) server.closeAllConnections();
      // Keep-alive connections that finished their last response are idle now.
      server.closeIdleConnections();
      await Promise.race([stopped, sleep(2000, undefined, { ref: false })]);
      server.closeAllConnections();
      await opts.onClosed?.();
    })();
    return closing;
  };
  opts.signal?.addEventListener('abort', () => void close(), { once: true });
  return { url, address: addr.address, port: addr.port, tls: tls !== undefined, close };
}

function listenError(e: unknown, input: string, listen: ListenAddress): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  const host = listen.host === undefined ? '' : formatHost(listen.host);
  if (code === 'EADDRINUSE') {
    return new NetworkError(`cannot listen on ${input}: the address is already in use`, {
      code: 'ADDRESS_IN_USE',
      cause: e,
      hint: `another process holds port ${listen.port}; pick another, e.g. ${host}:${listen.port === 65535 ? 5001 : listen.port + 1}, or ${host}:0 for any free port`,
    });
  }
  if (code === 'EACCES') {
    return new NetworkError(`cannot listen on ${input}: permission denied`, {
      code: 'ADDRESS_DENIED',
      cause: e,
      hint: 'ports below 1024 need root or CAP_NET_BIND_SERVICE; use a higher port, e.g. :5000',
    });
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new NetworkError(`cannot listen on ${input}: ${listen.host ?? ''} is not an address of this machine`, {
      code: 'ADDRESS_UNAVAILABLE',
      cause: e,
      hint: 'use one of this machine\'s addresses, or :PORT for all of them',
    });
  }
  return e;
}

async function respond(handler: Handler, gate: Limiter, maxQueued: number, pool: BufferPool, req: IncomingMessage, res: ServerResponse, onAccess: ServeOptions['onAccess']): Promise<void> {
  const started = performance.now();
  const method = req.method ?? 'GET';
  const rawUrl = req.url ?? '/';
  let r: ServeResponse | undefined;
  let aborted = false;
  const release = await gate.tryAcquire(maxQueued);
  try {
    if (!release) {
      r = ociError(503, 'TOOMANYREQUESTS', 'too many requests in flight', undefined, { 'retry-after': '1' });
    } else {
      let url: URL | undefined;
      try {
        // Only origin-form targets (`/v2/…`); anything else is a malformed request.
        if (rawUrl.startsWith('/')) url = new URL(rawUrl, 'http://airlock.invalid');
      } catch {
        url = undefined;
      }
      r = url
        ? await handler({ method, path: url.pathname, query: url.searchParams, headers: req.headers, remote: req.socket.remoteAddress })
        : ociError(400, 'UNSUPPORTED', 'malformed request target');
    }
    if (method !== 'GET' && method !== 'HEAD' && ((req.headers['content-length'] ?? '0') !== '0' || req.headers['transfer-encoding'] !== undefined)) {
      // Do not read an upload we refuse just to keep the connection.
      r.headers.connection = 'close';
    }
    res.writeHead(r.status, r.headers);
    if (method === 'HEAD' || r.body === undefined || r.status === 304) res.end();
    else if (Buffer.isBuffer(r.body)) res.end(r.body);
    else {
      try {
        if (r.file) await sendFileRange(res, r.file, pool);
        else await pipeline(r.body(), res);
      } catch (e) {
        aborted = true;
        if (e instanceof IntegrityError) r = { ...r, error: e };
        res.destroy();
      }
    }
  } catch (e) {
    // Headers may be out already; the connection is the only thing left to close.
    r = { status: 500, headers: {}, error: e };
    try {
      if (res.headersSent) throw e;
      const err = ociError(500, 'UNKNOWN', 'internal error');
      res.writeHead(500, err.headers).end(err.body);
    } catch {
      res.destroy();
    }
  } finally {
    release?.();
    if (onAccess && r) {
      try {
        logAccess(onAccess, req, r, method, rawUrl, started, aborted);
      } catch {
        // A log sink that fails (a closed stderr) must not take the server down.
      }
    }
  }
}

function logAccess(onAccess: NonNullable<ServeOptions['onAccess']>, req: IncomingMessage, r: ServeResponse, method: string, rawUrl: string, started: number, aborted: boolean): void {
  const sent = method === 'HEAD' || r.status === 304 ? 0 : Number(r.headers['content-length'] ?? 0);
  onAccess({
    time: new Date().toISOString(),
    remote: req.socket.remoteAddress ?? '',
    method,
    path: rawUrl.length > 2048 ? `${rawUrl.slice(0, 2048)}…` : rawUrl,
    status: r.status,
    bytes: aborted ? 0 : sent,
    ms: Math.round((performance.now() - started) * 10) / 10,
    ...(r.user !== undefined ? { user: r.user } : {}),
    ...(aborted ? { aborted: true } : {}),
    ...(r.error !== undefined ? { error: r.error instanceof Error ? r.error.message : String(r.error) } : {}),
  });
}
