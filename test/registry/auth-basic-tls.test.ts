// Basic auth against a real docker-registry over TLS (test CA, htpasswd), driven the way the
// registry client drives the Authenticator: request → 401 → authorize → retry.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { AuthError } from '../../src/core/errors.ts';
import { Authenticator, type CredentialStore, loadCredentialStore } from '../../src/registry/auth/index.ts';
import { startTlsRegistry, type TlsRegistry } from '../helpers/registry.ts';
import { authCall, authRequest } from './auth-support.ts';

let reg: TlsRegistry;
let agent: Agent;
let home: string;

const call = (method: 'GET' | 'POST' | 'PUT', path: string, header?: string, body?: Buffer) => authCall(agent, reg.url, method, path, header, body);

/** A store reading a DOCKER_CONFIG dir holding one `auth` entry for the registry. */
async function storeWith(user: string, password: string): Promise<CredentialStore> {
  const dir = await mkdtemp(join(home, 'docker-'));
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [`https://${reg.host}`]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return loadCredentialStore({ env: { DOCKER_CONFIG: dir }, homeDir: home });
}

before(async () => {
  reg = await startTlsRegistry({ users: { alice: 'wonder land:1' } });
  agent = new Agent({ connect: { ca: await readFile(reg.caFile) } });
  home = await mkdtemp(join(tmpdir(), 'airlock-auth-tls-'));
});
after(async () => {
  await agent?.close();
  await reg?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('Basic auth over TLS', () => {
  it('the registry is only reachable when the test CA is trusted', async () => {
    const untrusted = new Agent();
    try {
      await assert.rejects(request(`${reg.url}/v2/`, { dispatcher: untrusted }), /certificate|self.signed|issuer/i);
    } finally {
      await untrusted.close();
    }
  });

  it('answers the Basic challenge with the stored password, then pushes and pulls a blob', async () => {
    const auth = new Authenticator({ credentials: await storeWith('alice', 'wonder land:1'), request: authRequest(agent) });
    const first = await call('GET', '/v2/');
    assert.equal(first.status, 401);
    assert.deepEqual(first.challenges, [{ scheme: 'basic', params: { realm: 'airlock-test' } }]);
    assert.equal(auth.cached(reg.host, []), undefined);

    const header = await auth.authorize(reg.host, first.challenges, []);
    assert.equal(header, `Basic ${Buffer.from('alice:wonder land:1').toString('base64')}`);
    assert.equal((await call('GET', '/v2/', header)).status, 200);

    // Basic is registry-wide: the cached header serves any scope, including a push.
    const h = auth.cached(reg.host, ['repository:team/app:pull,push']);
    assert.equal(h, header);
    const blob = Buffer.from('airlock basic auth blob\n');
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const started = await call('POST', '/v2/team/app/blobs/uploads/', h);
    assert.equal(started.status, 202);
    const loc = new URL(started.location!, reg.url);
    loc.searchParams.set('digest', digest);
    assert.equal((await call('PUT', loc.toString(), h, blob)).status, 201);
    assert.equal((await call('GET', `/v2/team/app/blobs/${digest}`, h)).status, 200);
  });

  it('a wrong password ends in an AuthError naming the registry and user, not the password', async () => {
    const auth = new Authenticator({ credentials: await storeWith('alice', 'not-the-password'), request: authRequest(agent) });
    const first = await call('GET', '/v2/');
    const header = await auth.authorize(reg.host, first.challenges, []);
    const retry = await call('GET', '/v2/', header);
    assert.equal(retry.status, 401);
    const err = auth.rejectionError(reg.host, retry.challenges, []);
    assert.ok(err instanceof AuthError);
    assert.equal(err.code, 'CREDENTIALS_REJECTED');
    assert.equal(err.exitCode, 4);
    assert.match(err.message, new RegExp(`${reg.host}.*"alice"`));
    assert.match(err.hint ?? '', new RegExp(`docker login ${reg.host}`));
    assert.doesNotMatch(`${err.message} ${err.hint}`, /not-the-password/);
    // The refused header is forgotten.
    assert.equal(auth.cached(reg.host, []), undefined);
  });

  it('without credentials, authorize throws an AuthError that says how to log in', async () => {
    const auth = new Authenticator({ credentials: loadCredentialStore({ env: {}, homeDir: home }), request: authRequest(agent) });
    const first = await call('GET', '/v2/');
    await assert.rejects(auth.authorize(reg.host, first.challenges, []), (e: unknown) => {
      assert.ok(e instanceof AuthError);
      assert.equal(e.code, 'CREDENTIALS_MISSING');
      assert.match(e.message, new RegExp(reg.host));
      assert.match(e.hint ?? '', new RegExp(`docker login ${reg.host}.*REGISTRY_AUTH_FILE`));
      return true;
    });
  });
});
