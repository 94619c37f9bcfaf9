// The OCI distribution client: one RegistryClient per run holds the connections, TLS settings,
// per-host limits and auth cache; repositories are cheap views onto it.
import pkg from '../../package.json' with { type: 'json' };
import { AuthError, NetworkError, UsageError } from '../core/errors.ts';
import { isValidRegistry, isValidRepository } from '../core/reference.ts';
import { Authenticator, loadCredentialStore, parseWwwAuthenticate, type CredentialStore } from './auth/index.ts';
import { RemoteRepository } from './repository.ts';
import { Transport } from './transport.ts';
import { ChunkPolicy, chunkSizeOption } from './transfer-chunks.ts';
import type { ProxyConfig } from './proxy.ts';
import { checkMinRate, checkTimeout, DEFAULT_MIN_RATE, DEFAULT_TIMEOUT_MS } from './transfer-limits.ts';

export { RemoteRepository } from './repository.ts';

export interface RegistryOptions {
  /** Extra CA bundle (PEM) trusted for every registry, on top of the system's. */
  caFile?: string;
  /** certs.d-style dirs: <dir>/<host[:port]>/*.crt = CAs, <name>.cert + <name>.key = client certificate. */
  certsDirs?: string[];
  /** Registries (host[:port], or host for every port) where plain HTTP is allowed and TLS is not verified. */
  insecure?: string[];
  /** Default: loadCredentialStore() (docker config, containers auth.json, credential helpers). */
  credentials?: CredentialStore;
  /** Max requests in flight per registry host, shared by all its repositories (default 8). */
  concurrency?: number;
  /**
   * Retries of one request on 429/500/502/503/504, connection failures and cut transfers (default
   * 4). A download cut mid-body resumes from the byte reached instead (up to MAX_RESUMES times).
   */
  retries?: number;
  /**
   * Milliseconds a connect, a wait for response headers, or a transfer may go without a byte
   * before it is cut and retried (default 30 000); a download resumes with a Range request. After
   * a streamed upload's last byte the registry gets ten times this to answer.
   */
  timeoutMs?: number;
  /**
   * Bytes per second a transfer must average over a `timeoutMs` window, else it is cut and retried
   * (default 1024; 0 turns it off). Time this side holds a transfer back does not count.
   */
  minRate?: number;
  /**
   * Upload blobs larger than this in chunks of this many bytes (PATCH with Content-Range), for
   * registries or proxies that limit request bodies: bytes, or a size such as `8MiB`. Default: one
   * request per blob, and chunks (halved on every further 413) for a registry that answers 413.
   */
  chunkSize?: number | string | undefined;
  /** Told about every retry and resumed download (what failed, what happens next). */
  onWarning?: ((warning: { code: string; message: string }) => void) | undefined;
  /** Default `airlock/<version>`. */
  userAgent?: string;
  /** First backoff step in ms, doubled per retry with jitter (default 250). Tests make it small. */
  retryBaseDelayMs?: number;
  /** Forward proxies and NO_PROXY (default: from the environment, src/registry/proxy.ts). */
  proxy?: ProxyConfig | undefined;
}

function positiveInt(value: number | undefined, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`${name} must be an integer of at least ${min}, got ${value}`);
  return value;
}

export class RegistryClient {
  readonly #transport: Transport;
  readonly #chunks: ChunkPolicy;

  constructor(opts: RegistryOptions = {}) {
    this.#chunks = new ChunkPolicy(chunkSizeOption(opts.chunkSize));
    const credentials = opts.credentials ?? loadCredentialStore();
    let transport: Transport | undefined;
    const authenticator = new Authenticator({
      credentials,
      // the transport exists by the time the first challenge is answered
      request: (url, init) => transport!.authRequest(url, init),
    });
    transport = new Transport(
      {
        caFile: opts.caFile,
        certsDirs: opts.certsDirs ?? [],
        insecure: opts.insecure ?? [],
        concurrency: positiveInt(opts.concurrency, 8, 'concurrency', 1),
        retries: positiveInt(opts.retries, 4, 'retries', 0),
        retryBaseDelayMs: positiveInt(opts.retryBaseDelayMs, 250, 'retryBaseDelayMs', 0),
        userAgent: opts.userAgent ?? `airlock/${pkg.version}`,
        limits: {
          timeoutMs: opts.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkTimeout(opts.timeoutMs, 'timeoutMs'),
          minRate: opts.minRate === undefined ? DEFAULT_MIN_RATE : checkMinRate(opts.minRate, 'minRate'),
        },
        onWarning: opts.onWarning,
        proxy: opts.proxy,
      },
      { provider: authenticator, parseChallenges: parseWwwAuthenticate },
    );
    this.#transport = transport;
  }

  /** A view onto one repository; every repository of a client shares its connections and limits. */
  repository(name: { registry: string; repository: string }): RemoteRepository {
    if (!isValidRegistry(name.registry)) {
      throw new UsageError(`invalid registry "${name.registry}": expected host[:port]`, { code: 'REFERENCE_INVALID' });
    }
    if (!isValidRepository(name.repository)) {
      throw new UsageError(`invalid repository "${name.repository}" on ${name.registry}: lowercase path components joined by /`, {
        code: 'REFERENCE_INVALID',
      });
    }
    return new RemoteRepository(this.#transport, name, this.#chunks);
  }

  /**
   * `GET /v2/` of `registry`, answering its challenge with this client's credentials, as `docker
   * login` checks a password: credentials the registry (or its token server) refuses are an
   * AuthError here rather than at the first pull or push. Resolves when the registry accepts.
   */
  async ping(registry: string, signal?: AbortSignal): Promise<void> {
    if (!isValidRegistry(registry)) throw new UsageError(`invalid registry "${registry}": expected host[:port]`, { code: 'REFERENCE_INVALID' });
    const res = await this.#transport.send({ registry, method: 'GET', path: '/v2/', scopes: [], signal, what: `log in to ${registry}` });
    await res.body.dump().catch(() => {});
    if (res.status >= 200 && res.status < 300) return;
    if (res.status === 401 || res.status === 403) {
      throw new AuthError(`${registry} refused the login (HTTP ${res.status})`, { code: 'CREDENTIALS_REJECTED', hint: 'check the user name and password' });
    }
    throw new NetworkError(`${registry} answered HTTP ${res.status} to GET /v2/: not a registry API there`, {
      code: 'HTTP_ERROR',
      hint: 'name the registry host[:port] that serves /v2/',
    });
  }

  /** Close every connection pool. Streams still open are cut after a second. */
  async close(): Promise<void> {
    await this.#transport.close();
  }
}
