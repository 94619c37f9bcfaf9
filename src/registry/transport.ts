// The HTTP layer under the registry client: one undici Agent (keep-alive pools) per host with that
// host's TLS settings, the https-then-http decision for loopback/insecure registries, a per-host
// limit on requests in flight, retries with backoff, the 401 → authorize → retry-once dance, and
// redirects that never carry the Authorization header to another origin. Blob bodies the registry
// serves itself come through the lean client instead (getForPump, lean-http.ts), under the same
// limit, credentials and TLS settings. Every connect, wait for headers and body (both ways) is
// watched for silence and trickles (transfer-watch.ts); a cut counts as a failed attempt. A host
// the environment routes through a forward proxy (proxy.ts) gets a proxy pool instead (CONNECT for
// https://, absolute-URI requests for http://) and no lean client: its blob bodies come through
// undici, read and verified by the same consumers.
import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls';
import { Agent, request, type Dispatcher } from './undici.ts';
import { AbortedError, AuthError, NetworkError, isAirlockError } from '../core/errors.ts';
import { isLoopbackHost } from '../core/reference.ts';
import { apiHost, isPlainHttpAnswer, plainHttpAllowed } from './endpoint.ts';
import { networkErrorFor } from './registry-errors.ts';
import { proxyConfigFromEnv, proxyFor, type ProxyConfig, type ProxyRoute } from './proxy.ts';
import { proxyDispatcher } from './proxy-agent.ts';
import { proxiedFailure, proxyAwareNetworkError } from './proxy-errors.ts';
import { backoffDelay, errorCode, isRetryableError, isRetryableStatus, parseRetryAfter, retryingNote, sleepWithSignal, whileDoing } from './retry.ts';
import { Limiter } from '../util/limiter.ts';
import { connectOptionsFor, type TlsSettings } from './tls.ts';
import { LeanHttp, type LeanResponse, type LeanTls } from './lean-http.ts';
import { COMMIT_WAIT_FACTOR, formatDuration, type TransferLimits } from './transfer-limits.ts';
import { connectTimeoutError, noHeadersError, TransferStallError } from './transfer-watch.ts';
import { watchedConnector, WatchedUpload, type UploadProgress } from './undici-watch.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type Headers = Record<string, string | string[] | undefined>;

/** The parts of the auth module the transport needs (src/registry/auth/index.ts implements them). */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}
export interface AuthProvider {
  cached(registry: string, scopes: string[]): string | undefined;
  authorize(registry: string, challenges: AuthChallenge[], scopes: string[], signal?: AbortSignal): Promise<string>;
  /** The error for a request refused again after authorize's answer (names whose credentials failed). */
  rejectionError?(registry: string, challenges: AuthChallenge[], scopes: string[]): Error;
}
export interface AuthHooks {
  provider: AuthProvider;
  parseChallenges(header: string): AuthChallenge[];
}

export interface TransportOptions extends TlsSettings {
  concurrency: number;
  retries: number;
  retryBaseDelayMs: number;
  userAgent: string;
  limits: TransferLimits;
  /** Told about every retry: what failed and what happens next. */
  onWarning?: ((warning: { code: string; message: string }) => void) | undefined;
  /** Forward proxies and NO_PROXY (default: this process's environment, proxyConfigFromEnv). */
  proxy?: ProxyConfig | undefined;
}

export interface SendRequest {
  /** Registry name as the user wrote it (docker.io, 127.0.0.1:5000): auth and limits are keyed by it. */
  registry: string;
  method: HttpMethod;
  /** `/v2/...` with query, resolved against the registry's API origin. */
  path?: string;
  /** An absolute URL the registry handed out (upload Location, pagination Link). */
  url?: URL;
  headers?: Record<string, string>;
  /** Buffers are replayed on retry; a stream can be sent once only. */
  body?: Uint8Array | string | Readable;
  scopes: string[];
  signal?: AbortSignal | undefined;
  /** A verb phrase for errors: "fetch blob sha256:… of 127.0.0.1:5000/app". */
  what: string;
  /** Continues a transfer that already holds a slot (a resume): taking another could deadlock. */
  continuation?: boolean;
  /** Default true for GET/HEAD. */
  followRedirects?: boolean;
  /**
   * Read a 2xx answer's body as part of the request (manifests, tag lists): a body that breaks,
   * stalls or crawls is then retried like a failed request. The result is in `bytes`.
   */
  readBody?: (res: SendResponse) => Promise<Buffer>;
}

