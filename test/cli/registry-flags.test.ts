// --insecure and --plain-http as crane and oras users type them: bare (every registry), with a value
// (=HOST[:PORT], that registry only), and the older `--insecure HOST`, against real registries: one
// over TLS with a CA nobody trusts, one over plain HTTP reached by a name that is not loopback
// (127.1, which the resolver maps to 127.0.0.1).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { readFile } from 'node:fs/promises';
import { startRegistry, startTlsRegistry, type RunningRegistry, type TlsRegistry } from '../helpers/registry.ts';
import { buildImage, seedRegistry } from '../helpers/images.ts';
import { airlock } from '../helpers/cli.ts';
import { preprocessRegistryArgs } from '../../src/cli/registry-args.ts';

test('bare flags mean every registry; a host-shaped next word is the old spelling\'s value', () => {
  assert.deepEqual(preprocessRegistryArgs(['--insecure']), ['--insecure=*']);
  assert.deepEqual(preprocessRegistryArgs(['--insecure', '-f', 'a.yaml']), ['--insecure=*', '-f', 'a.yaml']);
  assert.deepEqual(preprocessRegistryArgs(['--insecure', 'reg.local:5000', '--plain-http']), ['--insecure=reg.local:5000', '--plain-http=*']);
  assert.deepEqual(preprocessRegistryArgs(['--insecure=reg.local', '--plain-http=[::1]:5000']), ['--insecure=reg.local', '--plain-http=[::1]:5000']);
  // A bundle or spec after a bare flag stays a positional.
  assert.deepEqual(preprocessRegistryArgs(['push', '--insecure', 'b.tar', 'reg:5000']), ['push', '--insecure=*', 'b.tar', 'reg:5000']);
  assert.deepEqual(preprocessRegistryArgs(['--insecure', 'reg:5000/prefix']), ['--insecure=*', 'reg:5000/prefix']);
  assert.deepEqual(preprocessRegistryArgs(['--', '--insecure']), ['--', '--insecure']);
});

describe('--insecure and --plain-http on lock', () => {
  let tls: TlsRegistry;
  let plain: RunningRegistry;
  let dir: string;

  before(async () => {
    [tls, plain] = await Promise.all([startTlsRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-flags-'));
    const image = buildImage({ layers: [{ random: { bytes: 4096, seed: 3 } }], platform: 'linux/amd64' });
    const agent = new Agent({ connect: { ca: await readFile(tls.caFile) } });
    await Promise.all([seedRegistry(tls.url, 'team/app', '1.0', image, { dispatcher: agent }), seedRegistry(plain.url, 'team/app', '1.0', image)]);
    await agent.close();
  });
  after(async () => {
    await Promise.all([tls?.stop(), plain?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function lock(image: string, flags: string[]): Promise<{ code: number; stderr: string }> {
    const spec = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(spec, `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: flags, version: '1'}\nimages:\n  - ${image}\n`);
    return await airlock(['lock', '-f', spec, ...flags], { env: { AIRLOCK_CACHE: join(dir, 'cache') } });
  }

  test('--insecure skips TLS verification: bare, =HOST and the old HOST spelling; another host does not count', async () => {
    const image = `${tls.host}/team/app:1.0`;
    const refused = await lock(image, []);
    assert.equal(refused.code, 6, refused.stderr);
    assert.match(refused.stderr, new RegExp(`--insecure=${tls.host.replace(/\./g, '\\.')} skips`));
    for (const flags of [['--insecure'], [`--insecure=${tls.host}`], ['--insecure', tls.host]]) {
      const r = await lock(image, flags);
      assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
    }
    const other = await lock(image, ['--insecure=other.example:5000']);
    assert.equal(other.code, 6, other.stderr);
  });

  test('a CA in rootless podman\'s ~/.config/containers/certs.d is trusted without flags', async () => {
    const home = join(dir, 'home');
    await mkdir(join(home, '.config', 'containers', 'certs.d', tls.host), { recursive: true });
    await copyFile(tls.caFile, join(home, '.config', 'containers', 'certs.d', tls.host, 'ca.crt'));
    const spec = join(dir, 'certs.yaml');
    await writeFile(spec, `apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: flags, version: '1'}\nimages:\n  - ${tls.host}/team/app:1.0\n`);
    const r = await airlock(['lock', '-f', spec], { env: { AIRLOCK_CACHE: join(dir, 'cache'), HOME: home } });
    assert.equal(r.code, 0, r.stderr);
  });

  test('--plain-http lets a registry that is not loopback speak plain HTTP: bare and =HOST', async () => {
    const host = `127.1:${plain.host.split(':')[1]}`;
    const image = `${host}/team/app:1.0`;
    const refused = await lock(image, []);
    assert.equal(refused.code, 6, refused.stderr);
    assert.match(refused.stderr, new RegExp(`pass --plain-http=${host.replace(/\./g, '\\.')}`));
    for (const flags of [['--plain-http'], [`--plain-http=${host}`]]) {
      const r = await lock(image, flags);
      assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
    }
  });
});
