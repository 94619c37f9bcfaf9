// Lock and pack from a Bearer-token registry, push into a TLS + htpasswd registry, with
// credentials where docker keeps them and the CA given by --ca-file or a certs.d directory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTlsRegistry, startTokenRegistry, type TlsRegistry, type TokenRegistry } from '../helpers/registry.ts';
import { buildImage, buildIndex, seedRegistry, type BuiltImage } from '../helpers/images.ts';
import { skopeoDigest } from '../helpers/skopeo.ts';
import { airlock, resultOf } from '../helpers/cli.ts';

describe('token-auth source, TLS + htpasswd target', () => {
  let src: TokenRegistry;
  let dst: TlsRegistry;
  let dir: string;
  let image: BuiltImage;
  let dockerConfig: string;

  before(async () => {
    [src, dst] = await Promise.all([
      startTokenRegistry({ users: { builder: 'b-pass' } }),
      startTlsRegistry({ users: { pusher: 'p-pass', reader: 'r-pass' } }),
    ]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-secure-'));
    image = buildIndex([
      buildImage({ layers: [{ random: { bytes: 2 * 1024 * 1024, seed: 5 } }], platform: 'linux/amd64' }),
      buildImage({ layers: [{ random: { bytes: 1024 * 1024, seed: 6 } }], platform: 'linux/arm64' }),
    ]);
    // seedRegistry speaks Basic only: sign a push token with the issuer's key for the seeding.
    const now = Math.floor(Date.now() / 1000);
    const token = src.issuer.signToken({
      iss: src.issuer.issuer, sub: 'builder', aud: src.issuer.service, exp: now + 300, nbf: now - 1, iat: now, jti: 'seed',
      access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }],
    });
    await seedRegistry(src.url, 'team/app', '2.0', image, { headers: { authorization: `Bearer ${token}` } });
    dockerConfig = join(dir, 'docker');
    await mkdir(dockerConfig);
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [src.host]: { auth: b64('builder:b-pass') }, [dst.host]: { auth: b64('pusher:p-pass') } } }));
    await writeFile(join(dir, 'airlock.yaml'), `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: secure, version: '2'}\nimages:\n  - ${src.host}/team/app:2.0\n`);
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const env = (): NodeJS.ProcessEnv => ({ DOCKER_CONFIG: dockerConfig, AIRLOCK_CACHE: join(dir, 'cache'), REGISTRY_AUTH_FILE: '', XDG_RUNTIME_DIR: join(dir, 'run'), HOME: dir });

  test('without credentials the token registry refuses, with a login hint', async () => {
    const r = await airlock(['pack', '--lock', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'x.tar')], { env: { ...env(), DOCKER_CONFIG: join(dir, 'empty') } });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(src.host.replace(/\./g, '\\.')));
    assert.match(r.stderr, /docker login/);
  });

  test('pack with credentials from DOCKER_CONFIG; push over TLS with --ca-file', async () => {
    const p = await airlock(['pack', '--lock', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 's.tar')], { env: env() });
    assert.equal(p.code, 0, p.stderr);
    const noCa = await airlock(['push', join(dir, 's.tar'), `${dst.host}/int`], { env: env() });
    assert.equal(noCa.code, 6, noCa.stderr);
    assert.match(noCa.stderr, /--ca-file/);
    const r = await airlock(['push', join(dir, 's.tar'), `${dst.host}/int`, '--ca-file', dst.caFile, '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(resultOf(r.stdout).images[0].digest, image.root.digest);
    const got = await skopeoDigest(`docker://${dst.host}/int/team/app:2.0`, ['--cert-dir', dst.certDir, '--creds', 'reader:r-pass']);
    assert.equal(got, image.root.digest);
  });

  test('a certs.d directory works like --ca-file; wrong password is an auth error naming the registry', async () => {
    const certs = join(dir, 'certs.d');
    await mkdir(join(certs, dst.host), { recursive: true });
    await copyFile(dst.caFile, join(certs, dst.host, 'ca.crt'));
    const ok = await airlock(['push', join(dir, 's.tar'), `${dst.host}/int2`, '--certs-dir', certs], { env: env() });
    assert.equal(ok.code, 0, ok.stderr);
    const badCfg = join(dir, 'bad');
    await mkdir(badCfg, { recursive: true });
    await writeFile(join(badCfg, 'config.json'), JSON.stringify({ auths: { [dst.host]: { auth: Buffer.from('pusher:wrong').toString('base64') } } }));
    const bad = await airlock(['push', join(dir, 's.tar'), `${dst.host}/int3`, '--certs-dir', certs], { env: { ...env(), DOCKER_CONFIG: badCfg } });
    assert.equal(bad.code, 4, bad.stderr);
    assert.match(bad.stderr, new RegExp(dst.host));
    assert.doesNotMatch(bad.stderr, /wrong/, 'the password never appears');
  });
});
