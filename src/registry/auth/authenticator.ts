// Answers a registry's 401 challenge and remembers the answer, so that later requests carry the
// header up front instead of paying a 401 round trip each.
//
// Contract with the client: send `cached(registry, scopes)` when it returns a value; on a 401 call
// `authorize(...)` with the parsed challenges and retry once with what it returns; if the retry is
// answered 401/403 again, throw `rejectionError(...)` (it explains which credential failed and drops
// the cached header).
import { AuthError, throwIfAborted } from '../../core/errors.ts';
import type { Challenge } from './challenge.ts';
import type { Credential, CredentialStore } from './credential.ts';
import { canonicalRegistry } from './registry-keys.ts';
import { normalizeScopes } from './scopes.ts';
import { basicHeader, fetchToken, type AuthRequest } from './token.ts';

export interface AuthenticatorOptions {
  credentials: CredentialStore;
  request: AuthRequest;
  /** Clock in ms (tests move it to expire tokens). Default Date.now. */
  now?: () => number;
  /** client_id sent with OAuth2 token requests. */
  clientId?: string;
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

/** What was last handed out for a registry: lets a rejection say whose credentials failed. */
interface Used {
  scheme: 'basic' | 'bearer';
  who: string;
  anonymous: boolean;
}

/** Refresh this long before a token's stated end (at most a quarter of its life), for clock skew and slow requests. */
const EXPIRY_MARGIN_MS = 30_000;

const tokenKey = (registry: string, scopes: string[]) => `${registry}\n${scopes.join(' ')}`;

export class Authenticator {
  readonly #credentials: CredentialStore;
  readonly #request: AuthRequest;
  readonly #now: () => number;
  readonly #clientId: string;
  /** registry → Basic header (valid for every scope). */
  readonly #basic = new Map<string, string>();
  /** registry + normalized scopes → bearer header. */
  readonly #tokens = new Map<string, CachedToken>();
  /** Concurrent 401s for the same access share one token request. */
  readonly #inflight = new Map<string, Promise<string>>();
  /** A credential lookup may run a helper program: once per registry per Authenticator. */
  readonly #creds = new Map<string, Promise<Credential | undefined>>();
  readonly #used = new Map<string, Used>();

  constructor(opts: AuthenticatorOptions) {
    this.#credentials = opts.credentials;
    this.#request = opts.request;
    this.#now = opts.now ?? Date.now;
    this.#clientId = opts.clientId ?? 'airlock';
  }

  /** Authorization header value for `registry` and `scopes` from cache (undefined if none yet). */
  cached(registry: string, scopes: string[]): string | undefined {
    const reg = canonicalRegistry(registry);
    const basic = this.#basic.get(reg);
    if (basic !== undefined) return basic;
    const key = tokenKey(reg, normalizeScopes(scopes));
    const hit = this.#tokens.get(key);
    if (hit === undefined) return undefined;
    if (hit.expiresAt > this.#now()) return hit.header;
    this.#tokens.delete(key);
    return undefined;
  }

  /** Answer a 401 challenge: Basic from credentials, or fetch a Bearer token (realm/service/scope). Throws AuthError when it cannot. */
  async authorize(registry: string, challenges: Challenge[], scopes: string[], signal?: AbortSignal): Promise<string> {
    throwIfAborted(signal);
    const reg = canonicalRegistry(registry);
    // Bearer first: a registry offering both prefers it, and it never sends the password to the registry itself.
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) return await this.#bearer(registry, reg, bearer, scopes, signal);
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (basic) return await this.#basicAuth(registry, reg, signal);
    const offered = challenges.map((c) => c.scheme).join(', ');
    throw new AuthError(
      offered
        ? `${registry} asks for ${offered} authentication; airlock speaks Basic and Bearer only`
        : `${registry} answered 401 without a WWW-Authenticate challenge`,
      { code: 'AUTH_SCHEME_UNSUPPORTED', hint: offered ? undefined : 'a proxy in front of the registry may be eating the header' },
    );
  }

