// Stall and trickle detection for requests made through undici: a connector whose timeout tells a
// host that never accepted from one that accepted and then said nothing, a handler that watches a
// response body (undici's own body timeout cannot see a trickle), and an upload body that knows
// whether it is waiting for its source or for the registry.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { buildConnector as BuildConnector, Dispatcher } from 'undici';
import { connectTimeoutError, noHeadersError, stallError, TransferWatch } from './transfer-watch.ts';
import type { TransferLimits } from './transfer-limits.ts';

const require = createRequire(import.meta.url);

type Connect = (options: BuildConnector.Options, callback: BuildConnector.Callback) => Socket;

// The connector undici builds from `connect: {…}` options (what Agent → Pool do with an object).
const buildConnector = require('undici/lib/core/connect.js') as (opts: BuildConnector.BuildOptions) => Connect;

/**
 * undici's connector with the TLS options given and its timeout replaced by one that says what
 * happened: nothing accepted the connection, or something did and then never finished the TLS
 * handshake (the socket's 'connect' event marks the TCP part).
 */
export function watchedConnector(tls: BuildConnector.BuildOptions, timeoutMs: number): BuildConnector.connector {
  const connect = buildConnector({ ...tls, timeout: 0 });
  return (opts, callback) => {
    let settled = false;
    let accepted = false;
    const host = opts.host ?? opts.hostname;
    const socket = connect(opts, (...args) => {
      settled = true;
      clearTimeout(timer);
      callback(...args);
    });
    socket.once('connect', () => {
      accepted = true;
    });
    const timer = setTimeout(() => {
      if (settled) return;
      socket.destroy(accepted ? noHeadersError(host, timeoutMs, 'the TLS handshake did not complete') : connectTimeoutError(host, timeoutMs));
    }, timeoutMs);
    timer.unref();
    return socket;
  };
}

/** What a request's response body is watched with (`request(…, { watch })`). */
export interface ResponseWatchSpec {
  limits: TransferLimits;
  host: string;
}

/** The handler methods undici's core calls (the legacy interface `request`'s handler implements). */
type LegacyHandler = Record<string, ((...args: unknown[]) => unknown) | undefined>;

/**
 * Wraps the handler undici's `request` makes: counts body bytes, sees undici pause (the reader
 * of the body is behind) and resume, and aborts the request with a TransferStallError when the
 * watch trips. undici's core calls handlers with this (legacy) interface; `request`'s own handler
 * is one.
 */
export class WatchedHandler {
  readonly #inner: LegacyHandler;
  readonly #spec: ResponseWatchSpec;
  #abort: ((reason: Error) => void) | undefined;
  #watch: TransferWatch | undefined;

  constructor(inner: Dispatcher.DispatchHandler, spec: ResponseWatchSpec) {
    this.#inner = inner as unknown as LegacyHandler;
    this.#spec = spec;
  }

  onConnect(abort: (reason: Error) => void, context: unknown): unknown {
    this.#abort = abort;
    return this.#inner.onConnect?.(abort, context);
  }

  onResponseStarted(): unknown {
    return this.#inner.onResponseStarted?.();
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): unknown {
    let onResume = resume;
    if (statusCode >= 200) {
      this.#watch?.stop();
      const { limits, host } = this.#spec;
      const watch = new TransferWatch(limits, (kind, rate) => this.#abort?.(stallError(kind, host, 'download', limits, watch.bytes, rate)));
      this.#watch = watch;
      onResume = () => {
        watch.resume();
        resume();
      };
    }
    const r = this.#inner.onHeaders?.(statusCode, headers, onResume, statusText);
    if (r === false) this.#watch?.pause();
    return r;
  }

  onData(chunk: Buffer): unknown {
    const watch = this.#watch;
    if (watch !== undefined) watch.bytes += chunk.length;
    const r = this.#inner.onData?.(chunk);
    if (r === false) watch?.pause();
    return r;
  }

  onComplete(trailers: unknown): unknown {
    this.#watch?.stop();
    return this.#inner.onComplete?.(trailers);
  }

  onError(err: Error): unknown {
    this.#watch?.stop();
    return this.#inner.onError?.(err);
  }

  onUpgrade(statusCode: number, headers: unknown, socket: unknown): unknown {
    return this.#inner.onUpgrade?.(statusCode, headers, socket);
  }

  onBodySent(chunk: unknown): unknown {
    return this.#inner.onBodySent?.(chunk);
  }

  onRequestSent(): unknown {
    return this.#inner.onRequestSent?.();
  }
}

/** How an upload body is going, for the request's error. */
export interface UploadProgress {
  /** Bytes handed to the connection. */
  bytes: number;
  /** Every byte was handed over: what follows is the wait for the registry's answer. */
  sent: boolean;
}

/**
 * An upload body for undici that watches the registry take it. undici pauses the body when the
 * socket is full and resumes it on 'drain': only time spent paused is the registry's, so a slow
 * source (a download feeding the upload) never gets the upload cut. `onTrip` gets the error to
 * abort the request with. The source is piped in; when undici destroys the body (the request
 * failed, or the registry answered early) the source is destroyed too, as when undici had it.
 */
export class WatchedUpload extends Transform {
  readonly #source: Readable;
  readonly #watch: TransferWatch;
  readonly #progress: UploadProgress;

  constructor(source: Readable, limits: TransferLimits, host: string, progress: UploadProgress, onTrip: (err: Error) => void) {
    super();
    this.#source = source;
    this.#progress = progress;
    const watch = new TransferWatch(limits, (kind, rate) => onTrip(stallError(kind, host, 'upload', limits, watch.bytes, rate)), { paused: true });
    this.#watch = watch;
    source.on('error', (e) => this.destroy(e));
    source.pipe(this);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#watch.bytes += chunk.length;
    this.#progress.bytes = this.#watch.bytes;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#progress.sent = true;
    this.#watch.stop();
    callback();
  }

  override pause(): this {
    // undici: the socket is full, the registry has to take bytes before more can go.
    this.#watch.resume();
    return super.pause();
  }

  override resume(): this {
    // undici: the socket drained; what comes next waits for the source.
    this.#watch.pause();
    return super.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#watch.stop();
    // The request's failure is the request's to report: the source did nothing wrong, it stops.
    this.#source.unpipe(this);
    if (!this.#source.destroyed) this.#source.destroy();
    callback(error);
  }
}
