// `airlock serve` as a user runs it, read by real clients: skopeo (every image, digests kept,
// multi-platform with --all), undici for ranges and raw protocol, helm pull oci://, a raw socket
// for malformed requests; writes refused; TLS + htpasswd; a port in use; a graceful stop.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { digestOf } from '../../src/core/digest.ts';
import { MediaType } from '../../src/core/manifest.ts';
import { airlock } from '../helpers/cli.ts';
import { blobBytes, buildArtifact, buildImage, layersOf, type BuiltImage } from '../helpers/images.ts';
import { skopeo, skopeoDigest } from '../helpers/skopeo.ts';
import { htpasswdFile, makeCa, makeServerCert } from '../helpers/tls.ts';
import { helmPath } from '../helpers/helm.ts';
import { startServer } from '../../src/serve/server.ts';
import { fixtureImages, writeFixtureBundle } from './fixture.ts';
import { startServe, type RunningServe } from '../helpers/serve.ts';
import { until, within } from '../helpers/wait.ts';

/** Does a TCP connection to `port` get refused or reset unaccepted (true), or accepted (false, closed again at once)? */
function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    // A reset on connect: the listener closed with this connection still in its backlog, never accepted.
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' ? resolve(true) : reject(e)));
  });
}

/**
 * A GET on its own connection, read raw: `continued` resolves when the server answered "100
 * Continue" (with `expectContinue`), `answer` with the final status and headers (the body is not read).
 */
