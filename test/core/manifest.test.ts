import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IntegrityError, UsageError } from '../../src/core/errors.ts';
import { digestOf } from '../../src/core/digest.ts';
import { MAX_MANIFEST_BYTES, MediaType, childrenOf, isManifestDescriptor, parseManifest } from '../../src/core/manifest.ts';
import { blobBytes, buildArtifact, buildImage, buildIndex, findBlob, type BuiltImage, type LayerSpec } from '../helpers/images.ts';

const D1 = digestOf('one');
const D2 = digestOf('two');
const D3 = digestOf('three');

function rootBytes(img: BuiltImage): Buffer {
  return blobBytes(findBlob(img, img.root.digest));
}

function json(doc: unknown): Buffer {
  return Buffer.from(JSON.stringify(doc));
}

describe('parseManifest: each kind', () => {
  const layers: LayerSpec[] = [{ files: { 'etc/a': 'a' } }, { files: { 'etc/b': 'b' } }];

  for (const format of ['oci', 'docker'] as const) {
    test(`${format} image manifest: config then layers are its children`, () => {
      const img = buildImage({ layers, format });
      const parsed = parseManifest(rootBytes(img), img.root.mediaType, 'image');
      assert.equal(parsed.kind, 'manifest');
      assert.equal(parsed.mediaType, format === 'oci' ? MediaType.ociManifest : MediaType.dockerManifest);
      const kids = childrenOf(parsed);
      assert.equal(kids.length, 3);
      assert.equal(kids[0]!.mediaType, format === 'oci' ? MediaType.ociConfig : MediaType.dockerConfig);
      for (const k of kids) assert.ok(img.blobs.some((b) => b.descriptor.digest === k.digest && b.descriptor.size === k.size));
      assert.equal(kids.some(isManifestDescriptor), false);
    });

    test(`${format} index: the platform manifests are its children`, () => {
      const idx = buildIndex(
        [buildImage({ layers, format, platform: 'linux/amd64' }), buildImage({ layers, format, platform: 'linux/arm64/v8' })],
        { format },
      );
      const parsed = parseManifest(rootBytes(idx), idx.root.mediaType, 'index');
      assert.equal(parsed.kind, 'index');
      assert.equal(parsed.mediaType, format === 'oci' ? MediaType.ociIndex : MediaType.dockerManifestList);
      const kids = childrenOf(parsed);
      assert.deepEqual(
        kids.map((k) => k.platform),
        [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64', variant: 'v8' },
        ],
      );
      assert.ok(kids.every(isManifestDescriptor));
    });
  }

  test('artifact: unknown layer media types and artifactType pass through', () => {
    const art = buildArtifact({
      artifactType: 'application/vnd.example.sbom.v1',
      files: [{ mediaType: 'application/spdx+json', bytes: Buffer.from('{"spdxVersion":"SPDX-2.3"}') }],
    });
    const parsed = parseManifest(rootBytes(art), art.root.mediaType, 'sbom');
    assert.equal(parsed.kind, 'manifest');
    assert.equal(parsed.value.artifactType, 'application/vnd.example.sbom.v1');
    assert.deepEqual(
      childrenOf(parsed).map((d) => d.mediaType),
      [MediaType.ociEmpty, 'application/spdx+json'],
    );
  });

  test("the document's own mediaType wins over what the registry said", () => {
    const img = buildImage({ layers, format: 'docker' });
    const parsed = parseManifest(rootBytes(img), 'application/octet-stream', 'image');
    assert.equal(parsed.mediaType, MediaType.dockerManifest);
  });

  test('without a mediaType field, the given media type decides, and shape is enough', () => {
    const manifest = { schemaVersion: 2, config: { mediaType: MediaType.ociConfig, digest: D1, size: 3 }, layers: [] };
    assert.equal(parseManifest(json(manifest), MediaType.ociManifest, 'm').mediaType, MediaType.ociManifest);
    const index = { schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, digest: D1, size: 3 }] };
    const parsed = parseManifest(json(index), 'application/json', 'i');
    assert.equal(parsed.kind, 'index');
    assert.equal(parsed.mediaType, 'application/json');
  });

  test('subject is not a child (it is what the manifest refers to)', () => {
    const doc = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: 'application/vnd.example.signature',
      config: { mediaType: MediaType.ociEmpty, digest: digestOf('{}'), size: 2 },
      layers: [{ mediaType: 'application/vnd.example.sig', digest: D2, size: 3 }],
      subject: { mediaType: MediaType.ociManifest, digest: D3, size: 5 },
    };
    const parsed = parseManifest(json(doc), MediaType.ociManifest, 'signature');
    assert.deepEqual(
      childrenOf(parsed).map((d) => d.digest),
      [digestOf('{}'), D2],
    );
    assert.equal(parsed.kind === 'manifest' && parsed.value.subject?.digest, D3);
  });

  test('an empty index is valid and has no children', () => {
    const parsed = parseManifest(json({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }), MediaType.ociIndex, 'empty');
    assert.deepEqual(childrenOf(parsed), []);
  });

  test('foreign layers with urls are still listed as children', () => {
    const doc = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, digest: D1, size: 3 },
      layers: [{ mediaType: MediaType.dockerForeignLayer, digest: D2, size: 3, urls: ['https://example.invalid/layer'] }],
    };
    const kids = childrenOf(parseManifest(json(doc), MediaType.dockerManifest, 'windows image'));
    assert.deepEqual(kids[1]!.urls, ['https://example.invalid/layer']);
  });
});

