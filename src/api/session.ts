// One Session per piece of work (a CLI command builds one from its flags): the registry client and
// the chart repository client with their TLS settings and credentials, the defaults (cache, certs.d,
// concurrency) and where events go. Verbs that talk to registries take one, or build and close their
// own; close a session you build (`await using session = createSession()` does).
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { RegistryClient } from '../registry/client.ts';
import { ChartHttpClient } from '../helm/http-client.ts';
import { loadCredentialStore, type CredentialStore } from '../registry/auth/index.ts';
import type { Reference } from '../core/reference.ts';
import type { RemoteRepository } from '../registry/repository.ts';
import { checkConcurrency, DEFAULT_CERTS_DIRS, defaultCacheDir } from './defaults.ts';
import { transferLimits, type TransferLimits } from '../registry/transfer-limits.ts';
import { chunkSizeOption } from '../registry/transfer-chunks.ts';
import type { AirlockEvent } from './events.ts';

export interface SessionOptions {
  /** pack's blob cache. Default: $AIRLOCK_CACHE, else $XDG_CACHE_HOME/airlock, else ~/.cache/airlock. */
  cacheDir?: string | undefined;
  /** A CA bundle (PEM) trusted for every registry and chart repository, on top of the system's. */
  caFile?: string | undefined;
  /**
   * certs.d-style directories: DIR/HOST[:PORT]/*.crt are CAs, client.cert + client.key a client
   * certificate. Default: /etc/containers/certs.d and /etc/docker/certs.d.
   */
  certsDirs?: readonly string[] | undefined;
  /** HOST[:PORT] of registries where plain HTTP and unverified TLS are allowed (loopback always is). */
  insecure?: readonly string[] | undefined;
  /** Transfers in flight at once, 1 to 64 (default 8). */
  concurrency?: number | undefined;
  /**
   * How long a registry connect, a wait for response headers, or a transfer may go without a byte
   * before it is cut and retried (a download resumes where it stopped): milliseconds, or a
   * duration such as `30s` (default 30 s).
   */
  timeout?: number | string | undefined;
  /**
   * The slowest a registry transfer may be, averaged over the timeout: bytes per second, or a rate
   * such as `10KiB/s`; slower ones are cut and retried. 0 turns it off (default 1 KiB/s).
   */
  minRate?: number | string | undefined;
  /**
   * Upload blobs larger than this in chunks of this size (bytes, or e.g. `8MiB`), for registries or
   * proxies that limit request bodies. Default: one request per blob; a registry that answers 413
   * gets chunks from then on.
   */
  chunkSize?: number | string | undefined;
  /**
   * Where credentials come from. Default: ~/.docker/config.json (auths, credHelpers, credsStore),
   * $DOCKER_CONFIG, $REGISTRY_AUTH_FILE and containers auth.json, as docker, podman and skopeo read them.
   */
  credentials?: CredentialStore | undefined;
  /** Where the events of every verb run with this session go (a verb's own `onEvent` wins). */
  onEvent?: ((event: AirlockEvent) => void) | undefined;
}

export class Session implements AsyncDisposable {
  /** The blob cache (absolute). */
  readonly cacheDir: string;
  readonly certsDirs: readonly string[];
  readonly concurrency: number;
  /** The registry timeout and minimum rate, checked. */
  readonly transferLimits: TransferLimits;
  readonly onEvent: ((event: AirlockEvent) => void) | undefined;
  readonly #options: SessionOptions;
  readonly #credentials: CredentialStore;
  readonly #chunkSize: number | undefined;
  #registry: RegistryClient | undefined;
  #chartHttp: ChartHttpClient | undefined;
  #closed = false;

  constructor(options: SessionOptions = {}) {
    this.#options = options;
    this.concurrency = checkConcurrency(options.concurrency);
    this.transferLimits = transferLimits(options.timeout, options.minRate);
    this.#chunkSize = chunkSizeOption(options.chunkSize);
    this.cacheDir = resolve(options.cacheDir ?? defaultCacheDir());
    this.certsDirs = [...(options.certsDirs ?? DEFAULT_CERTS_DIRS)];
    this.onEvent = options.onEvent;
    this.#credentials = options.credentials ?? loadCredentialStore();
  }

  /** @internal The registry client (made on first use; one for the whole session). */
  get registry(): RegistryClient {
    this.#check();
    return (this.#registry ??= new RegistryClient({
      caFile: this.#options.caFile,
      certsDirs: [...this.certsDirs],
      insecure: [...(this.#options.insecure ?? [])],
      concurrency: this.concurrency,
      credentials: this.#credentials,
      timeoutMs: this.transferLimits.timeoutMs,
      minRate: this.transferLimits.minRate,
      chunkSize: this.#chunkSize,
      // Retries and resumed downloads: the work goes on, the user sees why it is slow.
      onWarning: (w) => this.onEvent?.({ type: 'warning', ...w }),
    }));
  }

  /** @internal The client for chart repositories (https:// index.yaml and archives), same TLS settings. */
  get chartHttp(): ChartHttpClient {
    this.#check();
    return (this.#chartHttp ??= new ChartHttpClient({
      caFile: this.#options.caFile,
      certsDirs: [...this.certsDirs],
      insecure: [...(this.#options.insecure ?? [])],
      credentials: this.#credentials,
    }));
  }

  /** @internal One repository of a registry. */
  repository(ref: Pick<Reference, 'registry' | 'repository'>): RemoteRepository {
    return this.registry.repository(ref);
  }

  /** Close every connection. Idempotent; the session cannot be used afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    const closing = [this.#registry?.close(), this.#chartHttp?.close()];
    this.#registry = undefined;
    this.#chartHttp = undefined;
    await Promise.all(closing);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #check(): void {
    if (this.#closed) throw new UsageError('this airlock session is closed', { code: 'SESSION_CLOSED', hint: 'make a new one with createSession()' });
  }
}

/** A session with the given settings; every one left out takes its default. */
export function createSession(options: SessionOptions = {}): Session {
  return new Session(options);
}

/**
 * Run `work` with the caller's session, or with one built for it (and closed after it) when the
 * caller gave none.
 */
export async function withSession<T>(given: Session | undefined, work: (session: Session) => Promise<T>): Promise<T> {
  if (given) return await work(given);
  const session = new Session();
  try {
    return await work(session);
  } finally {
    await session.close();
  }
}
