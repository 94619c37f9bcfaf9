import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpec } from '../../src/spec/spec.ts';
import { diffLock, formatLock, parseLock, type Lock } from '../../src/spec/lock.ts';
import { UsageError } from '../../src/core/errors.ts';
import { reduceIndex } from '../../src/lock/lock.ts';
import { digestOf } from '../../src/core/digest.ts';

const D1 = `sha256:${'a'.repeat(64)}` as const;
const D2 = `sha256:${'b'.repeat(64)}` as const;

test('spec: images are normalised and sorted; platforms parsed', () => {
  const spec = parseSpec(`apiVersion: airlock.dev/v1alpha1
kind: Bundle
metadata: {name: shop, version: 1.4.0}
platforms: [linux/arm64, linux/amd64]
images:
  - quay.io/prometheus/node-exporter:v1.8.2
  - nginx:1.27
`);
  assert.equal(spec.name, 'shop');
  assert.equal(spec.version, '1.4.0');
  assert.deepEqual(spec.platforms?.map((p) => `${p.os}/${p.architecture}`), ['linux/amd64', 'linux/arm64']);
  assert.deepEqual(spec.images.map((r) => `${r.registry}/${r.repository}:${r.tag}`), ['docker.io/library/nginx:1.27', 'quay.io/prometheus/node-exporter:v1.8.2']);
});

test('spec: errors name the file and the entry', () => {
  const cases: [string, RegExp][] = [
    ['apiVersion: v1\nkind: Bundle\nmetadata: {name: a}\nimages: [nginx]', /apiVersion must be airlock.dev\/v1alpha1/],
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nimages: []', /images must be a non-empty list/],
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nimages: [nginx, "docker.io/library/nginx:latest"]', /images\[1\].*same image as "nginx"/],
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nimages: ["Nginx:1"]', /images\[0\]: invalid image reference/],
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nplatforms: [amd64]\nimages: [nginx]', /platforms\[0\]/],
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nimages: [nginx]\nimages: [x]', /not valid YAML/],
    // Typos never pass silently: each names the key and what it most likely meant.
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nplatfroms: [linux/amd64]\nimages: [nginx]', /unknown key "platfroms": did you mean "platforms"\?/],
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nimagez: [nginx]', /unknown key "imagez": did you mean "images"\?/],
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a, versoin: 1}\nimages: [nginx]', /unknown key "metadata\.versoin": did you mean "metadata\.version"\?/],
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nimages: [nginx]\nextras: true', /unknown key "extras" \(known: apiVersion, kind, metadata, platforms, images, charts, tools, referrers, files\)/],
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nimages: [nginx]\ntools: yes', /tools must be true, or a mapping like \{platforms: \[linux\/amd64, linux\/arm64\]\}/],
    ['apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nimages: [nginx]\ntools: {platforms: [linux/s390x]}', /tools\.platforms: "linux\/s390x" is not a platform airlock has an executable for \(linux\/amd64, linux\/arm64\)/],
    // A "billion laughs" document is refused as input, not taken for a crash.
    [`apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\na: &a [x,x,x,x,x,x,x,x,x]\n${'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`).join('\n')}\nimages: [nginx]`, /YAML aliases expand too far/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseSpec(text, 'shop/airlock.yaml'), (e: unknown) => e instanceof UsageError && /^shop\/airlock\.yaml: /.test(e.message) && re.test(e.message), text);
  }
});

test('lock: format is deterministic, sorted, and parses back', () => {
  const lock: Lock = {
    name: 'shop',
    version: '1.4.0',
    platforms: ['linux/amd64'],
    images: [
      { reference: 'quay.io/x/y:1', digest: D2, mediaType: 'application/vnd.oci.image.index.v1+json', size: 300, totalSize: 9000, platforms: [{ platform: 'linux/amd64', digest: D1, size: 500 }], bundled: { digest: D1, size: 250 } },
      { reference: 'docker.io/library/nginx:1.27', digest: D1, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 400, totalSize: 1000 },
    ],
  };
  const text = formatLock(lock);
  assert.equal(formatLock({ ...lock, images: [...lock.images].reverse() }), text, 'input order does not matter');
  assert.ok(text.indexOf('docker.io/library/nginx') < text.indexOf('quay.io/x/y'), 'sorted by reference');
  const back = parseLock(text);
  assert.deepEqual(back.images.find((i) => i.reference === 'quay.io/x/y:1'), lock.images[0]);
  assert.equal(formatLock(back), text, 'round trip');
});

test('lock: a bad digest in the lock is a clear error', () => {
  const text = formatLock({ name: 'a', version: '1', platforms: undefined, images: [{ reference: 'docker.io/library/a:1', digest: D1, mediaType: 'x', size: 1, totalSize: 1 }] });
  assert.throws(() => parseLock(text.replace(D1, 'sha256:zz'), 'airlock.lock'), /airlock\.lock: .*images\[0\]\.digest/);
});

test('diffLock names what changed between spec and lock', () => {
  const spec = parseSpec('apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a, version: "1"}\nimages: [nginx:1, redis:7]');
  const lock: Lock = { name: 'a', version: '1', platforms: undefined, images: [{ reference: 'docker.io/library/nginx:1', digest: D1, mediaType: 'x', size: 1, totalSize: 1 }, { reference: 'docker.io/library/old:1', digest: D1, mediaType: 'x', size: 1, totalSize: 1 }] };
  assert.deepEqual(diffLock(spec, lock), ['docker.io/library/redis:7 is in the spec but not in the lock', 'docker.io/library/old:1 is in the lock but no longer in the spec']);
  assert.deepEqual(diffLock(spec, { ...lock, images: [lock.images[0]!, { ...lock.images[0]!, reference: 'docker.io/library/redis:7' }] }), []);
});

test('reduceIndex keeps only the chosen manifests and is deterministic', () => {
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'm', digest: D1, size: 1, platform: { os: 'linux', architecture: 'amd64' } }, { mediaType: 'm', digest: D2, size: 2 }], annotations: { a: 'b' } }));
  const r1 = reduceIndex(index, new Set([D1]));
  assert.equal(digestOf(r1), digestOf(reduceIndex(index, new Set([D1]))));
  const doc = JSON.parse(r1.toString());
  assert.deepEqual(doc.manifests.map((m: { digest: string }) => m.digest), [D1]);
  assert.deepEqual(doc.annotations, { a: 'b' });
});
