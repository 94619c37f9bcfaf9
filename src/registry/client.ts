// The OCI distribution client: one RegistryClient per run holds the connections, TLS settings,
// per-host limits and auth cache; repositories are cheap views onto it.
import pkg from '../../package.json' with { type: 'json' };
import { UsageError } from '../core/errors.ts';
import { isValidRegistry, isValidRepository } from '../core/reference.ts';
import { Authenticator, loadCredentialStore, parseWwwAuthenticate, type CredentialStore } from './auth/index.ts';
import { RemoteRepository } from './repository.ts';
import { Transport } from './transport.ts';

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
  /** Retries of one request on 429/502/503/504 and connection failures (default 4). */
  retries?: number;
  /** Default `airlock/<version>`. */
  userAgent?: string;
  /** First backoff step in ms, doubled per retry with jitter (default 250). Tests make it small. */
  retryBaseDelayMs?: number;
}

function positiveInt(value: number | undefined, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`${name} must be an integer of at least ${min}, got ${value}`);
  return value;
}

export class RegistryClient {
  readonly #transport: Transport;

  constructor(opts: RegistryOptions = {}) {
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
    return new RemoteRepository(this.#transport, name);
  }

  /** Close every connection pool. Streams still open are cut after a second. */
  async close(): Promise<void> {
    await this.#transport.close();
  }
}
