// Delta bundles through the library: only what the base lacks is carried (every manifest is),
// verify on its own / against its base / demanding completeness, and a bundle set serving the union.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '../../src/content/file-store.ts';
import { NotFoundError } from '../../src/core/errors.ts';
import { readAllLimited } from '../../src/content/verify-stream.ts';
import { isManifestMediaType } from '../../src/core/media-types.ts';
import { deltaBaseOf, openBundle, verifyBundle, writeBundle, type WriteBundleOptions } from '../../src/bundle/index.ts';
import { openBundleSet } from '../../src/serve/bundle-set.ts';
import { generateKeys, loadSigningKey } from '../../src/sign/keys.ts';
import { blobBytes, blobStream, buildImage, layersOf, type BuiltImage } from '../helpers/images.ts';

const KiB = 1024;

describe('delta bundles', () => {
  let dir: string;
  let store: FileStore;
  let v1: Record<string, BuiltImage>;
  let v2: Record<string, BuiltImage>;
  let v1Path: string;
  let v2Path: string;
  const opts = (out: string, imgs: Record<string, BuiltImage>, more: Partial<WriteBundleOptions> = {}): WriteBundleOptions => ({
    out,
    images: Object.entries(imgs).map(([reference, img]) => ({ reference, root: img.root })),
    source: store,
    lockText: 'lock\n',
    name: 'shop',
    version: '1',
    toolVersion: '0.0.0-test',
    ...more,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-delta-'));
    store = new FileStore(join(dir, 'cache'));
    const os = buildImage({ layers: [{ random: { bytes: 200 * KiB, seed: 31 } }] });
    const web1 = buildImage({ baseLayers: layersOf(os), layers: [{ random: { bytes: 100 * KiB, seed: 32 } }] });
    const web2 = buildImage({ baseLayers: layersOf(os), layers: [{ random: { bytes: 100 * KiB, seed: 33 } }] });
    const api = buildImage({ baseLayers: layersOf(os), layers: [{ random: { bytes: 80 * KiB, seed: 34 } }] });
    const cache = buildImage({ baseLayers: layersOf(os), layers: [{ files: { 'etc/cache': 'new\n' } }] });
    v1 = { 'example.com/shop/web:1': web1, 'example.com/shop/api:1': api };
    v2 = { 'example.com/shop/web:2': web2, 'example.com/shop/api:1': api, 'example.com/shop/cache:1': cache };
    for (const img of [web1, web2, api, cache]) for (const b of img.blobs) await store.push(b.descriptor, blobStream(b));
    v1Path = join(dir, 'v1.tar');
    v2Path = join(dir, 'v2.tar');
    await writeBundle(opts(v1Path, v1));
    const base = await openBundle(v1Path);
    try {
      await writeBundle(opts(v2Path, v2, { version: '2', base: deltaBaseOf(base) }));
    } finally {
      await base.close();
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the delta carries the changed layer, the new image\'s layer, every manifest and new config; it relies on the rest', async () => {
    const b = await openBundle(v2Path);
    const base = await openBundle(v1Path);
    try {
      const carried = new Set(b.inventory.blobs.map((x) => x.digest));
      const relied = new Set(b.inventory.delta!.blobs.map((x) => x.digest));
      const inBase = new Set(base.inventory.blobs.map((x) => x.digest));
      const all = new Map(Object.values(v2).flatMap((i) => i.blobs.map((x) => [x.descriptor.digest, x.descriptor] as const)));
      for (const [d, desc] of all) {
        if (isManifestMediaType(desc.mediaType)) assert.ok(carried.has(d), `manifest ${d} carried`);
        else if (inBase.has(d)) assert.ok(relied.has(d) && !carried.has(d), `${d} relied on`);
        else assert.ok(carried.has(d), `${d} carried`);
      }
      assert.equal(carried.size + relied.size, all.size);
      assert.deepEqual(b.inventory.delta!.base, { inventory: base.inventoryDigest, name: 'shop', version: '1' });
      // Only the new web layer, the cache layer and small documents: far less than the base layer.
      assert.ok(b.inventory.totals.bytes < 110 * KiB, `${b.inventory.totals.bytes} bytes carried`);
      // Totals stay consistent: what the images need = carried + relied + shared.
      const t = b.inventory.totals;
      assert.equal(t.imageBytes, t.bytes + b.inventory.delta!.blobs.reduce((a, x) => a + x.size, 0) + t.sharedBytes);
    } finally {
      await Promise.all([b.close(), base.close()]);
    }
  });

  test('verify: a delta alone passes, saying what it relies on; --complete fails it; --base checks it', async () => {
    const alone = await verifyBundle(v2Path);
    assert.deepEqual(alone.problems, []);
    assert.equal(alone.delta?.blobs, 3, 'the os layer, the api layer and the unchanged api config');
    assert.equal(alone.delta?.checkedAgainst, undefined);
    const complete = await verifyBundle(v2Path, { complete: true });
    assert.equal(complete.ok, false);
    assert.match(complete.problems[0]!.message, /^not self-sufficient: a delta of shop 1 \(inventory sha256:[0-9a-f]{64}\) that relies on 3 blobs/);
    const based = await verifyBundle(v2Path, { base: [v1Path] });
    assert.deepEqual(based.problems, []);
    assert.deepEqual(based.delta?.checkedAgainst, [v1Path]);
    assert.equal((await verifyBundle(v1Path, { complete: true })).ok, true, 'a full bundle is complete');
  });

  test('verify --base with the wrong base names both bundles and every blob it lacks', async () => {
    const other = join(dir, 'other.tar');
    await writeBundle(opts(other, { 'example.com/shop/api:1': v1['example.com/shop/api:1']! }, { version: '0' }));
    const r = await verifyBundle(v2Path, { base: [other] });
    assert.equal(r.ok, false);
    assert.ok(r.problems.some((p) => /^the base given is not this delta's base: it was packed against shop 1 .*; given .*other\.tar = shop 0/.test(p.message)), JSON.stringify(r.problems));
    const lacking = layersOf(v1['example.com/shop/web:1']!)[0]!.descriptor.digest;
    // The os layer is in `other` (api has it); nothing else the delta relies on is missing there.
    assert.ok(!r.problems.some((p) => p.digest === lacking && /relied on/.test(p.message)));
  });

  test('a bundle set serves the union: the delta\'s image reads its relied-on layer from the base; without the base it is refused', async () => {
    const set = await openBundleSet([v1Path, v2Path]);
    try {
      const web = set.images.find((i) => i.name === 'example.com/shop/web:2')!;
      const osLayer = layersOf(v2['example.com/shop/web:2']!)[0]!;
      assert.ok(web.digests.has(osLayer.descriptor.digest));
      assert.equal(set.locate(osLayer.descriptor.digest)?.bundle.path, v1Path);
      assert.deepEqual(await readAllLimited(await set.fetch(osLayer.descriptor), 1024 * 1024, 't'), blobBytes(osLayer));
      // The unchanged image is in both; its name resolves to the later bundle.
      assert.equal(set.images.find((i) => i.name === 'example.com/shop/api:1')?.bundle, v2Path);
    } finally {
      await set.close();
    }
    await assert.rejects(openBundleSet([v2Path]), (e: unknown) => e instanceof NotFoundError && /v2\.tar is a delta of shop 1 \(inventory sha256:[0-9a-f]{64}\): 3 blobs .* are in none of the bundles given/.test(e.message));
  });

  test('a signed delta in volumes: verified with its key against its base, read in place, with the same identity as unsplit', async () => {
    await generateKeys({ out: join(dir, 'k') });
    const base = await openBundle(v1Path);
    const out = join(dir, 'split', 'v2.tar');
    try {
      const r = await writeBundle(opts(out, v2, { version: '2', base: deltaBaseOf(base), split: { size: 64 * KiB, parity: 1 }, sign: await loadSigningKey(join(dir, 'k.key')) }));
      assert.ok(r.files.length >= 3);
      const plain = await openBundle(v2Path);
      assert.equal(r.inventoryDigest, plain.inventoryDigest, 'splitting and signing do not change what the bundle is');
      await plain.close();
    } finally {
      await base.close();
    }
    const v = await verifyBundle(`${out}.001`, { base: [v1Path], key: join(dir, 'k.pub') });
    assert.deepEqual(v.problems, []);
    assert.equal(v.signature?.verified, true);
    assert.deepEqual(v.delta?.checkedAgainst, [v1Path]);
    const set = await openBundleSet([v1Path, out]);
    await set.close();
  });

  test('a delta of a delta relies on blobs its base relies on; verify asks for the whole chain', async () => {
    const v3 = { ...v2, 'example.com/shop/web:2': v2['example.com/shop/web:2']! };
    delete (v3 as Record<string, BuiltImage>)['example.com/shop/cache:1'];
    const v3Path = join(dir, 'v3.tar');
    const base = await openBundle(v2Path);
    try {
      await writeBundle(opts(v3Path, v3, { version: '3', base: deltaBaseOf(base) }));
    } finally {
      await base.close();
    }
    const r = await verifyBundle(v3Path, { base: [v2Path] });
    assert.ok(r.problems.some((p) => /is itself a delta that relies on it: give its base too/.test(p.message)), JSON.stringify(r.problems));
    assert.deepEqual((await verifyBundle(v3Path, { base: [v1Path, v2Path] })).problems, []);
  });
});
