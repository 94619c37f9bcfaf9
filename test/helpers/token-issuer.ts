// A small Docker token server (distribution "token" auth) on a free loopback port, for tests.
//
// What docker-registry 2.8 (registry/auth/token/token.go) checks in the JWT it is handed:
//   header: alg must match the key (ES256 = raw r||s, 64 bytes, for P-256); the signing key is found
//           from `x5c` (preferred: the leaf certificate chain, verified against `rootcertbundle`),
//           else `jwk`, else `kid` (a libtrust fingerprint of a key in the bundle);
//   claims: iss == auth.token.issuer, aud == auth.token.service, now < exp+60s, now > nbf-60s,
//           and `access` [{type,name,actions}] must cover every action the request needs.
// We sign ES256 with a leaf key issued by our own CA and send `x5c: [leaf]`; the registry is given
// the CA as rootcertbundle. That is the form Docker's own auth servers use and survives 2.8 → 3.x.
// skopeo 1.9 logs in through it too. It runs inside the test process: drive external clients with
// async execFile/spawn, never execFileSync (that blocks the loop the issuer answers from).
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa, makeServerCert } from './tls.ts';

export interface TokenScope {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenIssuerOptions {
  /** user → password accepted as Basic credentials (GET) or grant_type=password (POST). */
  users?: Record<string, string>;
  /** identity (refresh) token → user, accepted by the OAuth2 POST with grant_type=refresh_token. */
  refreshTokens?: Record<string, string>;
  /**
   * Which of the requested actions `user` (undefined = anonymous) gets on a resource.
   * Default: a known user gets everything asked for, anonymous gets nothing.
   */
  access?: (user: string | undefined, scope: TokenScope) => string[];
  service?: string;
  issuer?: string;
  /** Lifetime of issued tokens in seconds (default 300). */
  expiresIn?: number;
  /** Which JSON field carries the token: `token`, `access_token`, or both (default, like Docker Hub). */
  tokenField?: 'token' | 'access_token' | 'both';
}

export interface TokenRequestRecord {
  method: string;
  /** The authenticated user; undefined for anonymous requests and for refused credentials (status 401). */
  user: string | undefined;
  scopes: string[];
  service: string | undefined;
  grantType: string | undefined;
  status: number;
}

export interface TokenIssuer {
  /** http://127.0.0.1:port */
  url: string;
  /** The token endpoint (`url` + /token): goes into auth.token.realm. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM bundle the registry must trust (auth.token.rootcertbundle). */
  rootCertBundle: string;
  /** Every request answered, oldest first: lets tests see what a client asked for. */
  requests: TokenRequestRecord[];
  /** Sign an arbitrary claim set with the issuer's key (for tests of odd tokens). */
  signToken(claims: Record<string, unknown>): string;
  close(): Promise<void>;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** `repository:library/nginx:pull,push`; names may contain ':' (host:port), so split at both ends. */
export function parseScope(scope: string): TokenScope | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  const actions = scope.slice(last + 1).split(',').filter((a) => a.length > 0);
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function defaultAccess(user: string | undefined, scope: TokenScope): string[] {
  return user === undefined ? [] : scope.actions;
}

function makeSigner(key: KeyObject, certDer: Buffer) {
  const x5c = [certDer.toString('base64')];
  return (claims: Record<string, unknown>): string => {
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c }));
    const payload = b64url(JSON.stringify(claims));
    const input = `${header}.${payload}`;
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(signature)}`;
  };
}

async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function basicUser(header: string | undefined): { user: string; password: string } | undefined | 'malformed' {
  if (header === undefined) return undefined;
  const m = /^basic\s+(\S+)$/i.exec(header.trim());
  if (!m?.[1]) return 'malformed';
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export async function startTokenIssuer(opts: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const dir = await mkdtemp(join(tmpdir(), 'airlock-token-issuer-'));
  try {
    const ca = await makeCa(dir);
    const leaf = await makeServerCert(ca, { name: 'signing', usage: 'signing', ips: [], dns: ['airlock-token-issuer'] });
    const key = createPrivateKey(await readFile(leaf.keyFile));
    const cert = new X509Certificate(await readFile(leaf.certFile));
    const signToken = makeSigner(key, cert.raw);
    const users = opts.users ?? {};
    const refreshTokens = opts.refreshTokens ?? {};
    const access = opts.access ?? defaultAccess;
    const service = opts.service ?? 'airlock-test-registry';
    const issuer = opts.issuer ?? 'airlock-test-issuer';
    const expiresIn = opts.expiresIn ?? 300;
    const tokenField = opts.tokenField ?? 'both';
    const requests: TokenRequestRecord[] = [];

    const issue = (user: string | undefined, scopes: string[]) => {
      const now = Math.floor(Date.now() / 1000);
      const granted: TokenScope[] = [];
      for (const s of scopes) {
        const parsed = parseScope(s);
        if (!parsed) continue;
        const allowed = access(user, parsed).filter((a) => parsed.actions.includes(a));
        granted.push({ ...parsed, actions: allowed });
      }
      const token = signToken({
        iss: issuer,
        sub: user ?? '',
        aud: service,
        exp: now + expiresIn,
        nbf: now - 1,
        iat: now,
        jti: randomBytes(12).toString('hex'),
        access: granted,
      });
      const body: Record<string, unknown> = { expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() };
      if (tokenField !== 'access_token') body.token = token;
      if (tokenField !== 'token') body.access_token = token;
      return body;
    };

    const handle = async (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const record: TokenRequestRecord = {
        method: req.method ?? '',
        user: undefined,
        scopes: [],
        service: undefined,
        grantType: undefined,
        status: 0,
      };
      const reply = (status: number, body: unknown) => {
        record.status = status;
        requests.push(record);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (status === 401) headers['www-authenticate'] = 'Basic realm="airlock-token-issuer"';
        res.writeHead(status, headers).end(JSON.stringify(body));
      };
      if (url.pathname !== '/token') return reply(404, { error: 'not_found' });

      if (req.method === 'GET') {
        record.scopes = url.searchParams.getAll('scope');
        record.service = url.searchParams.get('service') ?? undefined;
        const basic = basicUser(req.headers.authorization);
        if (basic === 'malformed') return reply(400, { error: 'invalid_request' });
        if (basic !== undefined) {
          if (users[basic.user] === undefined || users[basic.user] !== basic.password) {
            return reply(401, { error: 'unauthorized', details: 'incorrect username or password' });
          }
          record.user = basic.user;
        }
        return reply(200, issue(record.user, record.scopes));
      }

      if (req.method === 'POST') {
        const form = new URLSearchParams(await readBody(req));
        record.grantType = form.get('grant_type') ?? undefined;
        record.service = form.get('service') ?? undefined;
        record.scopes = (form.get('scope') ?? '').split(' ').filter((s) => s.length > 0);
        if (!form.get('client_id')) return reply(400, { error: 'invalid_request', details: 'client_id missing' });
        if (record.grantType === 'refresh_token') {
          const user = refreshTokens[form.get('refresh_token') ?? ''];
          if (user === undefined) return reply(401, { error: 'invalid_grant' });
          record.user = user;
        } else if (record.grantType === 'password') {
          const user = form.get('username') ?? '';
          if (users[user] === undefined || users[user] !== form.get('password')) return reply(401, { error: 'invalid_grant' });
          record.user = user;
        } else {
          return reply(400, { error: 'unsupported_grant_type' });
        }
        return reply(200, { ...issue(record.user, record.scopes), scope: record.scopes.join(' ') });
      }
      return reply(405, { error: 'method_not_allowed' });
    };

    const server = createServer((req, res) => {
      handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}`;
    return {
      url,
      realm: `${url}/token`,
      service,
      issuer,
      rootCertBundle: ca.certFile,
      requests,
      signToken,
      async close() {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