export interface SendResponse {
  status: number;
  headers: Headers;
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered, after redirects. */
  url: URL;
  attempts: number;
  /** The body, when the request asked for it to be read (`readBody`). */
  bytes?: Buffer;
}

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function ignore(): void {}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const AUTH_BODY_LIMIT = 1024 * 1024;

/** A replayable body versus a stream. */
function isStream(body: SendRequest['body']): body is Readable {
  return typeof body === 'object' && body !== null && typeof (body as Readable).pipe === 'function';
}

export class Transport {
  readonly #opts: TransportOptions;
  readonly #auth: AuthHooks | undefined;
  readonly #agents = new Map<string, Promise<Dispatcher>>();
  readonly #origins = new Map<string, Promise<string>>();
  readonly #limits = new Map<string, Limiter>();
  readonly #tls = new Map<string, Promise<LeanTls>>();
  /** The blob-body fast path (created on first use) and the registries it is not used for. */
  #leanHttp: LeanHttp | undefined;
  readonly #leanOff = new Set<string>();
  #closed = false;
  readonly #proxy: ProxyConfig;

  constructor(opts: TransportOptions, auth?: AuthHooks) {
    this.#opts = opts;
    this.#auth = auth;
    this.#proxy = opts.proxy ?? proxyConfigFromEnv();
  }

  /** The forward proxy for connections to `protocol//host`, if one applies. */
  #route(protocol: string, host: string): ProxyRoute | undefined {
    if (this.#proxy.http === undefined && this.#proxy.https === undefined) return undefined;
    return proxyFor(new URL(`${protocol}//${host}`), this.#proxy);
  }

  /** A failure of a request to `url`: the proxy's named as such when it went through one. */
  #failed(e: unknown, url: URL, what: string): unknown {
    const route = this.#route(url.protocol, url.host);
    return route === undefined ? e : proxiedFailure(e, route, url.host, what);
  }