function rawGet(port: number, path: string, opts: { expectContinue?: boolean } = {}): { continued: Promise<void>; answer: Promise<{ status: number; headers: Record<string, string> }> } {
  const s = connect(port, '127.0.0.1');
  let got = '';
  let onContinue!: () => void;
  const continued = new Promise<void>((r) => (onContinue = r));
  const answer = new Promise<{ status: number; headers: Record<string, string> }>((resolve, reject) => {
    s.on('error', reject);
    s.on('close', () => reject(new Error(`connection closed before an answer to ${path}: ${JSON.stringify(got.slice(0, 200))}`)));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      for (;;) {
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        const [statusLine, ...lines] = got.slice(0, end).split('\r\n');
        got = got.slice(end + 4);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1]);
        if (status === 100) {
          onContinue();
          continue;
        }
        resolve({ status, headers: Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()])) });
        s.destroy();
        return;
      }
    });
  });
  s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${opts.expectContinue ? 'Expect: 100-continue\r\n' : ''}Connection: close\r\n\r\n`);
  return { continued, answer };
}

const exec = promisify(execFile);

/** A real chart packaged by helm, as the OCI artifact `helm push` makes. */
async function helmChartArtifact(dir: string): Promise<BuiltImage> {
  const helm = helmPath();
  await exec(helm, ['create', 'demo'], { cwd: dir });
  await exec(helm, ['package', 'demo', '--version', '0.1.0'], { cwd: dir });
  const tgz = await readFile(join(dir, 'demo-0.1.0.tgz'));
  const config = Buffer.from(JSON.stringify({ apiVersion: 'v2', name: 'demo', version: '0.1.0', type: 'application' }));
  const art = buildArtifact({ artifactType: MediaType.helmConfig, files: [{ mediaType: MediaType.helmChart, bytes: tgz }] });
  // helm wants its config document as the config blob, not the empty descriptor.
  const cfg = { descriptor: { mediaType: MediaType.helmConfig, digest: digestOf(config), size: config.length }, bytes: config };
  const layer = art.blobs.find((b) => b.descriptor.mediaType === MediaType.helmChart)!;
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: cfg.descriptor, layers: [layer.descriptor] }));
  const root = { mediaType: MediaType.ociManifest, digest: digestOf(manifest), size: manifest.length };
  return { root, blobs: [cfg, layer, { descriptor: root, bytes: manifest }], platforms: [] };
}

describe('airlock serve (plain HTTP)', () => {
  let dir: string;
  let images: Record<string, BuiltImage>;
  let srv: RunningServe;
  let bundle: string;
  const agent = new Agent({ connections: 8 });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-serve-e2e-'));
    images = { ...fixtureImages(), 'registry.example.com/charts/demo:0.1.0': await helmChartArtifact(dir) };
    bundle = join(dir, 'bundle.tar');
    await writeFixtureBundle(bundle, images);
    srv = await startServe([bundle, '--listen', '127.0.0.1:0']);
  });
  after(async () => {
    await srv?.stop();
    await agent.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('prints where it listens and what it serves', () => {
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(srv.port > 0);
    const served = (srv.listening.images as { image: string; served: string }[]).map((i) => `${i.image} -> ${i.served}`);
    assert.ok(served.includes('docker.io/library/web:1 -> library/web:1'), served.join('\n'));
    assert.ok(served.includes('quay.io/org/multi:v1 -> org/multi:v1'));
  });

  test('skopeo reads every image with the digests of the bundle; --all copies a multi-platform index whole', async () => {
    for (const [ref, img] of Object.entries(images)) {
      const path = ref.slice(ref.indexOf('/') + 1);
      assert.equal(await skopeoDigest(`docker://${srv.host}/${path}`), img.root.digest, ref);
    }
    const out = join(dir, 'copy-multi');
    await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${srv.host}/org/multi:v1`, `oci:${out}:multi`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]!.digest, images['quay.io/org/multi:v1']!.root.digest);
    // Every blob of both platforms arrived, each with its digest as its name (skopeo verified them).
    const want = images['quay.io/org/multi:v1']!.blobs.map((b) => b.descriptor.digest.slice(7)).sort();
    assert.deepEqual((await readdir(join(out, 'blobs', 'sha256'))).sort(), want);
    // A Docker manifest list too.
    const dl = join(dir, 'copy-dlist');
    await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${srv.host}/team/dlist:3`, `dir:${dl}`]);
    assert.equal(digestOf(await readFile(join(dl, 'manifest.json'))), images['ghcr.io/team/dlist:3']!.root.digest);
  });

  test('skopeo lists tags; the catalog lists every repository', async () => {
    const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${srv.host}/library/web`])) as { Tags: string[] };
    assert.deepEqual(tags.Tags.sort(), ['1', '2', 'sbom']);
    const res = await request(`${srv.url}/v2/_catalog`, { dispatcher: agent });
    assert.deepEqual(((await res.body.json()) as { repositories: string[] }).repositories, ['charts/app', 'charts/demo', 'library/web', 'org/multi', 'team/dlist']);
  });

  test('Range requests over HTTP: 206 with the exact bytes, 416 past the end', async () => {
    const layer = layersOf(images['docker.io/library/web:1']!)[0]!;
    const bytes = blobBytes(layer);
    const url = `${srv.url}/v2/library/web/blobs/${layer.descriptor.digest}`;
    const r = await request(url, { headers: { range: 'bytes=1000-1048575' }, dispatcher: agent });
    assert.equal(r.statusCode, 206);
    assert.equal(r.headers['content-range'], `bytes 1000-1048575/${bytes.length}`);
    assert.deepEqual(Buffer.from(await r.body.arrayBuffer()), bytes.subarray(1000, 1048576));
    const bad = await request(url, { headers: { range: `bytes=${bytes.length}-` }, dispatcher: agent });
    assert.equal(bad.statusCode, 416);
    await bad.body.dump();
    const whole = await request(url, { dispatcher: agent });
    assert.equal(digestOf(Buffer.from(await whole.body.arrayBuffer())), layer.descriptor.digest);
  });

  test('mirror requests by original name (?ns=) over HTTP', async () => {
    const r = await request(`${srv.url}/v2/library/web/manifests/1?ns=docker.io`, { method: 'HEAD', dispatcher: agent, headers: { accept: MediaType.ociManifest } });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['docker-content-digest'], images['docker.io/library/web:1']!.root.digest);
    await r.body.dump();
  });

  test('helm pull oci:// gets the chart', async () => {
    const into = join(dir, 'helm-pull');
    await mkdir(into);
    const env = { ...process.env, HELM_CACHE_HOME: join(dir, 'helm', 'cache'), HELM_CONFIG_HOME: join(dir, 'helm', 'config'), HELM_DATA_HOME: join(dir, 'helm', 'data') };
    await exec(helmPath(), ['pull', `oci://${srv.host}/charts/demo`, '--version', '0.1.0', '--plain-http', '-d', into], { env, timeout: 60_000 });
    const pulled = await readFile(join(into, 'demo-0.1.0.tgz'));
    const chart = images['registry.example.com/charts/demo:0.1.0']!;
    const layer = chart.blobs.find((b) => b.descriptor.mediaType === MediaType.helmChart)!;
    assert.deepEqual(pulled, blobBytes(layer));
  });

  test('writes are refused: skopeo copy into it fails with 405 / UNSUPPORTED', async () => {
    const src = join(dir, 'copy-multi');
    await assert.rejects(
      skopeo(['copy', '--dest-tls-verify=false', `oci:${src}:multi`, `docker://${srv.host}/library/pushed:1`]),
      (e: Error) => /405|UNSUPPORTED|not allowed|unsupported/i.test(e.message),
    );
    const del = await request(`${srv.url}/v2/library/web/manifests/${images['docker.io/library/web:1']!.root.digest}`, { method: 'DELETE', dispatcher: agent });
    assert.equal(del.statusCode, 405);
    assert.equal(((await del.body.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNSUPPORTED');
    const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${srv.host}/library/web`])) as { Tags: string[] };
    assert.deepEqual(tags.Tags.sort(), ['1', '2', 'sbom']);
  });

  test('malformed requests get 4xx answers and never kill the server', async () => {
    const raw = async (payload: string): Promise<string> =>
      await new Promise((resolve) => {
        const s = connect(srv.port, '127.0.0.1');
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
        s.setTimeout(3000, () => s.destroy());
        s.end(payload);
      });
    assert.match(await raw('GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw('GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw(`GET /v2/${'a'.repeat(100_000)}/manifests/1 HTTP/1.1\r\nHost: x\r\n\r\n`), /^HTTP\/1\.1 4\d\d/);
    assert.match(await raw('GET http://evil.example/v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw('GET /v2/library/web/manifests/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 404/);
    const codes = [];
    for (const path of ['/v2/Bad/manifests/1', '/v2/library/web/blobs/sha256:1', '/v2/library/none/tags/list', '/v2/library/web/manifests/none']) {
      const r = await request(`${srv.url}${path}`, { dispatcher: agent });
      codes.push(`${r.statusCode} ${((await r.body.json()) as { errors: { code: string }[] }).errors[0]!.code}`);
    }
    assert.deepEqual(codes, ['400 NAME_INVALID', '400 DIGEST_INVALID', '404 NAME_UNKNOWN', '404 MANIFEST_UNKNOWN']);
    const alive = await request(`${srv.url}/v2/`, { dispatcher: agent });
    assert.equal(alive.statusCode, 200);
    await alive.body.dump();
  });

  test('clients that go away in the middle of a blob do not hurt the server', async () => {
    const layer = layersOf(images['docker.io/library/web:1']!)[0]!;
    const url = `${srv.url}/v2/library/web/blobs/${layer.descriptor.digest}`;
    for (let i = 0; i < 8; i++) {
      const quitter = new Agent({ connections: 1 });
      const res = await request(url, { dispatcher: quitter, highWaterMark: 1024 });
      for await (const _ of res.body) break; // one chunk, then hang up
      await quitter.destroy();
    }
    const whole = await request(url, { dispatcher: agent });
    assert.equal(digestOf(Buffer.from(await whole.body.arrayBuffer())), layer.descriptor.digest);
  });

  test('an access log line per request on stderr (NDJSON with --json)', () => {
    const lines = srv
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const access = lines.filter((l) => l.type === 'access');
    assert.ok(access.length > 10);
    assert.ok(access.some((l) => l.method === 'GET' && l.status === 206 && typeof l.path === 'string' && (l.path as string).includes('/blobs/')));
    assert.ok(access.some((l) => l.status === 405));
  });

  test('a second serve on the same port: a clear error naming the address, with a hint', async () => {
    const r = await airlock(['serve', bundle, '--listen', `127.0.0.1:${srv.port}`], { timeoutMs: 30_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${srv.port}.*already in use`));
    assert.match(r.stderr, /hint: .*--listen 127\.0\.0\.1:\d+/);
  });

  test('not a bundle, a missing bundle: clear errors', async () => {
    const notBundle = join(dir, 'not-a-bundle.tar');
    await writeFile(notBundle, 'hello');
    const r1 = await airlock(['serve', notBundle, '--listen', '127.0.0.1:0']);
    assert.notEqual(r1.code, 0);
    assert.match(r1.stderr, /not a tar archive|not an airlock bundle/);
    const r2 = await airlock(['serve', join(dir, 'missing.tar'), '--listen', '127.0.0.1:0']);
    assert.equal(r2.code, 3);
    assert.match(r2.stderr, /does not exist/);
  });
});

