// capture as a library, in front of an HTTPS docker-registry that wants a password: the session's
// CA and credentials reach the upstream, the capture speaks TLS itself, many pulls run at once,
// a stop lets a blob in flight finish, pushes are refused, and a client that takes no index gets
// the linux/amd64 manifest of one (recorded under the index, with its platform).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { capture, createSession, type Capture, type Session } from '../../src/index.ts';
import { digestOf } from '../../src/core/digest.ts';
import { MediaType } from '../../src/core/media-types.ts';
import { buildImage, buildIndex, blobBytes, layersOf, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { startTlsRegistry, type TlsRegistry } from '../helpers/registry.ts';
import { makeCa, makeServerCert } from '../helpers/tls.ts';

describe('capture (library): TLS, credentials, parallel pulls, graceful stop', () => {
  let dir: string;
  let reg: TlsRegistry;
  let session: Session;
  let cap: Capture;
  let agent: Agent;
  let big: BuiltImage;
  let multi: BuiltImage;
  const smalls: BuiltImage[] = [];
  const user = { username: 'ci', password: 's3cret' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-capture-lib-'));
    reg = await startTlsRegistry({ users: { [user.username]: user.password } });
    const seedAgent = new Agent({ connect: { ca: await readFile(reg.caFile) } });
    big = buildImage({ layers: [{ random: { bytes: 3 * 1024 * 1024, seed: 11 } }] });
    multi = buildIndex([buildImage({ layers: [{ files: { a: '1' } }], platform: 'linux/amd64' }), buildImage({ layers: [{ files: { a: '2' } }], platform: 'linux/arm64' })], { format: 'docker' });
    await seedRegistry(reg.url, 'team/big', '1', big, { auth: user, dispatcher: seedAgent });
    await seedRegistry(reg.url, 'team/multi', '1', multi, { auth: user, dispatcher: seedAgent });
    for (let i = 0; i < 6; i++) {
      const img = buildImage({ layers: [{ random: { bytes: 64 * 1024, seed: 100 + i } }] });
      smalls.push(img);
      await seedRegistry(reg.url, `team/small${i}`, '1', img, { auth: user, dispatcher: seedAgent });
    }
    await seedAgent.close();
    const ca = await makeCa(join(dir, 'cap-ca'));
    const leaf = await makeServerCert(ca, { ips: ['127.0.0.1'] });
    session = createSession({ caFile: reg.caFile, credentials: { get: async (r) => (r === reg.host ? user : undefined) }, certsDirs: [] });
    cap = await capture({ listen: '127.0.0.1:0', upstream: reg.host, tlsCert: leaf.certFile, tlsKey: leaf.keyFile, record: join(dir, 'r.jsonl'), write: join(dir, 'airlock.yaml'), session });
    agent = new Agent({ connect: { ca: await readFile(ca.certFile) } });
  });
  after(async () => {
    await cap?.stop().catch(() => {});
    await session?.close();
    await agent?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const get = (path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE' = 'GET') =>
    request(`${cap.url}${path}`, { method, headers, dispatcher: agent });

  test('pushes and uploads are refused (405), nothing reaches the upstream', async () => {
    assert.equal(cap.tls, true);
    for (const [method, path] of [['PUT', '/v2/team/x/manifests/1'], ['POST', '/v2/team/x/blobs/uploads/'], ['DELETE', '/v2/team/big/manifests/1']] as const) {
      const r = await get(path, { 'content-length': '0' }, method);
      assert.equal(r.statusCode, 405, `${method} ${path}`);
      assert.match(await r.body.text(), /read-only/);
    }
  });

  test('twelve pulls at once, each blob answered whole and checked', async () => {
    const jobs = smalls.flatMap((img, i) => [
      (async () => {
        const r = await get(`/v2/team/small${i}/manifests/1`, { accept: MediaType.ociManifest });
        assert.equal(r.statusCode, 200);
        assert.equal(digestOf(Buffer.from(await r.body.arrayBuffer())), img.root.digest);
      })(),
      (async () => {
        const layer = layersOf(img)[0]!;
        const r = await get(`/v2/team/small${i}/blobs/${layer.descriptor.digest}?ns=${reg.host}`);
        assert.equal(r.statusCode, 200);
        assert.deepEqual(Buffer.from(await r.body.arrayBuffer()), blobBytes(layer));
      })(),
    ]);
    await Promise.all(jobs);
    const recs = cap.summary();
    assert.equal(recs.upstreams[0]?.failed, 0);
    assert.equal(recs.images.length, smalls.length);
  });

  test('a client that takes no index gets its linux/amd64 manifest, recorded under the index', async () => {
    const r = await get('/v2/team/multi/manifests/1', { accept: `${MediaType.dockerManifest}, ${MediaType.ociManifest}` });
    assert.equal(r.statusCode, 200);
    const amd64 = JSON.parse(blobBytes(multi.blobs.find((b) => b.descriptor.digest === multi.root.digest)!).toString()).manifests.find((m: any) => m.platform.architecture === 'amd64');
    assert.equal(r.headers['docker-content-digest'], amd64.digest);
    await r.body.dump();
    const img = cap.summary().images.find((i) => i.repository === 'team/multi');
    assert.equal(img?.digest, multi.root.digest);
    assert.deepEqual(img?.tags, ['1']);
    assert.deepEqual(img?.platforms, ['linux/amd64']);
  });

  test('a stop lets the blob in flight finish; the record and the spec are written after it', async () => {
    const layer = layersOf(big)[0]!;
    const r = await get(`/v2/team/big/blobs/${layer.descriptor.digest}`);
    assert.equal(r.statusCode, 200);
    const chunks: Buffer[] = [];
    const it = r.body[Symbol.asyncIterator]();
    const first = await it.next();
    chunks.push(first.value as Buffer);
    const stopped = cap.stop();
    for (let n = await it.next(); !n.done; n = await it.next()) chunks.push(n.value as Buffer);
    assert.equal(digestOf(Buffer.concat(chunks)), layer.descriptor.digest);
    const report = await stopped;
    const lines = (await readFile(join(dir, 'r.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const blobLine = lines.find((l) => l.kind === 'blob' && l.digest === layer.descriptor.digest);
    assert.equal(blobLine?.outcome, 'ok');
    assert.equal(blobLine?.size, layer.descriptor.size);
    assert.equal(report.requests, lines.filter((l) => l.type === 'pull').length);
    const spec = await readFile(join(dir, 'airlock.yaml'), 'utf8');
    assert.match(spec, new RegExp(`${reg.host.replace(/\./g, '\\.')}/team/multi:1@${multi.root.digest}`));
    // After the stop nothing answers.
    await assert.rejects(get('/v2/'), (e: Error) => /ECONNREFUSED|closed|other side/i.test(`${e.message} ${String((e as any).code)}`));
  });
});