  /** `https://host` or, for loopback/insecure registries that answered TLS in plain HTTP, `http://host`. */
  async origin(registry: string, signal?: AbortSignal): Promise<string> {
    let p = this.#origins.get(registry);
    if (p === undefined) {
      p = this.#probeOrigin(registry, signal);
      this.#origins.set(registry, p);
      // a failed probe (registry not up yet) must not be remembered
      p.catch(() => this.#origins.delete(registry));
    }
    return await p;
  }

  async #probeOrigin(registry: string, signal: AbortSignal | undefined): Promise<string> {
    const host = apiHost(registry);
    if (!plainHttpAllowed(registry, this.#opts.insecure)) return `https://${host}`;
    // This machine answers at once (or refuses): one bare handshake tells TLS from plain HTTP.
    // Through a proxy the probe goes the usual way, through it.
    const quick = isLoopbackHost(host) && this.#route('https:', host) === undefined ? await handshakeProbe(host, this.#opts.limits.timeoutMs, signal) : undefined;
    if (quick !== undefined) return `${quick}://${host}`;
    try {
      const res = await request(`https://${host}/v2/`, {
        dispatcher: await this.#agent(host, 'https:'),
        method: 'GET',
        headers: { 'user-agent': this.#opts.userAgent },
        signal,
        watch: { limits: this.#opts.limits, host },
      });
      await res.body.dump();
      return `https://${host}`;
    } catch (e) {
      if (isPlainHttpAnswer(e)) return `http://${host}`;
      throw errorCode(e) === 'UND_ERR_HEADERS_TIMEOUT' ? noHeadersError(host, this.#opts.limits.timeoutMs) : this.#failed(e, new URL(`https://${host}`), `reach ${host}`);
    }
  }

  /**
   * The pool for one origin. Plain-HTTP origins get no TLS settings: building those (reading the
   * system's CA store, a secure context of a few hundred roots) costs ~0.1 s of CPU for nothing.
   */
  async #agent(host: string, protocol: string): Promise<Dispatcher> {
    if (this.#closed) throw new NetworkError('the registry client is closed', { code: 'CLIENT_CLOSED' });
    const key = `${protocol}//${host}`;
    let p = this.#agents.get(key);
    if (p === undefined) {
      const { timeoutMs } = this.#opts.limits;
      // Body stalls and trickles are watched per request (undici-watch.ts); undici's own body timer would race that.
      const agentOptions = { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000, headersTimeout: timeoutMs, bodyTimeout: 0 };
      const route = this.#route(protocol, host);
      p =
        route !== undefined
          ? this.#proxied(route, host, protocol, agentOptions)
          : protocol === 'http:'
          ? Promise.resolve(new Agent({ connect: watchedConnector({}, timeoutMs), ...agentOptions }))
          : this.#tlsFor(host).then((tls) => new Agent({ connect: watchedConnector({ ...tls }, timeoutMs), ...agentOptions }));
      this.#agents.set(key, p);
      p.catch(() => this.#agents.delete(key));
    }
    return await p;
  }

  async #proxied(route: ProxyRoute, host: string, protocol: string, poolOptions: Record<string, unknown>): Promise<Dispatcher> {
    const [targetTls, proxyTls] = await Promise.all([
      protocol === 'https:' ? this.#tlsFor(host) : undefined,
      route.url.protocol === 'https:' ? this.#tlsFor(route.url.host) : undefined,
    ]);
    return proxyDispatcher({ route, targetTls, proxyTls, timeoutMs: this.#opts.limits.timeoutMs, poolOptions });
  }

  #limit(registry: string): Limiter {
    const host = apiHost(registry);
    let s = this.#limits.get(host);
    if (s === undefined) {
      s = new Limiter(this.#opts.concurrency);
      this.#limits.set(host, s);
    }
    return s;
  }

  /**
   * Send one request: retried on transient failures while the body can be replayed, answered
   * once on 401, redirects followed for GET/HEAD. Every HTTP status is returned to the caller
   * (who knows what it means); only failures below HTTP throw. The slot is held until headers
   * arrive: body streaming does not count, so a download piped into an upload to the same host
   * cannot starve itself.
   */
  async send(req: SendRequest): Promise<SendResponse> {
    const release = req.continuation ? () => {} : await this.#limit(req.registry).acquire(req.signal);
    try {
      return await this.#sendWithRetries(req);
    } finally {
      release();
    }
  }

  /**
   * A GET whose successful body the caller pumps (blob downloads). The registry's direct 200/206
   * answer comes through the lean client (src/registry/lean-http.ts: half the CPU per byte); every
   * other case goes through send()'s rules as usual: a 401 (credentials obtained there are then
   * used by the next lean request), redirects to storage (the registry is then left to undici for
   * good), error statuses, and any failure to connect or to parse, which send() retries and explains.
   */
  async getForPump(req: SendRequest): Promise<{ lean: LeanResponse } | { res: SendResponse }> {
    const release = req.continuation ? () => {} : await this.#limit(req.registry).acquire(req.signal);
    try {
      let lean: LeanResponse | undefined;
      try {
        lean = await this.#tryLean(req);
      } catch (e) {
        // A host that stalls the lean client stalls undici too: that was the first attempt.
        if (!(e instanceof TransferStallError)) throw e;
        const host = apiHost(req.registry);
        if (this.#opts.retries === 0) throw networkErrorFor(e, host, req.what);
        const wait = backoffDelay(0, this.#opts.retryBaseDelayMs);
        this.warn('REGISTRY_RETRY', `${e.message} ${whileDoing(req.what)}; ${retryingNote(1, this.#opts.retries, wait)}`);
        await sleepWithSignal(wait, req.signal);
        return { res: await this.#sendWithRetries(req, 1) };
      }
      if (lean !== undefined) return { lean };
      return { res: await this.#sendWithRetries(req) };
    } finally {
      release();
    }
  }

  /** Pass a warning (a retry, a resumed download) to the client's owner. */
  warn(code: string, message: string): void {
    this.#opts.onWarning?.({ code, message });
  }

  async #tryLean(req: SendRequest): Promise<LeanResponse | undefined> {
    if (this.#closed || this.#leanOff.has(req.registry) || req.method !== 'GET' || req.body !== undefined || req.url !== undefined) return undefined;
    const { signal } = req;
    let origin: string;
    try {
      origin = await this.origin(req.registry, signal);
    } catch (e) {
      if (e instanceof TransferStallError) throw e;
      return undefined;
    }
    const url = new URL(req.path ?? '/v2/', origin);
    if (this.#route(url.protocol, url.host) !== undefined) return undefined;
    this.#leanHttp ??= new LeanHttp({ tls: (host) => this.#tlsFor(host), limits: this.#opts.limits });
    for (let answered = false; ; answered = true) {
      const authorization = this.#auth?.provider.cached(req.registry, req.scopes);
      // send() refuses this with an explanation.
      if (authorization?.toLowerCase().startsWith('basic ') && url.protocol === 'http:' && !isLoopbackHost(url.host)) return undefined;
      const headers: Record<string, string> = { 'user-agent': this.#opts.userAgent, ...req.headers };
      if (authorization !== undefined) headers.authorization = authorization;
      let res: LeanResponse;
      try {
        res = await this.#leanHttp.get(url, headers, signal);
      } catch (e) {
        if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
        if (isAirlockError(e) || e instanceof TransferStallError) throw e;
        return undefined;
      }
      if (res.status === 200 || res.status === 206) return res;
      res.discard();
      if (REDIRECTS.has(res.status)) this.#leanOff.add(req.registry);
      // The first blob of a repository: get the token here (once), then ask again.
      if (res.status !== 401 || answered || this.#auth === undefined) return undefined;
      const challenges = this.#challenges(res.headers);
      if (challenges.length === 0) return undefined;
      try {
        await this.#auth.provider.authorize(req.registry, challenges, req.scopes, signal);
      } catch {
        // send() meets the same refusal and explains it.
        if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
        return undefined;
      }
    }
  }

  /** The challenges of a 401's WWW-Authenticate header(s); none without auth hooks. */
  #challenges(headers: Headers): AuthChallenge[] {
    const raw = headers['www-authenticate'];
    if (this.#auth === undefined || raw === undefined) return [];
    return (Array.isArray(raw) ? raw : [raw]).flatMap((h) => this.#auth!.parseChallenges(h));
  }

  /** One secure context per host, shared by undici's pool and the lean client (building one costs ~0.1 s). */
  #tlsFor(host: string): Promise<LeanTls> {
    let p = this.#tls.get(host);
    if (p === undefined) {
      p = connectOptionsFor(host, this.#opts);
      this.#tls.set(host, p);
      p.catch(() => this.#tls.delete(host));
    }
    return p;
  }

  /** A failed attempt that will be retried: the warning says what happened and what comes next. */
  #warnRetry(what: string, host: string, failure: unknown, retry: number, waitMs: number): void {
    let reason: string;
    if (typeof failure === 'number') reason = `${host} answered ${[failure, STATUS_CODES[failure]].filter(Boolean).join(' ')} ${whileDoing(what)}`;
    else if (failure instanceof TransferStallError) reason = `${failure.message} ${whileDoing(what)}`;
    else reason = proxyAwareNetworkError(failure, host, what).message;
    this.warn('REGISTRY_RETRY', `${reason}; ${retryingNote(retry, this.#opts.retries, waitMs)}`);
  }

  async #sendWithRetries(req: SendRequest, firstAttempt = 0): Promise<SendResponse> {
    const { signal } = req;
    const replayable = !isStream(req.body);
    const host = apiHost(req.registry);
    let authorization = this.#auth?.provider.cached(req.registry, req.scopes);
    let answered: AuthChallenge[] | undefined;
    let attempt = firstAttempt;
    for (;;) {
      if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
      let res: SendResponse;
      let registryOrigin: string;
      try {
        registryOrigin = await this.origin(req.registry, signal);
        const url = req.url ?? new URL(req.path ?? '/v2/', registryOrigin);
        res = await this.#exchange(req, url, registryOrigin, authorization);
      } catch (e) {
        if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
        if (isAirlockError(e)) throw e;
        if (replayable && isRetryableError(e) && attempt < this.#opts.retries) {
          const wait = backoffDelay(attempt, this.#opts.retryBaseDelayMs);
          this.#warnRetry(req.what, host, e, attempt + 1, wait);
          await sleepWithSignal(wait, signal);
          attempt++;
          continue;
        }
        if (!replayable && isRetryableError(e)) {
          const why = e instanceof TransferStallError ? e.message : `the connection to ${host} failed while sending it`;
          throw new NetworkError(`cannot ${req.what}: ${why}, and a streamed body cannot be replayed`, {
            code: 'STREAM_NOT_REPLAYABLE',
            cause: e,
            hint: 'retry the operation; the copy starts this blob again from its source',
          });
        }
        throw proxyAwareNetworkError(e, host, req.what, attempt + 1);
      }
      res.attempts = attempt + 1;

      if (answered !== undefined && (res.status === 401 || res.status === 403) && this.#auth?.provider.rejectionError) {
        await res.body.dump();
        throw this.#auth.provider.rejectionError(req.registry, answered, req.scopes);
      }
      if (res.status === 401 && answered === undefined && this.#auth !== undefined && res.url.origin === registryOrigin) {
        const challenges = this.#challenges(res.headers);
        if (challenges.length > 0) {
          await res.body.dump();
          if (!replayable) {
            throw new NetworkError(`cannot ${req.what}: ${req.registry} asked for credentials after the upload had started`, {
              code: 'STREAM_NOT_REPLAYABLE',
              hint: 'retry the operation; the credentials obtained now will be used from the start',
            });
          }
          authorization = await this.#auth.provider.authorize(req.registry, challenges, req.scopes, signal);
          answered = challenges;
          continue;
        }
      }

      if (isRetryableStatus(res.status) && attempt < this.#opts.retries && replayable) {
        const wait = parseRetryAfter(header(res.headers, 'retry-after')) ?? backoffDelay(attempt, this.#opts.retryBaseDelayMs);
        await res.body.dump().catch(ignore);
        this.#warnRetry(req.what, host, res.status, attempt + 1, wait);
        await sleepWithSignal(wait, signal);
        attempt++;
        continue;
      }
      if (req.readBody !== undefined && res.status >= 200 && res.status < 300) {
        try {
          res.bytes = await req.readBody(res);
        } catch (e) {
          if (!res.body.destroyed) res.body.destroy();
          if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
          if (isAirlockError(e)) throw e;
          if (isRetryableError(e) && attempt < this.#opts.retries) {
            const wait = backoffDelay(attempt, this.#opts.retryBaseDelayMs);
            this.#warnRetry(req.what, res.url.host, e, attempt + 1, wait);
            await sleepWithSignal(wait, signal);
            attempt++;
            continue;
          }
          throw networkErrorFor(e, res.url.host, req.what, attempt + 1);
        }
      }
      return res;
    }
  }

  async #exchange(req: SendRequest, start: URL, registryOrigin: string, authorization: string | undefined): Promise<SendResponse> {
    const follow = (req.method === 'GET' || req.method === 'HEAD') && req.followRedirects !== false;
    const { limits } = this.#opts;
    let url = start;
    for (let hops = 0; ; hops++) {
      const headers: Record<string, string> = { 'user-agent': this.#opts.userAgent, ...req.headers };
      // Credentials go only to the registry itself, never to a storage backend it redirects to.
      if (authorization !== undefined && url.origin === registryOrigin) {
        if (authorization.toLowerCase().startsWith('basic ') && url.protocol === 'http:' && !isLoopbackHost(url.host)) {
          throw new AuthError(`refusing to send a password to ${url.host} over plain HTTP`, {
            code: 'INSECURE_BASIC_AUTH',
            hint: `serve ${url.host} over HTTPS (with a CA file for a private CA), or use a token-based login`,
          });
        }
        headers.authorization = authorization;
      }
      if (url.protocol === 'http:' && !plainHttpAllowed(url.host, this.#opts.insecure)) {
        throw new NetworkError(`cannot ${req.what}: ${req.registry} redirected to plain HTTP at ${url.host}`, {
          code: 'PLAIN_HTTP_REDIRECT',
          hint: `if ${url.host} is a trusted storage backend, mark ${url.host} insecure`,
        });
      }
      // A streamed upload is watched while it goes out (the registry taking too little, or
      // nothing); after its last byte the registry gets longer to answer (COMMIT_WAIT_FACTOR).
      let body = req.body;
      let signal = req.signal;
      let upload: UploadProgress | undefined;
      if (isStream(req.body)) {
        const cut = new AbortController();
        const progress: UploadProgress = { bytes: 0, sent: false };
        upload = progress;
        body = new WatchedUpload(req.body, limits, url.host, progress, (e) => cut.abort(e));
        signal = signal === undefined ? cut.signal : AbortSignal.any([signal, cut.signal]);
      }
      const headersTimeout = upload === undefined ? limits.timeoutMs : limits.timeoutMs * COMMIT_WAIT_FACTOR;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          dispatcher: await this.#agent(url.host, url.protocol),
          method: req.method,
          headers,
          body: body ?? null,
          signal,
          headersTimeout,
          watch: { limits, host: url.host },
        });
      } catch (e) {
        if (errorCode(e) !== 'UND_ERR_HEADERS_TIMEOUT') throw this.#failed(e, url, req.what);
        throw upload?.sent === true
          ? new TransferStallError('NO_RESPONSE_HEADERS', `${url.host} took the whole upload but sent no response headers within ${formatDuration(headersTimeout)}`)
          : noHeadersError(url.host, headersTimeout);
      }
      // Consumers read bodies through iterators that see errors anyway; without a listener, a body
      // destroyed early (undici then emits RequestAbortedError) would crash the process.
      res.body.on('error', ignore);
      const location = header(res.headers, 'location');
      if (follow && REDIRECTS.has(res.statusCode) && location !== undefined) {
        await res.body.dump();
        if (hops >= MAX_REDIRECTS) {
          throw new NetworkError(`cannot ${req.what}: more than ${MAX_REDIRECTS} redirects`, { code: 'TOO_MANY_REDIRECTS' });
        }
        url = new URL(location, url);
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url, attempts: 1 };
    }
  }

  /**
   * Requests of the authenticator (token endpoints), with this client's TLS settings. Not
   * counted against the registry's slots: they run while a registry request holds one.
   */
  readonly authRequest = async (
    url: string,
    init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; signal?: AbortSignal },
  ): Promise<{ status: number; headers: Headers; body: string; attempts: number }> => {
    let target = new URL(url);
    const headers = { ...init.headers };
    const sendsSecret =
      init.body !== undefined || Object.entries(init.headers).some(([k, v]) => k.toLowerCase() === 'authorization' && v !== '');
    for (let attempt = 0, hops = 0; ; ) {
      if (target.protocol !== 'https:' && target.protocol !== 'http:') {
        throw new AuthError(`token endpoint ${target.protocol}//${target.host} is not an HTTP(S) URL`, { code: 'AUTH_REALM_INVALID' });
      }
      if (target.protocol === 'http:' && sendsSecret && !isLoopbackHost(target.host)) {
        throw new AuthError(`refusing to send credentials to the token endpoint ${target.host} over plain HTTP`, {
          code: 'INSECURE_BASIC_AUTH',
          hint: 'the registry must announce an https:// realm for credentials to be sent',
        });
      }
      const what = `get a token from ${target.host}`;
      try {
        const res = await request(target, {
          dispatcher: await this.#agent(target.host, target.protocol),
          method: init.method,
          headers: { 'user-agent': this.#opts.userAgent, ...headers },
          body: init.body ?? null,
          signal: init.signal,
          watch: { limits: this.#opts.limits, host: target.host },
        }).catch((e: unknown) => {
          throw errorCode(e) === 'UND_ERR_HEADERS_TIMEOUT' ? noHeadersError(target.host, this.#opts.limits.timeoutMs) : this.#failed(e, target, what);
        });
        res.body.on('error', ignore);
        const location = header(res.headers, 'location');
        if (init.method === 'GET' && REDIRECTS.has(res.statusCode) && location !== undefined && hops < MAX_REDIRECTS) {
          await res.body.dump();
          const next = new URL(location, target);
          if (next.origin !== target.origin) {
            for (const k of Object.keys(headers)) if (k.toLowerCase() === 'authorization') delete headers[k];
          }
          target = next;
          hops++;
          continue;
        }
        if (isRetryableStatus(res.statusCode) && attempt < this.#opts.retries) {
          const wait = parseRetryAfter(header(res.headers, 'retry-after')) ?? backoffDelay(attempt, this.#opts.retryBaseDelayMs);
          await res.body.dump().catch(ignore);
          this.#warnRetry(what, target.host, res.statusCode, attempt + 1, wait);
          await sleepWithSignal(wait, init.signal);
          attempt++;
          continue;
        }
        const chunks: Buffer[] = [];
        let total = 0;
        for await (const c of res.body) {
          total += (c as Buffer).length;
          if (total > AUTH_BODY_LIMIT) {
            res.body.destroy();
            throw new AuthError(`token endpoint ${target.host} answered with more than ${AUTH_BODY_LIMIT} bytes`, { code: 'AUTH_RESPONSE_INVALID' });
          }
          chunks.push(c as Buffer);
        }
        return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), attempts: attempt + 1 };
      } catch (e) {
        if (init.signal?.aborted) throw new AbortedError('interrupted', { cause: init.signal.reason });
        if (isAirlockError(e)) throw e;
        if (isRetryableError(e) && attempt < this.#opts.retries) {
          const wait = backoffDelay(attempt, this.#opts.retryBaseDelayMs);
          this.#warnRetry(what, target.host, e, attempt + 1, wait);
          await sleepWithSignal(wait, init.signal);
          attempt++;
          continue;
        }
        throw proxyAwareNetworkError(e, target.host, what, attempt + 1);
      }
    }
  };

  async close(): Promise<void> {
    this.#closed = true;
    this.#leanHttp?.close();
    const agents = await Promise.allSettled([...this.#agents.values()]);
    this.#agents.clear();
    await Promise.all(
      agents.map(async (r) => {
        if (r.status !== 'fulfilled') return;
        // A stream the caller never drained would keep close() waiting forever: give it a moment, then cut it.
        const closed = r.value.close().then(() => true);
        const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1000).unref());
        if (!(await Promise.race([closed, timedOut]))) await r.value.destroy();
      }),
    );
  }
}

let probeContext: SecureContext | undefined;

/**
 * Does `host` speak TLS? One bare handshake, certificates not even parsed (no CA list: the answer
 * is only "TLS or plain HTTP"; every real request then verifies with the host's own settings).
 * 'https' when the handshake completes, 'http' when the server answered in plain HTTP, undefined
 * for anything else (refused, reset, a TLS alert): the caller then probes the usual way, which
 * reports those failures as before. Silence for `timeoutMs` rejects with a TransferStallError
 * saying whether the host accepted the connection: probing again would only wait as long again.
 */
function handshakeProbe(host: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<'https' | 'http' | undefined> {
  const url = new URL(`https://${host}`);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  probeContext ??= createSecureContext({ ca: [] });
  return new Promise((resolve, reject) => {
    let settled = false;
    let accepted = false;
    const done = (answer: 'https' | 'http' | undefined, error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (error) reject(error);
      else resolve(answer);
    };
    const onAbort = (): void => done(undefined);
    const socket = tlsConnect({
      host: hostname,
      port: Number(url.port || 443),
      secureContext: probeContext,
      rejectUnauthorized: false,
      ...(/^[\d.]+$|:/.test(hostname) ? {} : { servername: hostname }),
    });
    socket.once('connect', () => {
      accepted = true;
    });
    socket.once('secureConnect', () => done('https'));
    socket.once('error', (e) => done(isPlainHttpAnswer(e) ? 'http' : undefined));
    socket.once('close', () => done(undefined));
    // Neither a handshake nor an HTTP answer to it: whatever the protocol, no response headers came.
    const timer = setTimeout(() => done(undefined, accepted ? noHeadersError(host, timeoutMs) : connectTimeoutError(host, timeoutMs)), timeoutMs);
    timer.unref();
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
