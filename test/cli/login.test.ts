// airlock login / logout against real registries (docker-registry with htpasswd over TLS, and one
// behind a token server), with real skopeo reading and writing the same credentials files.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { startTlsRegistry, startTokenRegistry, type TlsRegistry, type TokenRegistry } from '../helpers/registry.ts';
import { buildImage, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { skopeo, skopeoDigest } from '../helpers/skopeo.ts';
import { airlock, resultOf } from '../helpers/cli.ts';

describe('airlock login and logout', () => {
  let tls: TlsRegistry;
  let tok: TokenRegistry;
  let dir: string;
  let image: BuiltImage;
  let n = 0;

  before(async () => {
    [tls, tok] = await Promise.all([startTlsRegistry({ users: { alice: 'a-pass' } }), startTokenRegistry({ users: { bob: 'b-pass' } })]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-login-'));
    image = buildImage({ layers: [{ random: { bytes: 64 * 1024, seed: 16 } }], platform: 'linux/amd64' });
    const agent = new Agent({ connect: { ca: await readFile(tls.caFile) } });
    await seedRegistry(tls.url, 'team/app', '1.0', image, { auth: { username: 'alice', password: 'a-pass' }, dispatcher: agent });
    await agent.close();
  });

  after(async () => {
    await Promise.all([tls?.stop(), tok?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A fresh home per test: credentials files only where the test puts them. */
  async function home(): Promise<{ env: NodeJS.ProcessEnv; root: string; runtimeAuth: string; dockerConfig: string }> {
    const root = join(dir, `home${++n}`);
    await mkdir(join(root, 'run'), { recursive: true });
    return {
      root,
      env: { HOME: root, XDG_RUNTIME_DIR: join(root, 'run'), XDG_CONFIG_HOME: join(root, 'config'), REGISTRY_AUTH_FILE: '', DOCKER_CONFIG: '', AIRLOCK_CACHE: join(root, 'cache') },
      runtimeAuth: join(root, 'run', 'containers', 'auth.json'),
      dockerConfig: join(root, '.docker', 'config.json'),
    };
  }

  test('a wrong password is refused at login (exit 4) and nothing is saved', async () => {
    const h = await home();
    const r = await airlock(['login', tls.host, '-u', 'alice', '--password-stdin', '--ca-file', tls.caFile], { env: h.env, input: 'wrong\n' });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /refused the password of user "alice"/);
    await assert.rejects(stat(h.runtimeAuth), { code: 'ENOENT' });
    const t = await airlock(['login', tok.host, '-u', 'bob', '--password-stdin', '--json'], { env: h.env, input: 'nope' });
    assert.equal(t.code, 4, t.stderr);
    assert.match(t.stderr, /token server of .* refused the credentials of user "bob"/);
    await assert.rejects(stat(h.runtimeAuth), { code: 'ENOENT' });
  });

  test('login writes containers auth.json (0600, other entries kept); skopeo reads it; logout removes only it', async () => {
    const h = await home();
    await mkdir(join(h.root, 'run', 'containers'));
    const other = { auth: Buffer.from('carol:c-pass').toString('base64') };
    await writeFile(h.runtimeAuth, JSON.stringify({ auths: { 'other.example:5000': other, [`https://${tls.host}`]: { auth: Buffer.from('alice:old').toString('base64') } }, 'x-unknown': { kept: true } }));
    const r = await airlock(['login', tls.host, '-u', 'alice', '--password-stdin', '--ca-file', tls.caFile, '--json'], { env: h.env, input: 'a-pass\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(resultOf(r.stdout).path, h.runtimeAuth);
    assert.doesNotMatch(r.stdout + r.stderr, /a-pass/);
    assert.equal((await stat(h.runtimeAuth)).mode & 0o777, 0o600);
    const saved = JSON.parse(await readFile(h.runtimeAuth, 'utf8'));
    assert.deepEqual(saved, {
      auths: { 'other.example:5000': other, [tls.host]: { auth: Buffer.from('alice:a-pass').toString('base64') } },
      'x-unknown': { kept: true },
    });
    // skopeo with the same file (and no --creds) reads the registry.
    const digest = await skopeoDigest(`docker://${tls.host}/team/app:1.0`, ['--cert-dir', tls.certDir], { env: { REGISTRY_AUTH_FILE: h.runtimeAuth } });
    assert.equal(digest, image.root.digest);

    const out = await airlock(['logout', tls.host], { env: h.env });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, new RegExp(`Removed login credentials for ${tls.host.replace(/\./g, '\\.')} from ${h.runtimeAuth}`));
    assert.deepEqual(JSON.parse(await readFile(h.runtimeAuth, 'utf8')), { auths: { 'other.example:5000': other }, 'x-unknown': { kept: true } });
    const again = await airlock(['logout', tls.host], { env: h.env });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /not logged in/);
  });

  test('skopeo login, then airlock lock, pack and push with the same file', async () => {
    const h = await home();
    const authFile = join(h.root, 'skopeo-auth.json');
    await skopeo(['login', '--cert-dir', tls.certDir, '-u', 'alice', '-p', 'a-pass', tls.host], { env: { REGISTRY_AUTH_FILE: authFile } });
    const env = { ...h.env, REGISTRY_AUTH_FILE: authFile };
    await writeFile(join(h.root, 'airlock.yaml'), `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: login, version: '1'}\nimages:\n  - ${tls.host}/team/app:1.0\n`);
    const p = await airlock(['pack', '--lock', '-f', join(h.root, 'airlock.yaml'), '-o', join(h.root, 'b.tar'), '--ca-file', tls.caFile], { env });
    assert.equal(p.code, 0, p.stderr);
    const push = await airlock(['push', join(h.root, 'b.tar'), `${tls.host}/mirror`, '--ca-file', tls.caFile, '--json'], { env });
    assert.equal(push.code, 0, push.stderr);
    assert.equal(resultOf(push.stdout).images[0].digest, image.root.digest);
    // Without the login the same push is refused: the file is what made it work.
    const anon = await airlock(['push', join(h.root, 'b.tar'), `${tls.host}/mirror2`, '--ca-file', tls.caFile], { env: h.env });
    assert.equal(anon.code, 4, anon.stderr);
  });

  test('a docker user gets the login in ~/.docker/config.json; a token registry checks it at its token server', async () => {
    const h = await home();
    await mkdir(join(h.root, '.docker'));
    await writeFile(h.dockerConfig, JSON.stringify({ auths: {}, currentContext: 'default' }));
    const r = await airlock(['login', tok.host, '-u', 'bob', '-p', 'b-pass'], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /--password on the command line is insecure.*--password-stdin/);
    assert.match(r.stdout, new RegExp(`Login Succeeded: bob at ${tok.host.replace(/\./g, '\\.')}, saved in ${h.dockerConfig}`));
    const cfg = JSON.parse(await readFile(h.dockerConfig, 'utf8'));
    assert.equal(cfg.currentContext, 'default');
    assert.equal(cfg.auths[tok.host].auth, Buffer.from('bob:b-pass').toString('base64'));
    assert.ok(tok.issuer.requests.some((q) => q.user === 'bob' && q.status === 200), 'the token server saw bob’s password');
    await assert.rejects(stat(h.runtimeAuth), { code: 'ENOENT' });
  });

  test('a credsStore helper gets the login (store) and forgets it at logout (erase)', async () => {
    const h = await home();
    const bin = join(h.root, 'bin');
    await mkdir(bin);
    const vault = join(h.root, 'vault.json');
    // A real docker-credential-* program, keeping one secret in a file.
    await writeFile(join(bin, 'docker-credential-filevault'), [
      '#!/bin/sh',
      `V=${vault}`,
      'case "$1" in',
      '  store) cat > "$V" ;;',
      '  get) [ -f "$V" ] || { echo "credentials not found in native keychain"; exit 1; }; cat "$V" ;;',
      '  erase) [ -f "$V" ] || { echo "credentials not found in native keychain"; exit 1; }; rm "$V" ;;',
      'esac',
      '',
    ].join('\n'), { mode: 0o755 });
    await mkdir(join(h.root, '.docker'));
    await writeFile(h.dockerConfig, JSON.stringify({ credsStore: 'filevault' }));
    const env = { ...h.env, PATH: `${bin}:${process.env.PATH}` };
    const r = await airlock(['login', tls.host, '-u', 'alice', '--password-stdin', '--ca-file', tls.caFile], { env, input: 'a-pass' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /saved in docker-credential-filevault/);
    assert.deepEqual(JSON.parse(await readFile(vault, 'utf8')), { ServerURL: tls.host, Username: 'alice', Secret: 'a-pass' });
    assert.doesNotMatch(await readFile(h.dockerConfig, 'utf8'), /a-pass|YS1wYXNz/);
    const out = await airlock(['logout', tls.host], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /docker-credential-filevault/);
    await assert.rejects(stat(vault), { code: 'ENOENT' });
  });

  test('usage errors: no registry, a repository path, --password-stdin without -u', async () => {
    const h = await home();
    const none = await airlock(['login'], { env: h.env });
    assert.equal(none.code, 2);
    const path = await airlock(['login', `${tls.host}/team/app`, '-u', 'alice', '--password-stdin'], { env: h.env, input: 'x' });
    assert.equal(path.code, 2);
    assert.match(path.stderr, /is not a registry: expected HOST\[:PORT\]/);
    const noUser = await airlock(['login', tls.host, '--password-stdin'], { env: h.env, input: 'x' });
    assert.equal(noUser.code, 2);
    assert.match(noUser.stderr, /--password-stdin needs the user name/);
  });
});