  /**
   * The error to throw when a request retried with `authorize`'s header is refused again (401/403).
   * Names whose credentials failed and what to do; forgets the cached header so a later attempt
   * (after `docker login`) starts afresh.
   */
  rejectionError(registry: string, challenges: Challenge[], scopes: string[]): AuthError {
    const reg = canonicalRegistry(registry);
    const norm = normalizeScopes(scopes);
    this.#basic.delete(reg);
    this.#tokens.delete(tokenKey(reg, norm));
    this.#creds.delete(reg);
    const used = this.#used.get(reg);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const login = `log in with "docker login ${registry}" (or podman login), or set REGISTRY_AUTH_FILE to an auth.json with an entry for ${registry}`;
    const access = norm.length > 0 ? norm.join(' ') : 'access';
    if (!used || used.anonymous) {
      return new AuthError(`${registry} denied ${access} to anonymous access`, { code: 'CREDENTIALS_MISSING', hint: login });
    }
    if (used.scheme === 'basic') {
      return new AuthError(`${registry} refused the password of ${used.who}`, {
        code: 'CREDENTIALS_REJECTED',
        hint: `check the password; ${login}`,
      });
    }
    if (bearer?.params.error === 'invalid_token') {
      return new AuthError(`${registry} did not accept the token its token server issued for ${used.who}`, {
        code: 'TOKEN_REJECTED',
        hint: 'the registry and its token server disagree (issuer, service or signing certificate)',
      });
    }
    return new AuthError(`${registry} denied ${access} to ${used.who}`, {
      code: 'ACCESS_DENIED',
      hint: `ask the registry's administrator to grant ${used.who} these rights, or use other credentials`,
    });
  }

  #credentialsFor(reg: string, registry: string): Promise<Credential | undefined> {
    let p = this.#creds.get(reg);
    if (!p) {
      p = this.#credentials.get(registry);
      this.#creds.set(reg, p);
      // A failed lookup (helper missing, timed out) is not remembered: the next call tries again.
      const mine = p;
      mine.catch(() => {
        if (this.#creds.get(reg) === mine) this.#creds.delete(reg);
      });
    }
    return p;
  }

  async #basicAuth(registry: string, reg: string, signal: AbortSignal | undefined): Promise<string> {
    const cred = await this.#credentialsFor(reg, registry);
    throwIfAborted(signal);
    if (cred?.username === undefined || cred.password === undefined) {
      throw new AuthError(`${registry} requires a username and password, and none are configured for it`, {
        code: 'CREDENTIALS_MISSING',
        hint: cred
          ? `the stored credential for ${registry} is a token; log in with a password ("docker login ${registry}")`
          : `log in with "docker login ${registry}" (or podman login), or set REGISTRY_AUTH_FILE to an auth.json with an entry for ${registry}`,
      });
    }
    const header = basicHeader(cred.username, cred.password);
    this.#basic.set(reg, header);
    this.#used.set(reg, { scheme: 'basic', who: `user "${cred.username}"`, anonymous: false });
    return header;
  }

  async #bearer(registry: string, reg: string, challenge: Challenge, scopes: string[], signal: AbortSignal | undefined): Promise<string> {
    const wanted = normalizeScopes(scopes);
    // The challenge's scope names what the refused request needed; asking for it too costs nothing
    // and covers a caller that passed too little.
    const requested = normalizeScopes([...wanted, ...(challenge.params.scope ? [challenge.params.scope] : [])]);
    const key = tokenKey(reg, wanted);
    const flightKey = `${key}\n${requested.join(' ')}\n${challenge.params.realm ?? ''}`;
    let flight = this.#inflight.get(flightKey);
    if (!flight) {
      flight = this.#fetchBearer(registry, reg, challenge, key, requested, signal).finally(() => this.#inflight.delete(flightKey));
      this.#inflight.set(flightKey, flight);
    }
    return await flight;
  }

  async #fetchBearer(
    registry: string,
    reg: string,
    challenge: Challenge,
    key: string,
    requested: string[],
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const cred = await this.#credentialsFor(reg, registry);
    throwIfAborted(signal);
    if (cred?.registryToken) {
      const header = `Bearer ${cred.registryToken}`;
      this.#tokens.set(key, { header, expiresAt: Number.POSITIVE_INFINITY });
      this.#used.set(reg, { scheme: 'bearer', who: 'the stored registry token', anonymous: false });
      return header;
    }
    const issued = await fetchToken(this.#request, {
      registry,
      realm: challenge.params.realm ?? '',
      service: challenge.params.service,
      scopes: requested,
      credential: cred,
      clientId: this.#clientId,
      signal,
    });
    const header = `Bearer ${issued.token}`;
    const lifeMs = issued.expiresIn * 1000;
    const expiresAt = this.#now() + lifeMs - Math.min(EXPIRY_MARGIN_MS, lifeMs / 4);
    this.#tokens.set(key, { header, expiresAt });
    const anonymous = !cred?.identityToken && (cred?.username === undefined || cred.password === undefined);
    this.#used.set(reg, {
      scheme: 'bearer',
      who: cred?.username ? `user "${cred.username}"` : anonymous ? 'anonymous access' : 'the stored identity token',
      anonymous,
    });
    return header;
  }
}
