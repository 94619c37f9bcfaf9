// The registry client with Bearer token auth: a real docker-registry with auth.token and the test
// token issuer; checks the scopes the client asks for and that tokens are reused.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { ExitCode } from '../../src/core/errors.ts';
import { MediaType } from '../../src/core/media-types.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { startTokenRegistry, type TokenRegistry } from '../helpers/registry.ts';
import { bytesDescriptor, json } from './support.ts';

let registry: TokenRegistry;
const clients: RegistryClient[] = [];

before(async () => {
  registry = await startTokenRegistry({
    users: { alice: 'alice-pw', reader: 'reader-pw' },
    access: (user, scope) => (user === 'alice' ? scope.actions : user === 'reader' ? scope.actions.filter((a) => a === 'pull') : []),
  });
});
after(async () => {
  for (const c of clients) await c.close();
  await registry?.stop();
});

function clientAs(user: string | undefined, password = `${user}-pw`): RegistryClient {
  const c = new RegistryClient({
    credentials: { get: async (reg: string) => (user !== undefined && reg === registry.host ? { username: user, password } : undefined) },
    retryBaseDelayMs: 5,
  });
  clients.push(c);
  return c;
}

function scopesAsked(): string[][] {
  return registry.issuer.requests.filter((r) => r.status === 200).map((r) => r.scopes);
}

test('push and pull with tokens: pull scope for reads, pull,push for writes, each token fetched once', async () => {
  const r = clientAs('alice').repository({ registry: registry.host, repository: 'lab/app' });
  const before = registry.issuer.requests.length;
  const blobs = ['one', 'two', 'three'].map((s) => bytesDescriptor(s, 'application/octet-stream'));
  for (const b of blobs) await r.push(b.desc, Readable.from([b.bytes]));
  const cfg = bytesDescriptor(json({ os: 'linux' }), MediaType.ociConfig);
  await r.push(cfg.desc, Readable.from([cfg.bytes]));
  const manifest = bytesDescriptor(json({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: cfg.desc, layers: [] }), MediaType.ociManifest);
  await r.pushReference(manifest.desc, manifest.bytes, '1.0');
  assert.deepEqual(await r.resolve('1.0'), manifest.desc);
  assert.deepEqual((await r.fetchManifest('1.0')).bytes, manifest.bytes);
  const asked = registry.issuer.requests.slice(before).map((q) => q.scopes.join(' '));
  assert.deepEqual(asked, ['repository:lab/app:pull,push', 'repository:lab/app:pull']);
});

test('a cross-repository mount asks for push on the target and pull on the source in one token', async () => {
  const alice = clientAs('alice');
  const src = alice.repository({ registry: registry.host, repository: 'lab/app' });
  const dst = alice.repository({ registry: registry.host, repository: 'lab/copy' });
  const b = bytesDescriptor('mount me', MediaType.ociLayerGzip);
  await src.push(b.desc, Readable.from([b.bytes]));
  assert.equal(await dst.mount(b.desc, 'lab/app'), true);
  assert.equal(await dst.exists(b.desc), true);
  const mountScopes = scopesAsked().find((s) => s.includes('repository:lab/app:pull') && s.some((x) => x.startsWith('repository:lab/copy:')));
  assert.ok(mountScopes, JSON.stringify(scopesAsked()));
  assert.ok(mountScopes.includes('repository:lab/copy:pull,push'));
});

test('a user with pull rights only can read but a push is refused as an auth error', async () => {
  const r = clientAs('reader').repository({ registry: registry.host, repository: 'lab/app' });
  assert.equal((await r.resolve('1.0')).mediaType, MediaType.ociManifest);
  const b = bytesDescriptor('not allowed', 'application/octet-stream');
  await assert.rejects(r.push(b.desc, Readable.from([b.bytes])), (e: unknown) => {
    assert.equal((e as { exitCode?: number }).exitCode, ExitCode.auth, String(e));
    assert.match((e as Error).message, /reader|denied/);
    return true;
  });
});

test('anonymous access to a protected registry fails with a login hint', async () => {
  const r = clientAs(undefined).repository({ registry: registry.host, repository: 'lab/app' });
  await assert.rejects(r.resolve('1.0'), (e: unknown) => {
    assert.equal((e as { exitCode?: number }).exitCode, ExitCode.auth, String(e));
    assert.match((e as { hint?: string }).hint ?? '', /docker login/);
    return true;
  });
});
