// Bearer tokens against a real docker-registry with `auth.token`, backed by the test token issuer:
// anonymous and authenticated access, scopes, identity tokens, caching and expiry.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from 'undici';
import { AuthError } from '../../src/core/errors.ts';
import {
  Authenticator,
  type Credential,
  type CredentialStore,
  loadCredentialStore,
} from '../../src/registry/auth/index.ts';
import { type RunningRegistry, startTokenRegistry, type TokenRegistry } from '../helpers/registry.ts';
import { authCall, authRequest } from './auth-support.ts';

let reg: TokenRegistry;
let agent: Agent;
let home: string;
/** A blob alice pushed to team/app before the tests: GETting it answers 200 to anyone allowed to pull. */
let teamBlob: string;

const USERS = { alice: 'alice-pw', reader: 'reader-pw' };

const call = (r: RunningRegistry, method: 'GET' | 'POST' | 'PUT', path: string, header?: string, body?: Buffer) => authCall(agent, r.url, method, path, header, body);

const fixed = (cred: Credential | undefined): CredentialStore => ({ get: async () => cred });

/** The client's loop: send the cached header, on 401 authorize and retry once, on a second 401/403 give up. */
async function withAuth(auth: Authenticator, r: RunningRegistry, scopes: string[], method: 'GET' | 'POST', path: string) {
  let header = auth.cached(r.host, scopes);
  let res = await call(r, method, path, header);
  if (res.status !== 401) return { res, header };
  header = await auth.authorize(r.host, res.challenges, scopes);
  res = await call(r, method, path, header);
  if (res.status === 401 || res.status === 403) throw auth.rejectionError(r.host, res.challenges, scopes);
  return { res, header };
}

async function pushBlob(auth: Authenticator, repo: string, text: string): Promise<string> {
  const blob = Buffer.from(text);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const scopes = [`repository:${repo}:pull,push`];
  const { res, header } = await withAuth(auth, reg, scopes, 'POST', `/v2/${repo}/blobs/uploads/`);
  assert.equal(res.status, 202);
  const loc = new URL(res.location!, reg.url);
  loc.searchParams.set('digest', digest);
  assert.equal((await call(reg, 'PUT', loc.toString(), header, blob)).status, 201);
  return digest;
}

