// Discovery is offline; `--verify-remote` is the one opt-in that asks registries, one manifest HEAD
// per image, against a real docker-registry on loopback.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { airlock, resultOf } from '../helpers/cli.ts';
import { buildImage, seedRegistry } from '../helpers/images.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';

describe('discover --verify-remote', () => {
  let reg: RunningRegistry;
  let watcher: Server;
  let watcherPort = 0;
  let requests = 0;
  let dir: string;
  const image = buildImage({ layers: [{ files: { 'etc/app.conf': 'x=1\n' } }] });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-discover-remote-'));
    reg = await startRegistry();
    await seedRegistry(reg.url, 'team/app', 'v1', image);
    // Any connection to this "registry" is counted; it answers every request with 404.
    watcher = createServer((req, res) => {
      requests++;
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    });
    await new Promise<void>((r) => watcher.listen(0, '127.0.0.1', r));
    watcherPort = (watcher.address() as { port: number }).port;
    const pod = (name: string, img: string) =>
      `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}}\nspec:\n  containers:\n    - {name: c, image: "${img}"}\n`;
    await writeFile(join(dir, 'present.yaml'), pod('present', `${reg.host}/team/app:v1`));
    await writeFile(join(dir, 'missing.yaml'), pod('missing', `${reg.host}/team/missing:v1`));
    await writeFile(join(dir, 'watched.yaml'), pod('watched', `127.0.0.1:${watcherPort}/team/watched:v1`));
  });
  after(async () => {
    await new Promise<void>((r) => watcher.close(() => r()));
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('without the flag, discover opens no connection', async () => {
    const r = await airlock(['discover', 'watched.yaml', 'present.yaml'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [`127.0.0.1:${watcherPort}/team/watched:v1`, `${reg.host}/team/app:v1`].sort());
    assert.equal(requests, 0);
  });

  it('an image that exists is confirmed with its digest', async () => {
    const r = await airlock(['discover', 'present.yaml', '--verify-remote', '--json'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const [img] = resultOf(r.stdout).images;
    assert.deepEqual(img.remote, { status: 'found', digest: image.root.digest });
  });

  it('a missing image is reported (exit 3), and --write then leaves the spec alone', async () => {
    const spec = join(dir, 'airlock.yaml');
    const r = await airlock(['discover', 'present.yaml', 'missing.yaml', 'watched.yaml', '--verify-remote', '--write', spec], { cwd: dir });
    assert.equal(r.code, 3, r.stderr);
    assert.ok(requests > 0, 'the watched registry was asked');
    assert.match(r.stderr, new RegExp(`not found: ${reg.host.replace(/\./g, '\\.')}/team/missing:v1`));
    assert.match(r.stdout, new RegExp(`${reg.host.replace(/\./g, '\\.')}/team/missing:v1\\t# missing`));
    assert.match(r.stderr, /not writing .*airlock\.yaml/);
    await assert.rejects(readFile(spec), { code: 'ENOENT' });
  });
});
