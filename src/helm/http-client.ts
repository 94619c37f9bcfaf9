// HTTP(S) for Helm chart repositories (index.yaml and .tgz downloads), with the registries' rules:
// the same CA settings (--ca-file, certs.d, --insecure), plain HTTP only to this machine or hosts
// marked insecure, Basic credentials from the docker/containers credential store when the server
// asks for them, redirects followed (credentials never carried to another origin), transient
// failures retried, every body size-limited. Forward proxies from the environment (HTTPS_PROXY,
// HTTP_PROXY, NO_PROXY: src/registry/proxy.ts) as the registries use them.
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from '../registry/undici.ts';
import { proxyConfigFromEnv, proxyFor, type ProxyConfig } from '../registry/proxy.ts';
import { proxyDispatcher } from '../registry/proxy-agent.ts';
import { proxiedFailure, proxyAwareNetworkError } from '../registry/proxy-errors.ts';
import pkg from '../../package.json' with { type: 'json' };
import { AbortedError, AuthError, IntegrityError, NetworkError, NotFoundError, UsageError, isAirlockError } from '../core/errors.ts';
import { readAllLimited } from '../content/verify-stream.ts';
import { redactUrl } from '../core/redact.ts';
import { basicHeader, loadCredentialStore, type CredentialStore } from '../registry/auth/index.ts';
import { plainHttpAllowed } from '../registry/endpoint.ts';
import { backoffDelay, isRetryableError, isRetryableStatus, sleepWithSignal } from '../registry/retry.ts';
import { connectOptionsFor, type TlsSettings } from '../registry/tls.ts';

export interface ChartHttpOptions extends TlsSettings {
  /** Default: loadCredentialStore(). */
  credentials?: CredentialStore;
  /** Attempts per request on connection failures and 429/502/503/504 (default 3). */
  attempts?: number;
  retryBaseDelayMs?: number;
  userAgent?: string;
  /** Forward proxies and NO_PROXY (default: this process's environment). */
  proxy?: ProxyConfig | undefined;
}

export interface GetOptions {
  /** Names the thing in errors: "index.yaml of https://charts.example.com". */
  what: string;
  /** The most bytes the body may have. */
  limit: number;
  signal?: AbortSignal | undefined;
}

