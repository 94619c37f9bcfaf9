// The registry handler called directly (no socket): names, codes, ranges, pagination, referrers,
// Accept negotiation, auth, several bundles as one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ExitCode } from '../../src/core/errors.ts';
import { digestOf } from '../../src/core/digest.ts';
import { MediaType, type Descriptor } from '../../src/core/manifest.ts';
import { openBundleSet, type BundleSet } from '../../src/serve/bundle-set.ts';
import { buildCatalog } from '../../src/serve/catalog.ts';
import { createHandler, type Handler, type ServeResponse } from '../../src/serve/handler.ts';
import { basicAuth, parseHtpasswd } from '../../src/serve/htpasswd.ts';
import { parseRange } from '../../src/serve/range.ts';
import { parseReference } from '../../src/core/reference.ts';
import { htpasswdFile } from '../helpers/tls.ts';
import { blobBytes, buildImage, findBlob, layersOf, type BuiltImage } from '../helpers/images.ts';
import { fixtureImages, writeFixtureBundle } from './fixture.ts';
import { readFile } from 'node:fs/promises';

async function bodyOf(r: ServeResponse): Promise<Buffer> {
  if (r.body === undefined) return Buffer.alloc(0);
  if (Buffer.isBuffer(r.body)) return r.body;
  const chunks: Buffer[] = [];
  for await (const c of r.body() as Readable) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function request(handler: Handler, method: string, target: string, headers: Record<string, string> = {}): Promise<ServeResponse> {
  const u = new URL(target, 'http://x');
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return handler({ method, path: u.pathname, query: u.searchParams, headers: lower });
}

function errorCode(r: ServeResponse): string | undefined {
  if (!Buffer.isBuffer(r.body)) return undefined;
  return (JSON.parse(r.body.toString()) as { errors: { code: string }[] }).errors[0]?.code;
}

const layerOf = (img: BuiltImage, i = 0) => layersOf(img)[i]!;

describe('serve handler', () => {
  let dir: string;
  let images: Record<string, BuiltImage>;
  let set: BundleSet;
  let h: Handler;
  let hp: Handler; // with --prefix mirror
  const web1 = (): BuiltImage => images['docker.io/library/web:1']!;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-serve-handler-'));
    images = fixtureImages();
    await writeFixtureBundle(join(dir, 'b.tar'), images);
    set = await openBundleSet([join(dir, 'b.tar')]);
    h = createHandler({ set, catalog: buildCatalog(set.images, '', set.shadowed) });
    hp = createHandler({ set, catalog: buildCatalog(set.images, 'mirror', set.shadowed) });
  });
  after(async () => {
    await set?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('/v2/ answers 200 with the API version header', async () => {
    const r = await request(h, 'GET', '/v2/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  test('a manifest by tag and by digest: stored bytes, media type, digest, length', async () => {
    const img = web1();
    const stored = blobBytes(findBlob(img, img.root.digest));
    for (const ref of ['1', img.root.digest]) {
      const r = await request(h, 'GET', `/v2/library/web/manifests/${ref}`);
      assert.equal(r.status, 200);
      assert.deepEqual(await bodyOf(r), stored);
      assert.equal(r.headers['content-type'], MediaType.ociManifest);
      assert.equal(r.headers['docker-content-digest'], img.root.digest);
      assert.equal(r.headers['content-length'], String(stored.length));
    }
    const head = await request(h, 'HEAD', '/v2/library/web/manifests/1');
    assert.equal(head.status, 200);
    assert.equal(head.body, undefined);
    assert.equal(head.headers['content-length'], String(stored.length));
    const dlist = await request(h, 'GET', '/v2/team/dlist/manifests/3');
    assert.equal(dlist.headers['content-type'], MediaType.dockerManifestList);
    assert.equal(dlist.headers['docker-content-digest'], images['ghcr.io/team/dlist:3']!.root.digest);
  });

  test('mirror requests (?ns=) serve the original registry\'s image', async () => {
    const multi = images['quay.io/org/multi:v1']!;
    for (const ns of ['docker.io', 'registry-1.docker.io', 'index.docker.io']) {
      const r = await request(h, 'GET', `/v2/library/web/manifests/1?ns=${ns}`);
      assert.equal(r.status, 200, ns);
      assert.equal(r.headers['docker-content-digest'], web1().root.digest);
    }
    const q = await request(h, 'GET', '/v2/org/multi/manifests/v1?ns=quay.io');
    assert.equal(q.headers['docker-content-digest'], multi.root.digest);
    const wrong = await request(h, 'GET', '/v2/org/multi/manifests/v1?ns=docker.io');
    assert.equal(wrong.status, 404);
    assert.equal(errorCode(wrong), 'NAME_UNKNOWN');
  });

  test('with a prefix: served under it, mirror names still work, k3s rewritten names too', async () => {
    const d = web1().root.digest;
    assert.equal((await request(hp, 'GET', '/v2/mirror/library/web/manifests/1')).headers['docker-content-digest'], d);
    assert.equal(errorCode(await request(hp, 'GET', '/v2/library/web/manifests/1')), 'NAME_UNKNOWN');
    assert.equal((await request(hp, 'GET', '/v2/library/web/manifests/1?ns=docker.io')).headers['docker-content-digest'], d);
    assert.equal((await request(hp, 'GET', '/v2/mirror/library/web/manifests/1?ns=docker.io')).headers['docker-content-digest'], d);
    assert.equal(errorCode(await request(hp, 'GET', '/v2/mirror/library/web/manifests/1?ns=quay.io')), 'NAME_UNKNOWN');
    const cat = JSON.parse((await bodyOf(await request(hp, 'GET', '/v2/_catalog'))).toString()) as { repositories: string[] };
    assert.deepEqual(cat.repositories, ['mirror/charts/app', 'mirror/library/web', 'mirror/org/multi', 'mirror/team/dlist']);
  });

  test('blobs: whole, HEAD, single ranges (206), unsatisfiable and malformed ranges (416), range lists (200)', async () => {
    const layer = layerOf(web1());
    const bytes = blobBytes(layer);
    const size = bytes.length;
    const url = `/v2/library/web/blobs/${layer.descriptor.digest}`;
    const whole = await request(h, 'GET', url);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers['content-length'], String(size));
    assert.equal(whole.headers['accept-ranges'], 'bytes');
    assert.equal(digestOf(await bodyOf(whole)), layer.descriptor.digest);
    const head = await request(h, 'HEAD', url);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(size));
    assert.equal(head.body, undefined);

    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      ['bytes=1000-', 1000, size - 1],
      ['bytes=-500', size - 500, size - 1],
      [`bytes=${size - 10}-${size + 1000}`, size - 10, size - 1],
      ['bytes=1048570-1048580', 1048570, 1048580],
    ];
    for (const [range, start, end] of cases) {
      const r = await request(h, 'GET', url, { range });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${size}`, range);
      assert.equal(r.headers['content-length'], String(end - start + 1), range);
      assert.deepEqual(await bodyOf(r), bytes.subarray(start, end + 1), range);
    }
    for (const range of [`bytes=${size}-`, 'bytes=10-5', 'bytes=abc', 'bytes=-0', 'bytes=']) {
      const r = await request(h, 'GET', url, { range });
      assert.equal(r.status, 416, range);
      assert.equal(r.headers['content-range'], `bytes */${size}`, range);
    }
    assert.equal((await request(h, 'GET', url, { range: 'bytes=0-1,5-6' })).status, 200);
    assert.equal((await request(h, 'GET', url, { range: 'items=0-1' })).status, 200);
    // If-Range with another validator: the whole blob.
    assert.equal((await request(h, 'GET', url, { range: 'bytes=0-1', 'if-range': '"sha256:other"' })).status, 200);
    assert.equal((await request(h, 'GET', url, { range: 'bytes=0-1', 'if-range': `"${layer.descriptor.digest}"` })).status, 206);
  });

  test('a blob is served under every name whose images use it, and only there', async () => {
    const shared = layerOf(web1()).descriptor.digest;
    assert.equal((await request(h, 'HEAD', `/v2/library/web/blobs/${shared}`)).status, 200);
    const elsewhere = await request(h, 'GET', `/v2/org/multi/blobs/${shared}`);
    assert.equal(elsewhere.status, 404);
    assert.equal(errorCode(elsewhere), 'BLOB_UNKNOWN');
    const unknown = await request(h, 'GET', `/v2/library/web/blobs/sha256:${'0'.repeat(64)}`);
    assert.equal(errorCode(unknown), 'BLOB_UNKNOWN');
    // Manifests are blobs too.
    assert.equal((await request(h, 'GET', `/v2/library/web/blobs/${web1().root.digest}`)).status, 200);
  });

  test('tags list and catalog, with n/last pagination and Link', async () => {
    const all = await request(h, 'GET', '/v2/library/web/tags/list');
    assert.deepEqual(JSON.parse((await bodyOf(all)).toString()), { name: 'library/web', tags: ['1', '2', 'sbom'] });
    const p1 = await request(h, 'GET', '/v2/library/web/tags/list?n=2');
    assert.deepEqual(JSON.parse((await bodyOf(p1)).toString()).tags, ['1', '2']);
    assert.equal(p1.headers.link, '</v2/library/web/tags/list?n=2&last=2>; rel="next"');
    const p2 = await request(h, 'GET', '/v2/library/web/tags/list?n=2&last=2');
    assert.deepEqual(JSON.parse((await bodyOf(p2)).toString()).tags, ['sbom']);
    assert.equal(p2.headers.link, undefined);
    assert.equal(errorCode(await request(h, 'GET', '/v2/library/web/tags/list?n=x')), 'PAGINATION_NUMBER_INVALID');
    assert.equal(errorCode(await request(h, 'GET', '/v2/nope/tags/list')), 'NAME_UNKNOWN');

    const cat = JSON.parse((await bodyOf(await request(h, 'GET', '/v2/_catalog'))).toString());
    assert.deepEqual(cat.repositories, ['charts/app', 'library/web', 'org/multi', 'team/dlist']);
    const c1 = await request(h, 'GET', '/v2/_catalog?n=1&last=library/web');
    assert.deepEqual(JSON.parse((await bodyOf(c1)).toString()).repositories, ['org/multi']);
    assert.equal(c1.headers.link, '</v2/_catalog?n=1&last=org%2Fmulti>; rel="next"');
  });

  test('referrers: an index of the manifests whose subject is the digest, artifactType filter', async () => {
    const sbom = images['docker.io/library/web:sbom']!;
    const r = await request(h, 'GET', `/v2/library/web/referrers/${web1().root.digest}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], MediaType.ociIndex);
    const idx = JSON.parse((await bodyOf(r)).toString()) as { manifests: Descriptor[] };
    assert.equal(idx.manifests.length, 1);
    assert.equal(idx.manifests[0]!.digest, sbom.root.digest);
    assert.equal(idx.manifests[0]!.artifactType, 'application/vnd.example.sbom.v1');
    assert.equal(idx.manifests[0]!.size, sbom.root.size);
    const filtered = await request(h, 'GET', `/v2/library/web/referrers/${web1().root.digest}?artifactType=application/vnd.other`);
    assert.equal(filtered.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(JSON.parse((await bodyOf(filtered)).toString()).manifests, []);
    const none = await request(h, 'GET', `/v2/library/web/referrers/sha256:${'1'.repeat(64)}`);
    assert.equal(none.status, 200);
    assert.deepEqual(JSON.parse((await bodyOf(none)).toString()).manifests, []);
    assert.equal(errorCode(await request(h, 'GET', '/v2/library/web/referrers/sha256:nothex')), 'DIGEST_INVALID');
  });

  test('Accept without the index type: by tag the linux/amd64 manifest (as distribution), by digest the stored bytes', async () => {
    const multi = images['quay.io/org/multi:v1']!;
    const index = JSON.parse(blobBytes(findBlob(multi, multi.root.digest)).toString()) as { manifests: Descriptor[] };
    const amd64 = index.manifests.find((m) => m.platform?.architecture === 'amd64')!;
    const onlyManifest = { accept: MediaType.ociManifest };
    const r = await request(h, 'GET', '/v2/org/multi/manifests/v1', onlyManifest);
    assert.equal(r.status, 200);
    assert.equal(r.headers['docker-content-digest'], amd64.digest);
    assert.equal(digestOf(await bodyOf(r)), amd64.digest);
    assert.equal((await request(h, 'GET', `/v2/org/multi/manifests/${multi.root.digest}`, onlyManifest)).headers['docker-content-digest'], multi.root.digest);
    // Accept listing the index, */* or nothing at all: what is stored.
    for (const accept of [`${MediaType.ociIndex}, ${MediaType.ociManifest}`, '*/*', undefined]) {
      const rr = await request(h, 'GET', '/v2/org/multi/manifests/v1', accept ? { accept } : {});
      assert.equal(rr.headers['docker-content-digest'], multi.root.digest, String(accept));
    }
    // A Docker manifest list to a client that only takes Docker manifests.
    const dl = await request(h, 'GET', '/v2/team/dlist/manifests/3', { accept: MediaType.dockerManifest });
    assert.equal(dl.headers['content-type'], MediaType.dockerManifest);
    // A client that takes only a type the amd64 child is not: MANIFEST_UNKNOWN, like distribution.
    assert.equal(errorCode(await request(h, 'GET', '/v2/team/dlist/manifests/3', { accept: MediaType.ociManifest })), 'MANIFEST_UNKNOWN');
  });

  test('writes are refused with 405 UNSUPPORTED', async () => {
    for (const [method, path] of [
      ['PUT', '/v2/library/web/manifests/9'],
      ['DELETE', `/v2/library/web/manifests/${web1().root.digest}`],
      ['POST', '/v2/library/web/blobs/uploads/'],
      ['PATCH', '/v2/library/web/blobs/uploads/abc'],
      ['PUT', '/v2/library/web/blobs/uploads/abc?digest=sha256:x'],
      ['GET', '/v2/library/web/blobs/uploads/abc'],
      ['DELETE', `/v2/library/web/blobs/${web1().root.digest}`],
    ] as const) {
      const r = await request(h, method, path);
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal(errorCode(r), 'UNSUPPORTED');
      assert.equal(r.headers.allow, 'GET, HEAD');
    }
  });

  test('bad names, digests, tags and paths get OCI error codes, never an exception', async () => {
    const cases: [string, number, string][] = [
      ['/v2/Library/Web/manifests/1', 400, 'NAME_INVALID'],
      [`/v2/${'a/'.repeat(200)}b/manifests/1`, 400, 'NAME_INVALID'],
      ['/v2/library/web/manifests/sha256:zz', 400, 'DIGEST_INVALID'],
      ['/v2/library/web/blobs/notadigest', 400, 'DIGEST_INVALID'],
      ['/v2/library/web/manifests/nope', 404, 'MANIFEST_UNKNOWN'],
      ['/v2/library/web/manifests/.bad', 404, 'MANIFEST_UNKNOWN'],
      [`/v2/library/web/manifests/${layerOf(web1()).descriptor.digest}`, 404, 'MANIFEST_UNKNOWN'],
      ['/v2/library/nope/manifests/1', 404, 'NAME_UNKNOWN'],
      ['/v2/library/web/../../etc/passwd', 404, 'NOT_FOUND'],
      ['/v2/library%2Fweb/manifests/1', 400, 'NAME_INVALID'],
      ['/', 404, 'NOT_FOUND'],
    ];
    for (const [path, status, code] of cases) {
      const r = await request(h, 'GET', path);
      assert.equal(r.status, status, path);
      assert.equal(errorCode(r), code, path);
    }
  });

  test('If-None-Match with the digest gives 304', async () => {
    const d = web1().root.digest;
    assert.equal((await request(h, 'GET', '/v2/library/web/manifests/1', { 'if-none-match': `"${d}"` })).status, 304);
    const layer = layerOf(web1()).descriptor.digest;
    assert.equal((await request(h, 'GET', `/v2/library/web/blobs/${layer}`, { 'if-none-match': `"${layer}"` })).status, 304);
  });

  test('Basic auth: 401 with a challenge without or with wrong credentials; reads with them; writes still 405', async () => {
    const file = await htpasswdFile(join(dir, 'auth'), { alice: 's3cret' });
    const users = parseHtpasswd(await readFile(file, 'utf8'), file);
    const auth = basicAuth(users);
    const ha = createHandler({ set, catalog: buildCatalog(set.images), auth });
    const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
    for (const headers of [{}, basic('alice', 'wrong'), basic('bob', 's3cret'), { authorization: 'Bearer abc' }, { authorization: 'Basic !!!' }]) {
      const r = await request(ha, 'GET', '/v2/', headers);
      assert.equal(r.status, 401);
      assert.equal(r.headers['www-authenticate'], 'Basic realm="airlock"');
      assert.equal(errorCode(r), 'UNAUTHORIZED');
    }
    const ok = await request(ha, 'GET', '/v2/library/web/manifests/1', basic('alice', 's3cret'));
    assert.equal(ok.status, 200);
    assert.equal(ok.user, 'alice');
    assert.equal((await request(ha, 'PUT', '/v2/library/web/manifests/1')).status, 401);
    assert.equal((await request(ha, 'PUT', '/v2/library/web/manifests/1', basic('alice', 's3cret'))).status, 405);
    // Remembered: credentials that passed once are not checked against the file (bcrypt) again —
    // shown by changing alice's password under the handler: the old one still passes, as does the new.
    const changed = parseHtpasswd(await readFile(await htpasswdFile(join(dir, 'auth2'), { alice: 'changed' }), 'utf8'), 'changed');
    users.set('alice', changed.get('alice')!);
    for (let i = 0; i < 3; i++) assert.equal((await request(ha, 'HEAD', '/v2/library/web/manifests/1', basic('alice', 's3cret'))).status, 200);
    assert.equal((await request(ha, 'HEAD', '/v2/library/web/manifests/1', basic('alice', 'changed'))).status, 200);
  });

  test('htpasswd files: only bcrypt entries', () => {
    assert.throws(() => parseHtpasswd('alice:{SHA}abc\n', 'f'), /not a bcrypt hash/);
    assert.throws(() => parseHtpasswd('# nobody\n', 'f'), /no users/);
    assert.throws(() => parseHtpasswd('alice\n', 'f'), /user:hash/);
  });

  test('two originals landing on one served name and tag are refused, as push refuses them', () => {
    const img = { name: '', root: web1().root, bundle: '', digests: new Set<string>() };
    assert.throws(
      () =>
        buildCatalog([
          { ...img, name: 'docker.io/x/app:1', reference: parseReference('docker.io/x/app:1') },
          { ...img, name: 'quay.io/x/app:1', reference: parseReference('quay.io/x/app:1') },
        ]),
      { name: 'ConflictError', code: 'TARGET_CONFLICT', exitCode: ExitCode.conflict, message: /docker\.io\/x\/app:1 and quay\.io\/x\/app:1 would both be/ },
    );
  });

  test('a base and an update served as one: the update wins the tag, the old digest stays pullable', async () => {
    const next = buildImage({ baseLayers: layersOf(web1()).slice(0, 1), layers: [{ files: { 'srv/index.html': '<h1>v1.1</h1>' } }] });
    const extra = buildImage({ layers: [{ files: { 'etc/new': 'yes' } }] });
    await writeFixtureBundle(join(dir, 'update.tar'), { 'docker.io/library/web:1': next, 'docker.io/library/new:1': extra }, { version: '1.1.0' });
    const both = await openBundleSet([join(dir, 'b.tar'), join(dir, 'update.tar')]);
    try {
      const hb = createHandler({ set: both, catalog: buildCatalog(both.images, '', both.shadowed) });
      assert.equal((await request(hb, 'HEAD', '/v2/library/web/manifests/1')).headers['docker-content-digest'], next.root.digest);
      assert.equal((await request(hb, 'HEAD', `/v2/library/web/manifests/${web1().root.digest}`)).status, 200);
      assert.equal((await request(hb, 'HEAD', '/v2/library/web/manifests/2')).status, 200);
      assert.equal((await request(hb, 'HEAD', '/v2/library/new/manifests/1')).status, 200);
      assert.equal((await request(hb, 'HEAD', '/v2/org/multi/manifests/v1')).status, 200);
    } finally {
      await both.close();
    }
  });
});

