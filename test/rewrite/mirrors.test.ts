// `airlock mirrors-config`: k3s registries.yaml maps every source registry of the bundle to R
// (with the rewrite a prefix needs, landing exactly where push puts images), containerd certs.d
// trees, and the errors a user can run into.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseReference } from '../../src/core/reference.ts';
import { mapReference, parseTarget } from '../../src/rewrite/mapping.ts';
import { containerdHostsFiles, k3sRegistriesYaml, planMirrors } from '../../src/rewrite/mirrors.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { buildImage } from '../helpers/images.ts';
import { fixtureImages, writeFixtureBundle } from '../serve/fixture.ts';

interface K3sRegistries {
  mirrors: Record<string, { endpoint: string[]; rewrite?: Record<string, string> }>;
  configs?: Record<string, { tls: { ca_file: string } }>;
}

/** What k3s does with a rewrite rule: Go's regexp ReplaceAllString on the repository path. */
function applyRewrite(rules: Record<string, string> | undefined, repository: string): string {
  for (const [pattern, replacement] of Object.entries(rules ?? {})) {
    const re = new RegExp(pattern);
    if (re.test(repository)) return repository.replace(re, replacement);
  }
  return repository;
}

describe('airlock mirrors-config', () => {
  let dir: string;
  let bundle: string;
  const names = Object.keys(fixtureImages());

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-mirrors-'));
    bundle = join(dir, 'b.tar');
    await writeFixtureBundle(bundle, fixtureImages());
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('--format k3s maps each source registry to R, with the rewrite a prefix needs and the CA', async () => {
    const out = join(dir, 'registries.yaml');
    const r = await airlock(['mirrors-config', bundle, '--registry', 'harbor.internal:8443/airlock', '--ca-file', '/etc/rancher/k3s/ca.crt', '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = parse(await readFile(out, 'utf8')) as K3sRegistries;
    assert.deepEqual(Object.keys(doc.mirrors).sort(), ['docker.io', 'ghcr.io', 'quay.io', 'registry.example.com']);
    for (const m of Object.values(doc.mirrors)) {
      assert.deepEqual(m.endpoint, ['https://harbor.internal:8443']);
      assert.deepEqual(m.rewrite, { '^(.*)$': 'airlock/$1' });
    }
    assert.deepEqual(doc.configs, { 'harbor.internal:8443': { tls: { ca_file: '/etc/rancher/k3s/ca.crt' } } });
    // Every image, rewritten as k3s would, is exactly where `airlock push BUNDLE harbor…/airlock` puts it.
    const target = parseTarget('harbor.internal:8443/airlock');
    for (const name of names) {
      const ref = parseReference(name);
      assert.equal(applyRewrite(doc.mirrors[ref.registry]!.rewrite, ref.repository), mapReference(ref, target).repository, name);
    }
    assert.deepEqual(resultOf(r.stdout).sources, ['docker.io', 'ghcr.io', 'quay.io', 'registry.example.com']);
  });

  test('without a prefix: no rewrite; printed to stdout without -o; into DIR/registries.yaml with -o DIR', async () => {
    const r = await airlock(['mirrors-config', bundle, '--registry', 'registry.internal']);
    assert.equal(r.code, 0, r.stderr);
    const doc = parse(r.stdout) as K3sRegistries;
    assert.equal(doc.mirrors['docker.io']!.rewrite, undefined);
    assert.deepEqual(doc.mirrors['quay.io']!.endpoint, ['https://registry.internal']);
    assert.equal(doc.configs, undefined);
    const d = join(dir, 'etc-k3s');
    await mkdir(d);
    const w = await airlock(['mirrors-config', bundle, '--registry', 'registry.internal', '-o', d]);
    assert.equal(w.code, 0, w.stderr);
    assert.deepEqual(parse(await readFile(join(d, 'registries.yaml'), 'utf8')), doc);
  });

  test('the endpoint scheme: loopback plain HTTP unless a CA is given, http:// and --plain-http honoured', () => {
    const refs = [parseReference('docker.io/library/web:1')];
    assert.equal(planMirrors(refs, '127.0.0.1:5000').endpoint, 'http://127.0.0.1:5000');
    assert.equal(planMirrors(refs, '127.0.0.1:5000', { caFile: '/ca.crt' }).endpoint, 'https://127.0.0.1:5000');
    assert.equal(planMirrors(refs, 'reg.internal:5000').endpoint, 'https://reg.internal:5000');
    assert.equal(planMirrors(refs, 'http://reg.internal:5000/p').endpoint, 'http://reg.internal:5000');
    assert.equal(planMirrors(refs, 'reg.internal', { plainHttp: true }).endpoint, 'http://reg.internal');
    assert.throws(() => planMirrors(refs, 'http://reg.internal', { caFile: '/ca.crt' }), /a CA file is for HTTPS/);
    const text = k3sRegistriesYaml(planMirrors(refs, 'reg.internal/a/b'));
    assert.deepEqual((parse(text) as K3sRegistries).mirrors['docker.io']!.rewrite, { '^(.*)$': 'a/b/$1' });
  });

  test('--format containerd writes certs.d/<source>/hosts.toml with R as host and server, and the CA beside it', async () => {
    const ca = join(dir, 'my-ca.pem');
    await writeFile(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const out = join(dir, 'certs.d');
    const r = await airlock(['mirrors-config', bundle, '--registry', 'reg.internal:5000', '--format', 'containerd', '--ca-file', ca, '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await readdir(out)).sort(), ['docker.io', 'ghcr.io', 'quay.io', 'registry.example.com']);
    const toml = await readFile(join(out, 'docker.io', 'hosts.toml'), 'utf8');
    assert.match(toml, /^server = "https:\/\/reg\.internal:5000"$/m);
    assert.match(toml, /^\[host\."https:\/\/reg\.internal:5000"\]$/m);
    assert.match(toml, /^ {2}capabilities = \["pull", "resolve"\]$/m);
    assert.match(toml, /^ {2}ca = "ca\.crt"$/m);
    assert.equal(await readFile(join(out, 'docker.io', 'ca.crt'), 'utf8'), await readFile(ca, 'utf8'));
  });

  test('containerd under a prefix, or with --keep-host: each host entry is R\'s API root for its source (override_path); a missing -o is refused', async () => {
    const out = join(dir, 'certs.d-prefix');
    const r = await airlock(['mirrors-config', bundle, '--registry', 'reg.internal/p', '--format', 'containerd', '--keep-host', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    const toml = await readFile(join(out, 'quay.io', 'hosts.toml'), 'utf8');
    assert.match(toml, /^server = "https:\/\/reg\.internal"$/m);
    assert.match(toml, /^\[host\."https:\/\/reg\.internal\/v2\/p\/quay\.io"\]$/m);
    assert.match(toml, /^ {2}override_path = true$/m);
    const plain = containerdHostsFiles(planMirrors([parseReference('a.io/b:1')], 'r.io/p'));
    assert.match(plain[0]!.text, /^\[host\."https:\/\/r\.io\/v2\/p"\]\n {2}capabilities = \["pull", "resolve"\]\n {2}override_path = true$/m);
    const m = await airlock(['mirrors-config', bundle, '--registry', 'reg.internal', '--format', 'containerd']);
    assert.equal(m.code, 2);
    assert.match(m.stderr, /pass -o DIR/);
  });

  test('--format k3s --keep-host: each source gets the rewrite to its own host path', async () => {
    const r = await airlock(['mirrors-config', bundle, '--registry', 'harbor.internal/airlock', '--keep-host']);
    assert.equal(r.code, 0, r.stderr);
    const doc = parse(r.stdout) as K3sRegistries;
    const target = parseTarget('harbor.internal/airlock', { keepHost: true });
    for (const name of names) {
      const ref = parseReference(name);
      assert.equal(applyRewrite(doc.mirrors[ref.registry]!.rewrite, ref.repository), mapReference(ref, target).repository, name);
    }
    assert.deepEqual(doc.mirrors['quay.io']!.rewrite, { '^(.*)$': 'airlock/quay.io/$1' });
  });

  test('images that would collide in R are refused, as push refuses them', async () => {
    const a = buildImage({ layers: [{ files: { a: '1' } }] });
    const b = buildImage({ layers: [{ files: { b: '1' } }] });
    const clash = join(dir, 'clash.tar');
    await writeFixtureBundle(clash, { 'docker.io/team/app:1': a, 'quay.io/team/app:1': b });
    const r = await airlock(['mirrors-config', clash, '--registry', 'reg.internal']);
    assert.equal(r.code, 8);
    assert.match(r.stderr, /docker\.io\/team\/app:1 and quay\.io\/team\/app:1 would both be pushed to reg\.internal\/team\/app:1/);
  });

  test('bad input: no --registry, a bad registry, an unknown format, a missing CA for containerd', async () => {
    const cases: [string[], number, RegExp][] = [
      [[bundle], 2, /needs --registry/],
      [[bundle, '--registry', 'not a host'], 2, /invalid target registry/],
      [[bundle, '--registry', 'r.io', '--format', 'docker'], 2, /unknown format "docker"/],
      [[bundle, '--registry', 'r.io', '--format', 'containerd', '--ca-file', join(dir, 'nope.pem'), '-o', join(dir, 'y')], 3, /CA file .*nope\.pem does not exist/],
      [[join(dir, 'missing.tar'), '--registry', 'r.io'], 3, /does not exist/],
    ];
    const results = await Promise.all(cases.map(([args]) => airlock(['mirrors-config', ...args])));
    cases.forEach(([args, code, msg], i) => {
      assert.equal(results[i]!.code, code, `${args.join(' ')}: ${results[i]!.stderr}`);
      assert.match(results[i]!.stderr, msg);
    });
  });
});
