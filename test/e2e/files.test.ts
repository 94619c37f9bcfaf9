// Files carried beside the images (`files:` in airlock.yaml), as a user meets them: a k3s-style
// binary from an HTTP server of our own on loopback and an install script and a licence from local
// paths; locked (sha256 pinned, the download kept for pack), packed as OCI artifacts, verified,
// listed by inspect; written out by `extract --files` byte for byte with their modes; downloaded
// from `serve` with curl; pushed into a real docker-registry and fetched back with a plain HTTP
// client. A URL whose content changed after lock fails pack naming the file; hostile names are
// refused at lock; extract never writes outside its folder; a damaged file fails verify naming it,
// and serve never sends it whole.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildImage, seedRegistry } from '../helpers/images.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { startServe } from '../helpers/serve.ts';
import { flipBlobByte, rewriteTar } from '../helpers/tamper.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

/** curl as a user runs it: exit code, status, the body it kept, the headers. */
function curl(url: string, extra: string[] = []): Promise<{ exit: number; status: number; body: Buffer; headers: string }> {
  return new Promise((resolve) => {
    const headersFile = join(tmpdir(), `airlock-curl-${process.pid}-${Math.random().toString(16).slice(2)}`);
    execFile('curl', ['-sS', '--max-time', '60', '-D', headersFile, '-o', '-', '-w', '\n%{http_code}', ...extra, url], { encoding: 'buffer', maxBuffer: 64 * MiB }, (err, stdout) => {
      const nl = stdout.lastIndexOf(0x0a);
      void readFile(headersFile, 'utf8')
        .catch(() => '')
        .then(async (headers) => {
          await rm(headersFile, { force: true });
          resolve({ exit: err ? Number((err as { code?: number }).code ?? 1) : 0, status: Number(stdout.subarray(nl + 1).toString()), body: stdout.subarray(0, nl), headers });
        });
    });
  });
}