describe('Range header parsing', () => {
  test('table', () => {
    const size = 1000;
    const cases: [string | undefined, ReturnType<typeof parseRange>][] = [
      [undefined, { kind: 'none' }],
      ['bytes=0-0', { kind: 'range', start: 0, end: 0 }],
      ['bytes=0-999', { kind: 'range', start: 0, end: 999 }],
      ['bytes=0-5000', { kind: 'range', start: 0, end: 999 }],
      ['bytes=999-', { kind: 'range', start: 999, end: 999 }],
      ['bytes=-1', { kind: 'range', start: 999, end: 999 }],
      ['bytes=-5000', { kind: 'range', start: 0, end: 999 }],
      [' bytes = 5-9 ', { kind: 'range', start: 5, end: 9 }],
      ['bytes=1000-', { kind: 'unsatisfiable' }],
      ['bytes=5-4', { kind: 'unsatisfiable' }],
      ['bytes=-0', { kind: 'unsatisfiable' }],
      ['bytes=-', { kind: 'unsatisfiable' }],
      ['bytes=a-b', { kind: 'unsatisfiable' }],
      ['bytes', { kind: 'unsatisfiable' }],
      ['bytes=0-1,3-4', { kind: 'none' }],
      ['bytes=0-1,x', { kind: 'unsatisfiable' }],
      ['pages=1-2', { kind: 'none' }],
      ['bytes=0-99999999999999999999', { kind: 'range', start: 0, end: 999 }],
    ];
    for (const [h, want] of cases) assert.deepEqual(parseRange(h, size), want, String(h));
    assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' });
  });
});