describe('parseManifest: refusals', () => {
  function refuses(bytes: Buffer, mediaType: string, type: typeof IntegrityError | typeof UsageError, code: string, text: RegExp | string) {
    assert.throws(
      () => parseManifest(bytes, mediaType, 'docker.io/library/nginx:1.27'),
      (e: unknown) => {
        assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
        assert.equal((e as IntegrityError).code, code);
        assert.ok(e.message.startsWith('docker.io/library/nginx:1.27'), `message names the manifest: ${e.message}`);
        if (typeof text === 'string') assert.ok(e.message.includes(text), e.message);
        else assert.match(e.message, text);
        return true;
      },
    );
  }

  test('schema 1, by media type or by schemaVersion, with a hint', () => {
    const s1 = json({ schemaVersion: 1, name: 'library/nginx', tag: '1', fsLayers: [], history: [] });
    for (const mt of [MediaType.dockerSchema1, MediaType.dockerSchema1Signed]) refuses(s1, mt, UsageError, 'MANIFEST_SCHEMA1', 'schema 1');
    refuses(s1, 'application/json', UsageError, 'MANIFEST_SCHEMA1', 'schema 1');
    assert.throws(() => parseManifest(s1, MediaType.dockerSchema1Signed, 'm'), (e: unknown) => e instanceof UsageError && /re-push/.test(e.hint ?? ''));
  });

  test('more than MAX_MANIFEST_BYTES is refused before parsing; exactly the limit is fine', () => {
    const doc = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
    const atLimit = Buffer.from(doc.padEnd(MAX_MANIFEST_BYTES, ' '));
    assert.equal(parseManifest(atLimit, MediaType.ociIndex, 'big').kind, 'index');
    const over = Buffer.from(doc.padEnd(MAX_MANIFEST_BYTES + 1, ' '));
    refuses(over, MediaType.ociIndex, IntegrityError, 'MANIFEST_TOO_LARGE', `more than the ${MAX_MANIFEST_BYTES}-byte limit`);
  });

  const config = { mediaType: MediaType.ociConfig, digest: D1, size: 3 };
  const layer = { mediaType: MediaType.ociLayerGzip, digest: D2, size: 3 };
  const m = (over: Record<string, unknown>) => json({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer], ...over });
  const cases: [string, Buffer, string, RegExp | string][] = [
    ['not JSON', Buffer.from('{"schemaVersion": 2,'), 'MANIFEST_INVALID', 'not valid JSON'],
    ['JSON null', Buffer.from('null'), 'MANIFEST_INVALID', 'not a JSON object'],
    ['a JSON string', Buffer.from('"manifest"'), 'MANIFEST_INVALID', 'not a JSON object'],
    ['no schemaVersion', json({ mediaType: MediaType.ociManifest }), 'MANIFEST_INVALID', 'unsupported schemaVersion undefined'],
    ['schemaVersion 3', m({ schemaVersion: 3 }), 'MANIFEST_INVALID', 'unsupported schemaVersion 3'],
    ['schemaVersion "2"', m({ schemaVersion: '2' }), 'MANIFEST_INVALID', 'unsupported schemaVersion 2'],
    ['no config', m({ config: undefined }), 'MANIFEST_INVALID', 'config: descriptor is not an object'],
    ['no layers', m({ layers: undefined }), 'MANIFEST_INVALID', 'no layers list'],
    ['layers not a list', m({ layers: {} }), 'MANIFEST_INVALID', 'no layers list'],
    ['a layer without mediaType', m({ layers: [{ digest: D2, size: 3 }] }), 'MANIFEST_INVALID', 'layers[0]: descriptor has no mediaType'],
    ['a layer without digest', m({ layers: [layer, { mediaType: 'x', size: 3 }] }), 'MANIFEST_INVALID', 'layers[1]: descriptor has no digest'],
    ['a layer with a bad digest', m({ layers: [{ ...layer, digest: 'sha256:abc' }] }), 'MANIFEST_INVALID', /layers\[0\]: invalid descriptor digest "sha256:abc"/],
    ['a layer with an md5 digest', m({ layers: [{ ...layer, digest: `md5:${'0'.repeat(32)}` }] }), 'MANIFEST_INVALID', 'layers[0]'],
    ['a negative size', m({ layers: [{ ...layer, size: -1 }] }), 'MANIFEST_INVALID', `descriptor ${D2} has no valid size`],
    ['a fractional size', m({ layers: [{ ...layer, size: 1.5 }] }), 'MANIFEST_INVALID', 'no valid size'],
    ['a string size', m({ layers: [{ ...layer, size: '3' }] }), 'MANIFEST_INVALID', 'no valid size'],
    ['a size beyond 2^53', m({ layers: [{ ...layer, size: 2 ** 60 }] }), 'MANIFEST_INVALID', 'no valid size'],
    ['a layer that is null', m({ layers: [null] }), 'MANIFEST_INVALID', 'layers[0]: descriptor is not an object'],
    ['a bad subject', m({ subject: { mediaType: MediaType.ociManifest, size: 1 } }), 'MANIFEST_INVALID', 'subject: descriptor has no digest'],
    ['an index without manifests', json({ schemaVersion: 2, mediaType: MediaType.ociIndex }), 'MANIFEST_INVALID', 'index has no manifests list'],
    [
      'an index with a bad child',
      json({ schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests: [{ mediaType: MediaType.dockerManifest, digest: D1, size: -5 }] }),
      'MANIFEST_INVALID',
      'manifests[0]',
    ],
  ];
  for (const [name, bytes, code, text] of cases) {
    test(`refuses ${name}`, () => refuses(bytes, MediaType.ociManifest, IntegrityError, code, text));
  }

  test('a document that is neither manifest nor index is unsupported, naming its media type', () => {
    refuses(json({ schemaVersion: 2, mediaType: 'application/vnd.example.thing' }), 'application/vnd.example.thing', UsageError, 'MANIFEST_UNSUPPORTED', '"application/vnd.example.thing"');
  });
});
