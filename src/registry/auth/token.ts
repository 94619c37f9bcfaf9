// Getting a bearer token from the token server a registry names in its challenge
// (distribution docs/spec/auth/token.md and oauth.md):
//   GET  realm?service=S&scope=A&scope=B[&account=U]   Basic credentials when we have them
//   POST realm  grant_type=refresh_token&refresh_token=…&service=S&scope=A B&client_id=…   (identity tokens)
// The answer carries `token` or `access_token` (Docker Hub sends both) and `expires_in` seconds.
import { AuthError, NetworkError, throwIfAborted } from '../../core/errors.ts';
import type { Credential } from './credential.ts';
import { redactSecrets } from '../../core/redact.ts';

/** What the client gives the authenticator to make the token request with the same TLS settings. */
export type AuthRequest = (
  url: string,
  init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; signal?: AbortSignal },
) => Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string; attempts?: number }>;

export interface TokenRequest {
  registry: string;
  realm: string;
  service: string | undefined;
  scopes: string[];
  credential: Credential | undefined;
  clientId: string;
  signal?: AbortSignal | undefined;
}

export interface IssuedToken {
  token: string;
  /** Lifetime in seconds as the server stated it (60 when it did not: the spec's default). */
  expiresIn: number;
}

const DEFAULT_EXPIRES_IN = 60;
/** Printable ASCII without spaces: anything else would break (or smuggle into) the Authorization header. */
const TOKEN_RE = /^[\x21-\x7e]+$/;

export function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

/** The realm as a URL we are willing to call: http(s) only, never with credentials inside. */
export function parseRealm(registry: string, realm: string | undefined): URL {
  let url: URL | undefined;
  try {
    url = realm ? new URL(realm) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) {
    throw new AuthError(
      `${registry} asked for a bearer token but its challenge has ${realm ? `an unusable realm "${redactSecrets(realm)}"` : 'no realm'}`,
      { code: 'TOKEN_REALM_INVALID', hint: 'the registry or its proxy is misconfigured: the realm must be an http(s) URL of a token server' },
    );
  }
  return url;
}

function describe(req: TokenRequest): string {
  const who = req.credential?.username ? `user "${req.credential.username}"` : req.credential?.identityToken ? 'the identity token' : 'anonymous access';
  return who;
}

export async function fetchToken(request: AuthRequest, req: TokenRequest): Promise<IssuedToken> {
  const realm = parseRealm(req.registry, req.realm);
  const cred = req.credential;
  const origin = `${realm.protocol}//${realm.host}${realm.pathname}`;
  let url: string;
  let init: Parameters<AuthRequest>[1];
  if (cred?.identityToken) {
    const form = new URLSearchParams();
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', cred.identityToken);
    if (req.service !== undefined) form.set('service', req.service);
    if (req.scopes.length > 0) form.set('scope', req.scopes.join(' '));
    form.set('client_id', req.clientId);
    url = realm.toString();
    init = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
    };
  } else {
    const u = new URL(realm);
    if (req.service !== undefined) u.searchParams.set('service', req.service);
    for (const s of req.scopes) u.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (cred?.username !== undefined && cred.password !== undefined) {
      u.searchParams.set('account', cred.username);
      headers.authorization = basicHeader(cred.username, cred.password);
    }
    url = u.toString();
    init = { method: 'GET', headers };
  }
  if (req.signal) init.signal = req.signal;

  const res = await request(url, init);
  throwIfAborted(req.signal);

  if (res.status === 401 || res.status === 403) {
    const anonymous = !cred?.identityToken && (cred?.username === undefined || cred.password === undefined);
    throw new AuthError(
      anonymous
        ? `the token server of ${req.registry} (${origin}) requires credentials (HTTP ${res.status})`
        : `the token server of ${req.registry} (${origin}) refused the credentials of ${describe(req)} (HTTP ${res.status})`,
      {
        code: anonymous ? 'CREDENTIALS_MISSING' : 'CREDENTIALS_REJECTED',
        hint: anonymous
          ? `log in with "docker login ${req.registry}" (or podman login), or set REGISTRY_AUTH_FILE to an auth.json with an entry for ${req.registry}`
          : `check the password or token; log in again with "docker login ${req.registry}" or fix the entry in REGISTRY_AUTH_FILE`,
      },
    );
  }
  if (res.status === 429 || res.status >= 500) {
    const tries = res.attempts !== undefined && res.attempts > 1 ? ` after ${res.attempts} attempts` : '';
    throw new NetworkError(`the token server of ${req.registry} (${origin}) answered HTTP ${res.status}${tries}`, {
      code: 'TOKEN_SERVER_UNAVAILABLE',
      hint: 'try again later',
    });
  }
  if (res.status < 200 || res.status > 299) {
    throw new AuthError(`the token server of ${req.registry} (${origin}) answered HTTP ${res.status} to a token request`, {
      code: 'TOKEN_REQUEST_FAILED',
    });
  }

  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    body = undefined;
  }
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const token = typeof b.token === 'string' && b.token.length > 0 ? b.token : b.access_token;
  if (typeof token !== 'string' || !TOKEN_RE.test(token)) {
    throw new AuthError(`the token server of ${req.registry} (${origin}) answered without a usable token`, {
      code: 'TOKEN_INVALID',
      hint: 'expected JSON with a "token" or "access_token" string',
    });
  }
  const expiresIn = typeof b.expires_in === 'number' && Number.isFinite(b.expires_in) && b.expires_in > 0 ? b.expires_in : DEFAULT_EXPIRES_IN;
  return { token, expiresIn };
}