describe('files carried beside the images', () => {
  let reg: RunningRegistry;
  let http: Server;
  let httpUrl: string;
  let requests = 0;
  /** What the HTTP server answers for /k3s (the test changes it). */
  let served: Buffer;
  let dir: string;
  let bundle: string;
  const k3s = Buffer.concat([Buffer.from('\x7fELF stand-in k3s\n'), createHash('sha512').update('k3s').digest(), Buffer.alloc(3 * MiB + 17, 0x6b)]);
  const install = Buffer.from('#!/bin/sh\n# stand-in for get.k3s.io\nset -e\ninstall -m 0755 k3s /usr/local/bin/k3s\n');
  const licence = Buffer.from('Apache License, Version 2.0\n');
  const env = (more: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '', ...more });
  const run = (args: string[], more: NodeJS.ProcessEnv = {}) => airlock(args, { env: env(more), timeoutMs: 180_000 });
  const spec = (name: string, files: string[]): Promise<string> =>
    writeFile(join(dir, name), ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: edge, version: 1.0.0}', 'images:', `  - ${reg.host}/edge/agent:1`, 'files:', ...files, ''].join('\n')).then(() => join(dir, name));
  const FILES = [
    '  - name: k3s',
    '    url: URL/k3s',
    '    version: v1.30.2+k3s1',
    '    mode: 0755',
    '  - {name: install.sh, path: scripts/install.sh, mode: 0755}',
    '  - {name: LICENSE, path: LICENSE}',
  ];

  before(async () => {
    reg = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'airlock-files-e2e-'));
    served = k3s;
    http = createServer((req, res) => {
      requests++;
      if (req.url !== '/k3s') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(served.length) }).end(served);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const addr = http.address();
    assert.ok(addr && typeof addr === 'object');
    httpUrl = `http://127.0.0.1:${addr.port}`;
    await seedRegistry(reg.url, 'edge/agent', '1', buildImage({ layers: [{ files: { 'etc/agent.conf': 'port=9000\n' } }] }));
    await mkdir(join(dir, 'scripts'));
    await writeFile(join(dir, 'scripts', 'install.sh'), install, { mode: 0o755 });
    await writeFile(join(dir, 'LICENSE'), licence, { mode: 0o600 });
    await spec('airlock.yaml', FILES.map((l) => l.replace('URL', httpUrl)));
    bundle = join(dir, 'edge.tar');
  });
  after(async () => {
    await reg?.stop();
    await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('lock pins each file by sha256 and size, sorted; the download is kept, so pack does not fetch it again', async () => {
    const r = await run(['lock', '-f', join(dir, 'airlock.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(requests, 1, 'lock downloaded the URL once');
    const files = resultOf(r.stdout).files as { name: string; digest: string; size: number; mode: number; reference: string }[];
    assert.deepEqual(
      files.map((f) => [f.name, f.digest, f.size, f.mode, f.reference]),
      [
        ['LICENSE', `sha256:${sha(licence)}`, licence.length, 0o644, `localhost/files/license:${sha(licence).slice(0, 12)}`],
        ['install.sh', `sha256:${sha(install)}`, install.length, 0o755, `localhost/files/install.sh:${sha(install).slice(0, 12)}`],
        ['k3s', `sha256:${sha(k3s)}`, k3s.length, 0o755, 'localhost/files/k3s:v1.30.2_k3s1'],
      ],
    );
    const text = await readFile(join(dir, 'airlock.lock'), 'utf8');
    assert.match(text, new RegExp(`  - name: k3s\\n    url: ${httpUrl}/k3s\\n    version: v1.30.2\\+k3s1\\n    mode: "0755"\\n    digest: sha256:${sha(k3s)}\\n    size: ${k3s.length}\\n`));

    const p = await run(['pack', '-f', join(dir, 'airlock.yaml'), '-o', bundle, '--json']);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(requests, 1, 'pack took the file from the cache');
    assert.equal(resultOf(p.stdout).carriedFiles, 3);
    assert.equal(resultOf(p.stdout).images, 1);
    const again = await run(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'again.tar')]);
    assert.equal(again.code, 0, again.stderr);
    assert.ok((await readFile(bundle)).equals(await readFile(join(dir, 'again.tar'))), 'the same lock packs the same bytes');
  });

  test('verify checks every file; inspect lists them apart from the images', async () => {
    const v = await run(['verify', bundle, '--json']);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(resultOf(v.stdout).files, 3);
    const i = await run(['inspect', bundle, '--json']);
    assert.equal(i.code, 0, i.stderr);
    const info = resultOf(i.stdout);
    assert.deepEqual(info.images.map((x: { reference: string }) => x.reference), [`${reg.host}/edge/agent:1`]);
    assert.deepEqual(
      info.files.map((f: Record<string, unknown>) => [f.name, f.mode, f.size, f.digest]),
      [
        ['LICENSE', '0644', licence.length, `sha256:${sha(licence)}`],
        ['install.sh', '0755', install.length, `sha256:${sha(install)}`],
        ['k3s', '0755', k3s.length, `sha256:${sha(k3s)}`],
      ],
    );
    const human = await run(['inspect', bundle]);
    assert.match(human.stdout, /FILE\s+MODE\s+SIZE\s+SHA256\s+REFERENCE\n.*LICENSE\s+0644/);
  });

  test('extract --files writes them byte for byte with their modes; same bytes are left, other bytes need --force (exit 8)', async () => {
    const out = join(dir, 'extracted');
    const r = await run(['extract', bundle, '--files', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(resultOf(r.stdout).files.map((f: { name: string; action: string }) => `${f.name} ${f.action}`), ['LICENSE written', 'install.sh written', 'k3s written']);
    assert.deepEqual((await readdir(out)).sort(), ['LICENSE', 'install.sh', 'k3s']);
    for (const [name, bytes, mode] of [['k3s', k3s, 0o755], ['install.sh', install, 0o755], ['LICENSE', licence, 0o644]] as const) {
      assert.ok((await readFile(join(out, name))).equals(bytes), name);
      assert.equal(await modeOf(join(out, name)), mode, name);
    }

    const same = await run(['extract', bundle, '--files', out, '--json']);
    assert.equal(same.code, 0, same.stderr);
    assert.deepEqual(resultOf(same.stdout).files.map((f: { action: string }) => f.action), ['unchanged', 'unchanged', 'unchanged']);

    await writeFile(join(out, 'install.sh'), '#!/bin/sh\necho edited\n');
    await chmod(join(out, 'LICENSE'), 0o600);
    const refused = await run(['extract', bundle, '--files', out]);
    assert.equal(refused.code, 8, refused.stderr);
    assert.match(refused.stderr, /a file in .*extracted already exists with other content: install\.sh; nothing was written/);
    assert.match(refused.stderr, /--force/);
    assert.equal((await readFile(join(out, 'install.sh'), 'utf8')), '#!/bin/sh\necho edited\n');
    assert.equal(await modeOf(join(out, 'LICENSE')), 0o600, 'nothing was touched');

    const forced = await run(['extract', bundle, '--files', out, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok((await readFile(join(out, 'install.sh'))).equals(install));
    assert.equal(await modeOf(join(out, 'install.sh')), 0o755);
    assert.equal(await modeOf(join(out, 'LICENSE')), 0o644, 'the mode is set again');
  });

  test('serve offers each file to curl, byte for byte, with a list of them', async () => {
    const srv = await startServe([bundle, '--listen', '127.0.0.1:0'], { env: env() });
    try {
      assert.deepEqual(srv.listening.files.map((f: { url: string }) => f.url), [`${srv.url}/files/LICENSE`, `${srv.url}/files/install.sh`, `${srv.url}/files/k3s`]);
      for (const [name, bytes] of [['k3s', k3s], ['install.sh', install], ['LICENSE', licence]] as const) {
        const got = await curl(`${srv.url}/files/${name}`);
        assert.equal(got.exit, 0, name);
        assert.equal(got.status, 200, name);
        assert.ok(got.body.equals(bytes), name);
        assert.match(got.headers, new RegExp(`content-length: ${bytes.length}\\r\\n`, 'i'));
        assert.match(got.headers, /content-type: application\/octet-stream\r\n/i);
        assert.match(got.headers, new RegExp(`content-disposition: attachment; filename="${name.replace('.', '\\.')}"\\r\\n`, 'i'));
      }
      // curl -O names the file from the URL: what a node being bootstrapped runs.
      const node = join(dir, 'node');
      await mkdir(node);
      await new Promise<void>((res, rej) => execFile('curl', ['-fsSO', `${srv.url}/files/k3s`], { cwd: node }, (e) => (e ? rej(e) : res())));
      assert.ok((await readFile(join(node, 'k3s'))).equals(k3s));
      const list = JSON.parse((await curl(`${srv.url}/files/`)).body.toString()) as { files: { name: string; mode: string; size: number; digest: string; url: string }[] };
      assert.deepEqual(list.files.map((f) => [f.name, f.mode, f.size, f.url]), [
        ['LICENSE', '0644', licence.length, '/files/LICENSE'],
        ['install.sh', '0755', install.length, '/files/install.sh'],
        ['k3s', '0755', k3s.length, '/files/k3s'],
      ]);
      const none = await curl(`${srv.url}/files/k3s-arm64`);
      assert.equal(none.status, 404);
      assert.match((JSON.parse(none.body.toString()) as { errors: { message: string }[] }).errors[0]!.message, /^no file "k3s-arm64" in the bundles served; they carry LICENSE, install\.sh, k3s$/);
    } finally {
      await srv.stop();
    }
  });

  test('push puts each file at R/P/files/NAME:TAG as an OCI artifact; a plain HTTP client gets the bytes back', async () => {
    const r = await run(['push', bundle, `${reg.host}/site`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const pushed = resultOf(r.stdout).images as { kind: string; target: string }[];
    assert.deepEqual(pushed.filter((p) => p.kind === 'file').map((p) => p.target), [
      `${reg.host}/site/files/install.sh:${sha(install).slice(0, 12)}`,
      `${reg.host}/site/files/k3s:v1.30.2_k3s1`,
      `${reg.host}/site/files/license:${sha(licence).slice(0, 12)}`,
    ]);
    for (const [repo, tag, name, bytes, mode] of [
      ['k3s', 'v1.30.2_k3s1', 'k3s', k3s, '0755'],
      ['install.sh', sha(install).slice(0, 12), 'install.sh', install, '0755'],
      ['license', sha(licence).slice(0, 12), 'LICENSE', licence, '0644'],
    ] as const) {
      const m = await fetch(`${reg.url}/v2/site/files/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(m.status, 200, repo);
      const manifest = (await m.json()) as { artifactType: string; config: { mediaType: string }; layers: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }[] };
      assert.equal(manifest.artifactType, 'application/vnd.airlock.file.v1');
      assert.equal(manifest.config.mediaType, 'application/vnd.oci.empty.v1+json');
      assert.equal(manifest.layers.length, 1);
      const layer = manifest.layers[0]!;
      assert.deepEqual([layer.mediaType, layer.digest, layer.size], ['application/octet-stream', `sha256:${sha(bytes)}`, bytes.length]);
      assert.deepEqual(layer.annotations, { 'org.opencontainers.image.title': name, 'dev.airlock.file.mode': mode });
      const blob = await fetch(`${reg.url}/v2/site/files/${repo}/blobs/${layer.digest}`);
      assert.equal(blob.status, 200);
      assert.ok(Buffer.from(await blob.arrayBuffer()).equals(bytes), repo);
    }
  });

  test('a URL whose content changed after lock fails pack, naming the file; nothing is written', async () => {
    served = Buffer.concat([k3s.subarray(0, 1000), Buffer.from('a new build'), k3s.subarray(1011)]);
    try {
      const out = join(dir, 'changed.tar');
      // Another machine (an empty cache) packs the committed lock.
      const r = await run(['pack', '-f', join(dir, 'airlock.yaml'), '-o', out], { AIRLOCK_CACHE: join(dir, 'other-cache') });
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, new RegExp(`error: file k3s: ${httpUrl}/k3s no longer serves what was locked: it is now sha256:${sha(served)} \\(3\\.0 MiB\\); airlock\\.lock pins sha256:${sha(k3s)}`));
      assert.match(r.stderr, /hint: .*run `airlock lock` to accept the new content/);
      await assert.rejects(stat(out), { code: 'ENOENT' });
    } finally {
      served = k3s;
    }
  });

  test('hostile names are refused at lock, naming the entry; nothing is fetched or written', async () => {
    await mkdir(join(dir, 'hostile'));
    for (const [name, why] of [
      ['../x', 'it must be a plain file name, without / or \\\\'],
      ['/etc/passwd', 'it must be a plain file name, without / or \\\\'],
      ['.hidden', 'it must not start with "\\." \\(hidden files, \\. and \\.\\. are refused\\)'],
    ]) {
      const before = requests;
      const file = await spec('hostile/airlock.yaml', [`  - {name: ${JSON.stringify(name)}, url: ${httpUrl}/k3s}`]);
      const r = await run(['lock', '-f', file]);
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      const quoted = name!.replace(/[./]/g, '\\$&');
      assert.match(r.stderr, new RegExp(`hostile/airlock\\.yaml: files\\[0\\] \\(${quoted}\\): the name "${quoted}" is not a safe file name: ${why}`), name);
      assert.equal(requests, before, `${name}: nothing fetched`);
      await assert.rejects(stat(join(dir, 'hostile', 'airlock.lock')), { code: 'ENOENT' });
    }
  });

  test('extract writes nothing outside its folder: a hostile name in a bundle is refused, a link in the folder is replaced, not followed', async () => {
    const hostile = join(dir, 'hostile.tar');
    await rewriteTar(bundle, hostile, () => true, (name, content) => (name === 'airlock/inventory.json' ? Buffer.from(content.toString('utf8').replace('"name": "install.sh"', '"name": "../x.sh"')) : content));
    const folder = join(dir, 'deep', 'into');
    const r = await run(['extract', hostile, '--files', folder]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /the file "\.\.\/x\.sh" is not extracted: its name is not a safe file name: it must be a plain file name, without \/ or \\; nothing was written/);
    await assert.rejects(stat(join(dir, 'deep', 'x.sh')), { code: 'ENOENT' });
    await assert.rejects(stat(folder), { code: 'ENOENT' });

    // A link in the folder that points outside: replaced by the file, its target untouched.
    const linked = join(dir, 'linked');
    await mkdir(linked);
    const outside = join(dir, 'outside-target');
    await writeFile(outside, 'keep me\n', { mode: 0o600 });
    await symlink(outside, join(linked, 'k3s'));
    const refused = await run(['extract', bundle, '--files', linked]);
    assert.equal(refused.code, 8, refused.stderr);
    const forced = await run(['extract', bundle, '--files', linked, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(await readFile(outside, 'utf8'), 'keep me\n');
    assert.equal(await modeOf(outside), 0o600);
    assert.ok((await readFile(join(linked, 'k3s'))).equals(k3s));
  });

  test('a damaged file fails verify naming it; serve never sends it whole; extract does not write it', async () => {
    const damaged = join(dir, 'damaged.tar');
    await copyFile(bundle, damaged);
    await flipBlobByte(damaged, `sha256:${sha(k3s)}`, k3s.length - 100);
    await flipBlobByte(damaged, `sha256:${sha(install)}`, 3);
    const v = await run(['verify', damaged]);
    assert.equal(v.code, 5, v.stdout);
    assert.match(v.stdout, new RegExp(`sha256:${sha(k3s)}: digest mismatch: the content hashes to sha256:[0-9a-f]{64}; it is the file k3s \\(used by localhost/files/k3s:v1\\.30\\.2_k3s1\\)`));
    assert.match(v.stdout, /; it is the file install\.sh \(used by localhost\/files\/install\.sh:/);

    const srv = await startServe([damaged, '--listen', '127.0.0.1:0'], { env: env() });
    try {
      // Large: streamed, its last chunk held back for the check, so the download is cut short.
      const cut = await curl(`${srv.url}/files/k3s`);
      assert.notEqual(cut.exit, 0, 'curl sees a short body');
      assert.ok(cut.body.length < k3s.length, `${cut.body.length} of ${k3s.length} bytes`);
      // From then on, and at once for a small one: 404.
      for (const name of ['k3s', 'install.sh']) {
        const r = await curl(`${srv.url}/files/${name}`);
        assert.equal(r.status, 404, name);
        assert.match(r.body.toString(), new RegExp(`the file ${name.replace('.', '\\.')} is not served: its bytes in the bundle do not match its sha256`));
      }
      assert.ok((await curl(`${srv.url}/files/LICENSE`)).body.equals(licence), 'an intact file is still served');
    } finally {
      await srv.stop();
    }

    const out = join(dir, 'from-damaged');
    const x = await run(['extract', damaged, '--files', out]);
    assert.equal(x.code, 5, x.stderr);
    assert.match(x.stderr, /the file (k3s|install\.sh) is damaged in .*damaged\.tar: .*digest mismatch/);
    const left = await readdir(out).catch(() => [] as string[]);
    assert.ok(!left.includes('k3s') && !left.includes('install.sh'), `a damaged file was written: ${left.join(', ')}`);
    assert.deepEqual(left.filter((n) => n.startsWith('.')), [], 'no temp file is left');
  });
});