const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class ChartHttpClient {
  readonly #opts: ChartHttpOptions;
  readonly #credentials: CredentialStore;
  readonly #agents = new Map<string, Promise<Dispatcher>>();
  readonly #auth = new Map<string, Promise<string | undefined>>();
  #closed = false;
  readonly #proxy: ProxyConfig;

  constructor(opts: ChartHttpOptions = {}) {
    this.#opts = opts;
    this.#credentials = opts.credentials ?? loadCredentialStore();
    this.#proxy = opts.proxy ?? proxyConfigFromEnv();
  }

  /** The body of a GET, whole (index.yaml, a chart archive), at most `limit` bytes. */
  async get(input: string | URL, opts: GetOptions): Promise<Buffer> {
    const { res, url } = await this.#ok(input, opts);
    try {
      return await readAllLimited(res.body, opts.limit, opts.what);
    } catch (e) {
      res.body.on('error', () => {});
      res.body.destroy();
      if (opts.signal?.aborted) throw new AbortedError('interrupted', { cause: opts.signal.reason });
      if (isAirlockError(e)) throw e;
      throw proxyAwareNetworkError(e, url.host, `fetch ${opts.what}`);
    }
  }

  /**
   * The body of a GET as a stream, for what is too big to hold (a file of `files:`): the caller
   * reads it, counts it against `limit` (a declared Content-Length above it is refused here) and
   * destroys it when done early. `length` is the Content-Length, when the server sent one.
   */
  async stream(input: string | URL, opts: GetOptions): Promise<{ body: Readable; length: number | undefined; url: URL }> {
    const { res, url } = await this.#ok(input, opts);
    const length = Number(res.headers['content-length'] ?? NaN);
    return { body: res.body, length: Number.isSafeInteger(length) ? length : undefined, url };
  }

  /** A 200 answer to a GET, redirects and credentials handled; a declared length above the limit refused. */
  async #ok(input: string | URL, opts: GetOptions): Promise<{ res: Dispatcher.ResponseData; url: URL }> {
    let url = this.#check(new URL(String(input)), opts.what);
    // Credentials belong to the origin that asked for them: never sent along a redirect elsewhere.
    let auth: { origin: string; header: string } | undefined;
    let triedAuth = false;
    for (let hop = 0; ; ) {
      const res = await this.#send(url, auth?.origin === url.origin ? auth.header : undefined, opts);
      if (REDIRECTS.has(res.statusCode)) {
        await res.body.dump();
        const location = res.headers.location;
        const loc = Array.isArray(location) ? location[0] : location;
        if (!loc || ++hop > MAX_REDIRECTS) throw new NetworkError(`cannot fetch ${opts.what}: too many redirects at ${redactUrl(url)}`, { code: 'TOO_MANY_REDIRECTS' });
        url = this.#check(new URL(loc, url), opts.what);
        continue;
      }
      if (res.statusCode === 401 && !triedAuth) {
        await res.body.dump();
        triedAuth = true;
        const header = await this.#authorization(url.host);
        if (header !== undefined) {
          auth = { origin: url.origin, header };
          continue;
        }
        throw new AuthError(`cannot fetch ${opts.what}: ${url.host} asks for credentials and none are configured for it`, {
          hint: `add them with \`docker login ${url.host}\` (or to $REGISTRY_AUTH_FILE / ~/.docker/config.json)${this.#proxyNote(url)}`,
        });
      }
      if (res.statusCode === 200) {
        const length = Number(res.headers['content-length'] ?? NaN);
        if (Number.isSafeInteger(length) && length > opts.limit) {
          // undici reports a destroyed body as an 'error' event: nobody else is listening for it.
          res.body.on('error', () => {});
          res.body.destroy();
          throw new IntegrityError(`${opts.what} is ${length} bytes, more than the ${opts.limit}-byte limit`, { code: 'TOO_LARGE' });
        }
        return { res, url };
      }
      await res.body.dump();
      const at = redactUrl(url);
      if (res.statusCode === 404) throw new NotFoundError(`${opts.what} not found: ${at} answered 404`, { code: 'CHART_NOT_FOUND' });
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new AuthError(`cannot fetch ${opts.what}: ${at} refused the credentials (HTTP ${res.statusCode})`, { hint: `check the credentials stored for ${url.host}${res.statusCode === 401 ? this.#proxyNote(url) : ''}` });
      }
      throw new NetworkError(`cannot fetch ${opts.what}: ${at} answered HTTP ${res.statusCode}`, { code: 'HTTP_ERROR' });
    }
  }

  /** Some proxies (tinyproxy) answer 401 rather than 407 when their own credentials are wrong. */
  #proxyNote(url: URL): string {
    const route = proxyFor(url, this.#proxy);
    return route === undefined ? '' : `; the answer came through the proxy ${route.shown} (from ${route.variable}), which may be the one asking: check the credentials in ${route.variable}`;
  }

  #check(url: URL, what: string): URL {
    if (url.protocol === 'https:') return url;
    if (url.protocol === 'http:') {
      if (plainHttpAllowed(url.host, this.#opts.insecure)) return url;
      throw new UsageError(`refusing to fetch ${what} over plain HTTP from ${url.host}`, {
        code: 'PLAIN_HTTP_REFUSED',
        hint: `use https://, or mark ${url.host} insecure if this repository really only speaks HTTP`,
      });
    }
    throw new UsageError(`cannot fetch ${what}: unsupported URL scheme "${url.protocol}" in ${redactUrl(url)}`, { code: 'URL_INVALID', hint: 'chart repositories are https:// (or http:// on this machine); OCI charts are oci://' });
  }

  async #send(url: URL, authorization: string | undefined, opts: GetOptions): Promise<Dispatcher.ResponseData> {
    const attempts = Math.max(1, this.#opts.attempts ?? 3);
    for (let attempt = 0; ; attempt++) {
      if (opts.signal?.aborted) throw new AbortedError('interrupted', { cause: opts.signal.reason });
      try {
        const res = await request(url, {
          method: 'GET',
          dispatcher: await this.#agent(url),
          headers: { 'user-agent': this.#opts.userAgent ?? `airlock/${pkg.version}`, accept: '*/*', ...(authorization ? { authorization } : {}) },
          signal: opts.signal,
        });
        if (isRetryableStatus(res.statusCode) && attempt + 1 < attempts) {
          await res.body.dump();
          await sleepWithSignal(backoffDelay(attempt, this.#opts.retryBaseDelayMs ?? 250), opts.signal);
          continue;
        }
        return res;
      } catch (caught) {
        if (opts.signal?.aborted) throw new AbortedError('interrupted', { cause: opts.signal.reason });
        const route = proxyFor(url, this.#proxy);
        const e = route === undefined ? caught : proxiedFailure(caught, route, url.host, `fetch ${opts.what}`);
        if (isAirlockError(e)) throw e;
        if (isRetryableError(e) && attempt + 1 < attempts) {
          await sleepWithSignal(backoffDelay(attempt, this.#opts.retryBaseDelayMs ?? 250), opts.signal);
          continue;
        }
        throw proxyAwareNetworkError(e, url.host, `fetch ${opts.what}`);
      }
    }
  }

  async #agent(url: URL): Promise<Dispatcher> {
    if (this.#closed) throw new NetworkError('the chart repository client is closed', { code: 'CLIENT_CLOSED' });
    const key = `${url.protocol}//${url.host}`;
    let p = this.#agents.get(key);
    if (p === undefined) {
      const route = proxyFor(url, this.#proxy);
      p =
        route !== undefined
          ? Promise.all([
              url.protocol === 'https:' ? connectOptionsFor(url.host, this.#opts) : undefined,
              route.url.protocol === 'https:' ? connectOptionsFor(route.url.host, this.#opts) : undefined,
            ]).then(([targetTls, proxyTls]) => proxyDispatcher({ route, targetTls, proxyTls, timeoutMs: 30_000, poolOptions: { keepAliveTimeout: 10_000 } }))
          : url.protocol === 'https:'
          ? connectOptionsFor(url.host, this.#opts).then((tls) => new Agent({ connect: { ...tls, timeout: 30_000 }, keepAliveTimeout: 10_000 }))
          : Promise.resolve(new Agent({ connect: { timeout: 30_000 }, keepAliveTimeout: 10_000 }));
      this.#agents.set(key, p);
      p.catch(() => this.#agents.delete(key));
    }
    return await p;
  }

  async #authorization(host: string): Promise<string | undefined> {
    let p = this.#auth.get(host);
    if (p === undefined) {
      p = this.#credentials.get(host).then((c) => (c?.username !== undefined && c.password !== undefined ? basicHeader(c.username, c.password) : undefined));
      this.#auth.set(host, p);
    }
    return await p;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const agents = await Promise.allSettled([...this.#agents.values()]);
    this.#agents.clear();
    await Promise.all(agents.map((a) => (a.status === 'fulfilled' ? a.value.close() : undefined)));
  }
}