describe('airlock serve with TLS and htpasswd', () => {
  let dir: string;
  let images: Record<string, BuiltImage>;
  let bundle: string;
  let srv: RunningServe;
  let certDir: string;
  let cert: { certFile: string; keyFile: string };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-serve-tls-'));
    images = fixtureImages();
    bundle = join(dir, 'bundle.tar');
    await writeFixtureBundle(bundle, images);
    const ca = await makeCa(join(dir, 'ca'));
    cert = await makeServerCert(ca, { ips: ['127.0.0.1'], dns: ['localhost'] });
    certDir = join(dir, 'certs');
    await mkdir(certDir);
    await writeFile(join(certDir, 'ca.crt'), await readFile(ca.certFile));
    const htpasswd = await htpasswdFile(join(dir, 'auth'), { alice: 'wonder land' });
    srv = await startServe([bundle, '--listen', '127.0.0.1:0', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile, '--htpasswd', htpasswd]);
  });
  after(async () => {
    await srv?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('skopeo with --cert-dir and --creds reads images; without credentials it is refused', async () => {
    assert.match(srv.url, /^https:\/\//);
    const tls = ['--cert-dir', certDir];
    assert.equal(await skopeoDigest(`docker://${srv.host}/library/web:1`, [...tls, '--creds', 'alice:wonder land']), images['docker.io/library/web:1']!.root.digest);
    const out = join(dir, 'copy');
    await skopeo(['copy', '--all', '--preserve-digests', '--src-cert-dir', certDir, '--src-creds', 'alice:wonder land', `docker://${srv.host}/org/multi:v1`, `oci:${out}:m`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]!.digest, images['quay.io/org/multi:v1']!.root.digest);
    await assert.rejects(skopeoDigest(`docker://${srv.host}/library/web:1`, tls), /401|unauthorized|authentication required/i);
    await assert.rejects(skopeoDigest(`docker://${srv.host}/library/web:1`, [...tls, '--creds', 'alice:nope']), /401|unauthorized|authentication required/i);
  });

  test('the access log names the user and never the password', () => {
    const err = srv.stderr();
    assert.match(err, /"user":"alice"/);
    assert.doesNotMatch(err, /wonder land|d29uZGVy/);
  });

  test('unreadable or mismatched certificates: clear errors before listening', async () => {
    const missing = await airlock(['serve', bundle, '--listen', '127.0.0.1:0', '--tls-cert', join(dir, 'nope.crt'), '--tls-key', cert.keyFile]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /TLS certificate .*nope\.crt does not exist/);
    const garbage = join(dir, 'garbage.pem');
    await writeFile(garbage, 'not a certificate');
    const bad = await airlock(['serve', bundle, '--listen', '127.0.0.1:0', '--tls-cert', garbage, '--tls-key', cert.keyFile]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /cannot be used/);
    if (process.geteuid?.() !== 0) {
      const locked = join(dir, 'locked.key');
      await writeFile(locked, await readFile(cert.keyFile));
      await chmod(locked, 0o000);
      const r = await airlock(['serve', bundle, '--listen', '127.0.0.1:0', '--tls-cert', cert.certFile, '--tls-key', locked]);
      assert.match(r.stderr, /cannot read TLS key/);
    }
    const half = await airlock(['serve', bundle, '--listen', '127.0.0.1:0', '--tls-cert', cert.certFile]);
    assert.equal(half.code, 2);
    assert.match(half.stderr, /--tls-cert and --tls-key go together/);
  });
});

describe('airlock serve under load and when stopped', () => {
  let dir: string;
  let big: BuiltImage;
  let bundle: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-serve-load-'));
    // Larger than loopback socket buffers: a response to a client that does not read stays in flight.
    big = buildImage({ layers: [{ random: { bytes: 32 * 1024 * 1024, seed: 77 } }] });
    bundle = join(dir, 'b.tar');
    await writeFixtureBundle(bundle, { 'docker.io/library/big:1': big });
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('responses in flight are bounded: beyond the limit requests wait, beyond the queue 503', async () => {
    const running = await startServer({ bundles: [bundle], listen: '127.0.0.1:0', maxConcurrent: 1, maxQueued: 1 });
    const agent = new Agent({ connections: 4 });
    try {
      const layer = layersOf(big)[0]!;
      const url = `${running.url}/v2/library/big/blobs/${layer.descriptor.digest}`;
      const first = await request(url, { dispatcher: agent });
      // The server answers "100 Continue" as it hands the request on: then it waits in the queue.
      const queued = rawGet(running.port, '/v2/library/big/manifests/1', { expectContinue: true });
      await within(queued.continued, 10_000, 'the second request to reach the server');
      const refused = await request(`${running.url}/v2/`, { dispatcher: agent });
      assert.equal(refused.statusCode, 503);
      assert.equal(((await refused.body.json()) as { errors: { code: string }[] }).errors[0]!.code, 'TOOMANYREQUESTS');
      assert.equal(digestOf(Buffer.from(await first.body.arrayBuffer())), layer.descriptor.digest);
      const second = await within(queued.answer, 10_000, 'the queued request\'s answer');
      assert.equal(second.status, 200);
      assert.equal(second.headers['docker-content-digest'], big.root.digest);
    } finally {
      await agent.close();
      await running.close();
    }
  });

  test('SIGTERM during a download: no new connections, the response in flight completes, then exit 0', async () => {
    let srv: RunningServe | undefined;
    try {
      srv = await startServe([bundle, '--listen', '127.0.0.1:0']);
      const layer = layersOf(big)[0]!;
      const res = await request(`${srv.url}/v2/library/big/blobs/${layer.descriptor.digest}`);
      const stopping = srv.stop('SIGTERM');
      // Stopped accepting while the first response is still being sent: a new connection is
      // refused once the signal has arrived (asked until then, on a fresh connection each time).
      const port = srv.port;
      await until(() => connectionRefused(port), 'new connections to be refused after SIGTERM');
      const body = Buffer.from(await res.body.arrayBuffer());
      assert.equal(body.length, layer.descriptor.size);
      assert.equal(digestOf(body), layer.descriptor.digest);
      assert.equal(await stopping, 0);
      assert.match(srv.stdout(), /"stopped":true/);
    } finally {
      await srv?.stop('SIGKILL');
    }
  });
});