before(async () => {
  reg = await startTokenRegistry({
    users: USERS,
    refreshTokens: { 'identity-token-alice': 'alice' },
    // alice may do anything; reader may only pull; anonymous may pull from public/*.
    access: (user, scope) =>
      user === 'alice' ? scope.actions
      : user === 'reader' ? scope.actions.filter((a) => a === 'pull')
      : scope.name.startsWith('public/') ? scope.actions.filter((a) => a === 'pull')
      : [],
  });
  agent = new Agent();
  home = await mkdtemp(join(tmpdir(), 'airlock-auth-token-'));
  const alice = new Authenticator({ credentials: fixed({ username: 'alice', password: 'alice-pw' }), request: authRequest(agent) });
  teamBlob = `/v2/team/app/blobs/${await pushBlob(alice, 'team/app', 'setup blob\n')}`;
});
after(async () => {
  await agent?.close();
  await reg?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('Bearer token registry', () => {
  it('answers a challenge with realm and service, and the token opens /v2/', async () => {
    const first = await call(reg, 'GET', '/v2/');
    assert.equal(first.status, 401);
    assert.deepEqual(first.challenges, [{ scheme: 'bearer', params: { realm: reg.issuer.realm, service: reg.issuer.service } }]);
    const auth = new Authenticator({ credentials: fixed({ username: 'alice', password: 'alice-pw' }), request: authRequest(agent) });
    const header = await auth.authorize(reg.host, first.challenges, []);
    assert.match(header, /^Bearer eyJ/);
    assert.equal((await call(reg, 'GET', '/v2/', header)).status, 200);
  });

  it('with credentials, alice pushes and pulls; the token is cached per scope set', async () => {
    const auth = new Authenticator({ credentials: fixed({ username: 'alice', password: 'alice-pw' }), request: authRequest(agent) });
    const before = reg.issuer.requests.length;
    const digest = await pushBlob(auth, 'team/app', 'pushed by alice\n');
    const asked = reg.issuer.requests.slice(before);
    assert.equal(asked.length, 1, 'one token for the whole upload');
    assert.equal(asked[0]!.user, 'alice');
    assert.deepEqual(asked[0]!.scopes, ['repository:team/app:pull,push']);
    assert.equal(asked[0]!.service, reg.issuer.service);

    // Same access in another order: served from cache, no new token request.
    const cached = auth.cached(reg.host, ['repository:team/app:push', 'repository:team/app:pull']);
    assert.ok(cached);
    assert.equal((await call(reg, 'GET', `/v2/team/app/blobs/${digest}`, cached)).status, 200);
    assert.equal(reg.issuer.requests.length, before + 1);
    // Other access is another token.
    assert.equal(auth.cached(reg.host, ['repository:team/other:pull']), undefined);
  });

  it('anonymous pull of a private repository is denied with an AuthError that says to log in', async () => {
    const auth = new Authenticator({ credentials: loadCredentialStore({ env: {}, homeDir: home }), request: authRequest(agent) });
    const before = reg.issuer.requests.length;
    await assert.rejects(withAuth(auth, reg, ['repository:team/app:pull'], 'GET', '/v2/team/app/tags/list'), (e: unknown) => {
      assert.ok(e instanceof AuthError);
      assert.equal(e.code, 'CREDENTIALS_MISSING');
      assert.match(e.message, new RegExp(`${reg.host} denied repository:team/app:pull to anonymous access`));
      assert.match(e.hint ?? '', new RegExp(`docker login ${reg.host}`));
      return true;
    });
    const asked = reg.issuer.requests.slice(before);
    assert.equal(asked.length, 1);
    assert.equal(asked[0]!.user, undefined, 'the token request went without credentials');
  });

  it('anonymous pull of a public repository works', async () => {
    const alice = new Authenticator({ credentials: fixed({ username: 'alice', password: 'alice-pw' }), request: authRequest(agent) });
    const digest = await pushBlob(alice, 'public/tool', 'public blob\n');
    const anon = new Authenticator({ credentials: fixed(undefined), request: authRequest(agent) });
    const { res } = await withAuth(anon, reg, ['repository:public/tool:pull'], 'GET', `/v2/public/tool/blobs/${digest}`);
    assert.equal(res.status, 200);
  });

  it('a pull-only user is refused push with an AuthError naming the user', async () => {
    const auth = new Authenticator({ credentials: fixed({ username: 'reader', password: 'reader-pw' }), request: authRequest(agent) });
    await assert.rejects(withAuth(auth, reg, ['repository:team/app:pull,push'], 'POST', '/v2/team/app/blobs/uploads/'), (e: unknown) => {
      assert.ok(e instanceof AuthError);
      assert.equal(e.code, 'ACCESS_DENIED');
      assert.match(e.message, /denied repository:team\/app:pull,push to user "reader"/);
      return true;
    });
    // …but may pull.
    const { res } = await withAuth(auth, reg, ['repository:team/app:pull'], 'GET', teamBlob);
    assert.equal(res.status, 200);
  });

  it('a wrong password is an AuthError naming the registry, never the password', async () => {
    const auth = new Authenticator({ credentials: fixed({ username: 'alice', password: 'WRONG-pw-123' }), request: authRequest(agent) });
    const first = await call(reg, 'GET', '/v2/team/app/tags/list');
    await assert.rejects(auth.authorize(reg.host, first.challenges, ['repository:team/app:pull']), (e: unknown) => {
      assert.ok(e instanceof AuthError);
      assert.equal(e.code, 'CREDENTIALS_REJECTED');
      assert.match(e.message, new RegExp(`token server of ${reg.host} .*refused the credentials of user "alice"`));
      assert.doesNotMatch(`${e.message} ${e.hint}`, /WRONG-pw-123/);
      return true;
    });
  });

  it('asks for the scope named in the challenge when the caller passed too little', async () => {
    const auth = new Authenticator({ credentials: fixed({ username: 'alice', password: 'alice-pw' }), request: authRequest(agent) });
    const first = await call(reg, 'GET', teamBlob);
    assert.equal(first.challenges[0]?.params.scope, 'repository:team/app:pull');
    const before = reg.issuer.requests.length;
    const header = await auth.authorize(reg.host, first.challenges, []);
    assert.deepEqual(reg.issuer.requests[before]?.scopes, ['repository:team/app:pull']);
    assert.equal((await call(reg, 'GET', teamBlob, header)).status, 200);
  });

  it('an identity token is exchanged with the OAuth2 POST (grant_type=refresh_token)', async () => {
    const auth = new Authenticator({ credentials: fixed({ identityToken: 'identity-token-alice' }), request: authRequest(agent) });
    const before = reg.issuer.requests.length;
    const { res } = await withAuth(auth, reg, ['repository:team/app:pull'], 'GET', teamBlob);
    assert.equal(res.status, 200);
    const asked = reg.issuer.requests[before]!;
    assert.equal(asked.method, 'POST');
    assert.equal(asked.grantType, 'refresh_token');
    assert.equal(asked.user, 'alice');
    assert.deepEqual(asked.scopes, ['repository:team/app:pull']);

    const bad = new Authenticator({ credentials: fixed({ identityToken: 'revoked' }), request: authRequest(agent) });
    const first = await call(reg, 'GET', '/v2/team/app/tags/list');
    await assert.rejects(bad.authorize(reg.host, first.challenges, []), (e: unknown) => e instanceof AuthError && e.code === 'CREDENTIALS_REJECTED');
  });

  it('credentials from a credential helper on PATH reach the token server', async () => {
    const bin = join(home, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(
      join(bin, 'docker-credential-airlocktest'),
      `#!/bin/sh\nread server\n[ "$server" = "${reg.host}" ] && printf '{"Username":"alice","Secret":"alice-pw"}' && exit 0\necho "credentials not found in native keychain"; exit 1\n`,
    );
    await chmod(join(bin, 'docker-credential-airlocktest'), 0o755);
    const cfg = join(home, 'helper-docker');
    await mkdir(cfg, { recursive: true });
    await writeFile(join(cfg, 'config.json'), JSON.stringify({ credsStore: 'airlocktest' }));
    const store = loadCredentialStore({ env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, DOCKER_CONFIG: cfg }, homeDir: home });
    const auth = new Authenticator({ credentials: store, request: authRequest(agent) });
    const { res } = await withAuth(auth, reg, ['repository:team/app:pull'], 'GET', teamBlob);
    assert.equal(res.status, 200);
  });

  it('cached tokens expire before the server says they do', async () => {
    let now = 1_000_000;
    const auth = new Authenticator({ credentials: fixed({ username: 'alice', password: 'alice-pw' }), request: authRequest(agent), now: () => now });
    const first = await call(reg, 'GET', '/v2/');
    const header = await auth.authorize(reg.host, first.challenges, ['repository:team/app:pull']);
    // The issuer says expires_in 300: usable until 30 s before that.
    now += 269_000;
    assert.equal(auth.cached(reg.host, ['repository:team/app:pull']), header);
    now += 2_000;
    assert.equal(auth.cached(reg.host, ['repository:team/app:pull']), undefined);
  });

  it('concurrent 401s for the same access share one token request', async () => {
    const auth = new Authenticator({ credentials: fixed({ username: 'alice', password: 'alice-pw' }), request: authRequest(agent) });
    const first = await call(reg, 'GET', '/v2/team/app/tags/list');
    const before = reg.issuer.requests.length;
    const headers = await Promise.all(Array.from({ length: 5 }, () => auth.authorize(reg.host, first.challenges, ['repository:team/app:pull'])));
    assert.equal(new Set(headers).size, 1);
    assert.equal(reg.issuer.requests.length, before + 1);
  });

  it('a challenge with a realm that is not an http(s) URL is refused before any request', async () => {
    const auth = new Authenticator({ credentials: fixed({ username: 'alice', password: 'alice-pw' }), request: authRequest(agent) });
    for (const realm of ['file:///etc/passwd', 'not a url', 'https://user:pw@evil.example/token']) {
      await assert.rejects(auth.authorize(reg.host, [{ scheme: 'bearer', params: { realm } }], []), (e: unknown) => {
        assert.ok(e instanceof AuthError);
        assert.equal(e.code, 'TOKEN_REALM_INVALID');
        assert.doesNotMatch(e.message, /:pw@/);
        return true;
      });
    }
    await assert.rejects(auth.authorize(reg.host, [{ scheme: 'negotiate', params: {} }], []), (e: unknown) => e instanceof AuthError && e.code === 'AUTH_SCHEME_UNSUPPORTED');
  });
});

describe('token server answering only access_token', () => {
  let reg2: TokenRegistry;
  before(async () => {
    reg2 = await startTokenRegistry({ users: USERS, tokenField: 'access_token', expiresIn: 120 });
  });
  after(async () => {
    await reg2?.stop();
  });

  it('is accepted the same as `token`', async () => {
    const auth = new Authenticator({ credentials: fixed({ username: 'alice', password: 'alice-pw' }), request: authRequest(agent) });
    const { res } = await withAuth(auth, reg2, ['repository:x/y:pull'], 'GET', '/v2/x/y/tags/list');
    assert.equal(res.status, 404, 'authorized; the repository just does not exist');
  });
});
