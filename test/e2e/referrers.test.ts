// Signatures, attestations and SBOMs cross with their image without being named: an image signed
// upstream with a cosign key signature (the tag scheme, made here with openssl), a cosign attestation
// on one platform manifest, and an SPDX SBOM attached by the OCI referrers tag schema (docker-registry
// 2.8 has no referrers API). lock finds them, pack carries them, push puts them where clients look,
// and on the other side the signature verifies with only skopeo and openssl; serve answers the tags
// and the referrers API (and is itself an upstream with that API for a second lock).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { buildArtifact, buildImage, buildIndex, seedRegistry, type BlobData, type BuiltImage } from '../helpers/images.ts';
import { skopeo, skopeoInspectRaw } from '../helpers/skopeo.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { startServe, type RunningServe } from '../helpers/serve.ts';
import { runBounded } from '../helpers/run.ts';
import { digestOf, type Digest } from '../../src/core/digest.ts';
import { MediaType } from '../../src/core/media-types.ts';
import { parseLock, type LockedReferrer } from '../../src/spec/lock.ts';

const SPDX = 'application/spdx+json';
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';

function blob(mediaType: string, bytes: Buffer): BlobData {
  return { descriptor: { mediaType, digest: digestOf(bytes), size: bytes.length }, bytes };
}

/** What `cosign sign --key` pushes: an OCI manifest whose one layer is the payload, the signature in its annotation. */
function cosignManifest(layerType: string, payload: Buffer, annotations: Record<string, string>): BuiltImage {
  const layer = blob(layerType, payload);
  layer.descriptor.annotations = annotations;
  const config = blob(MediaType.ociConfig, Buffer.from(JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: [layer.descriptor.digest] }, config: {} })));
  const manifest = blob(MediaType.ociManifest, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: config.descriptor, layers: [layer.descriptor] })));
  return { root: manifest.descriptor, blobs: [layer, config, manifest], platforms: [] };
}

const hex = (d: Digest | string): string => d.slice('sha256:'.length);

async function openssl(args: string[], cwd: string): Promise<string> {
  const r = await runBounded('openssl', args, { timeoutMs: 30_000, cwd, install: 'apt-get install openssl' });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (exit ${r.code}): ${r.stdout.toString('utf8')}${r.stderr}`);
  return r.stdout.toString('utf8');
}

async function get(url: string, accept?: string): Promise<{ status: number; bytes: Buffer; headers: Headers }> {
  const res = await fetch(url, accept ? { headers: { accept } } : {});
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

describe('signatures, attestations and SBOMs cross with their image', () => {
  let src: RunningRegistry;
  let dst: RunningRegistry;
  let dir: string;
  let app: BuiltImage;
  let amd: BuiltImage;
  let sig: BuiltImage;
  let att: BuiltImage;
  let sbom: BuiltImage;
  let tagIndex: Buffer;
  let payload: Buffer;
  const spdx = Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'shop-app', packages: [{ name: 'busybox', versionInfo: '1.36.1' }] }));
  const env = (): NodeJS.ProcessEnv => ({ AIRLOCK_CACHE: join(dir, 'cache'), DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: '' });
  const spec = (host: string, extra = ''): string => ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: signed, version: 1.0.0}', 'images:', `  - ${host}/shop/app:1.0`, extra, ''].join('\n');

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'airlock-referrers-'));
    amd = buildImage({ layers: [{ files: { 'etc/arch': 'amd64' } }], platform: 'linux/amd64' });
    app = buildIndex([amd, buildImage({ layers: [{ files: { 'etc/arch': 'arm64' } }], platform: 'linux/arm64' })]);
    await seedRegistry(src.url, 'shop/app', '1.0', app);

    // A cosign key signature over the index, made with an openssl P-256 key.
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'key.pem'], dir);
    await openssl(['ec', '-in', 'key.pem', '-pubout', '-out', 'key.pub'], dir);
    payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': `${src.host}/shop/app` }, image: { 'docker-manifest-digest': app.root.digest }, type: 'cosign container image signature' }, optional: null }));
    await writeFile(join(dir, 'payload.json'), payload);
    await openssl(['dgst', '-sha256', '-sign', 'key.pem', '-out', 'upstream.sig', 'payload.json'], dir);
    sig = cosignManifest(SIMPLE_SIGNING, payload, { [SIGNATURE_ANNOTATION]: (await readFile(join(dir, 'upstream.sig'))).toString('base64') });
    await seedRegistry(src.url, 'shop/app', `sha256-${hex(app.root.digest)}.sig`, sig);

    // A cosign attestation on the amd64 manifest only.
    att = cosignManifest('application/vnd.dsse.envelope.v1+json', Buffer.from(JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: Buffer.from('{}').toString('base64'), signatures: [] })), { predicateType: 'https://slsa.dev/provenance/v1' });
    await seedRegistry(src.url, 'shop/app', `sha256-${hex(amd.root.digest)}.att`, att);

    // An SBOM by the referrers tag schema: the artifact with its subject, and the index under sha256-<hex>.
    sbom = buildArtifact({ artifactType: SPDX, files: [{ mediaType: SPDX, bytes: spdx }], subject: app.root, annotations: { 'org.opencontainers.image.created': '2024-05-01T00:00:00Z' } });
    await seedRegistry(src.url, 'shop/app', sbom.root.digest, sbom);
    tagIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: sbom.root.mediaType, digest: sbom.root.digest, size: sbom.root.size, artifactType: SPDX, annotations: { 'org.opencontainers.image.created': '2024-05-01T00:00:00Z' } }] }));
    await seedRegistry(src.url, 'shop/app', `sha256-${hex(app.root.digest)}`, { root: blob(MediaType.ociIndex, tagIndex).descriptor, blobs: [blob(MediaType.ociIndex, tagIndex)], platforms: [] });

    await writeFile(join(dir, 'airlock.yaml'), spec(src.host));
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('lock finds the signature and the attestation by their cosign tags and the SBOM by the referrers tag schema; twice the same lock', async () => {
    const r = await airlock(['lock', '-f', join(dir, 'airlock.yaml')], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /shop\/app:1\.0 carries .*1 signature/);
    const text = await readFile(join(dir, 'airlock.lock'), 'utf8');
    const referrers = parseLock(text).images[0]!.referrers ?? [];
    const pick = (r: LockedReferrer) => ({ subject: r.subject, kind: r.kind, digest: r.digest, found: r.found, tag: r.tag, artifactType: r.artifactType });
    assert.deepEqual(referrers.map(pick), [
      // Sorted by subject, then kind: deterministic whatever order the registry answers in.
      ...[
        { subject: app.root.digest, kind: 'referrers-index', digest: digestOf(tagIndex), found: 'tag', tag: `sha256-${hex(app.root.digest)}`, artifactType: undefined },
        { subject: app.root.digest, kind: 'sbom', digest: sbom.root.digest, found: 'tag-schema', tag: undefined, artifactType: SPDX },
        { subject: app.root.digest, kind: 'signature', digest: sig.root.digest, found: 'tag', tag: `sha256-${hex(app.root.digest)}.sig`, artifactType: undefined },
      ],
      { subject: amd.root.digest, kind: 'attestation', digest: att.root.digest, found: 'tag', tag: `sha256-${hex(amd.root.digest)}.att`, artifactType: undefined },
    ].sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0)));
    const again = await airlock(['lock', '-f', join(dir, 'airlock.yaml')], { env: env() });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await readFile(join(dir, 'airlock.lock'), 'utf8'), text, 'the same lock twice');
  });

  test('pack carries them; inspect shows what the image carries; verify finds the bundle intact', async () => {
    const r = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'signed.tar'), '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const res = resultOf(r.stdout);
    assert.equal(res.images, 1, 'the image is one image; what refers to it is not counted as one');
    assert.equal(res.referrers, 4);
    const i = await airlock(['inspect', join(dir, 'signed.tar'), '--json'], { env: env() });
    assert.equal(i.code, 0, i.stderr);
    const info = resultOf(i.stdout);
    assert.deepEqual(info.images.map((x: { reference: string }) => x.reference), [`${src.host}/shop/app:1.0`]);
    const carried = info.images[0].referrers as { reference: string; kind: string; digest: string; subject: string; artifactType?: string }[];
    assert.deepEqual(carried.map((c) => [c.kind, c.digest]).sort(), [['attestation', att.root.digest], ['referrers-index', digestOf(tagIndex)], ['sbom', sbom.root.digest], ['signature', sig.root.digest]].sort());
    assert.ok(carried.some((c) => c.reference === `${src.host}/shop/app:sha256-${hex(app.root.digest)}.sig`), 'the signature is named by its cosign tag');
    assert.ok(carried.some((c) => c.reference === `${src.host}/shop/app@${sbom.root.digest}` && c.artifactType === SPDX), 'the SBOM is named by its digest');
    const human = await airlock(['inspect', join(dir, 'signed.tar')], { env: env() });
    assert.match(human.stdout, /CARRIES/);
    assert.match(human.stdout, new RegExp(`sbom +${SPDX.replace('+', '\\+')} +${sbom.root.digest}`));
    const v = await airlock(['verify', join(dir, 'signed.tar')], { env: env() });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    // skopeo reads the signature out of the bundle under its cosign tag, as any OCI layout entry.
    const raw = await skopeoInspectRaw(`oci-archive:${join(dir, 'signed.tar')}:${src.host}/shop/app:sha256-${hex(app.root.digest)}.sig`);
    assert.equal(digestOf(raw), sig.root.digest);
  });

  test('push: the signature verifies on the other side with skopeo and openssl; the SBOM is listed under the tag schema, bytes identical', async () => {
    const r = await airlock(['push', join(dir, 'signed.tar'), `${dst.host}/mirror`, '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const res = resultOf(r.stdout);
    assert.deepEqual(res.referrersTags.map((u: { target: string; added: number; upstream: boolean }) => [u.target, u.added, u.upstream]), [[`${dst.host}/mirror/shop/app:sha256-${hex(app.root.digest)}`, 1, true]]);

    // The signature manifest under its cosign tag, exactly upstream's bytes.
    const sigRef = `docker://${dst.host}/mirror/shop/app:sha256-${hex(app.root.digest)}.sig`;
    const manifest = await skopeoInspectRaw(sigRef);
    assert.equal(digestOf(manifest), sig.root.digest);
    const layer = (JSON.parse(manifest.toString('utf8')) as { layers: { digest: string; annotations: Record<string, string> }[] }).layers[0]!;
    await writeFile(join(dir, 'pushed.sig'), Buffer.from(layer.annotations[SIGNATURE_ANNOTATION]!, 'base64'));
    await skopeo(['copy', '--src-tls-verify=false', sigRef, `dir:${join(dir, 'sigdir')}`]);
    const pulled = await readFile(join(dir, 'sigdir', hex(layer.digest)));
    assert.ok(pulled.equals(payload), 'the payload pulled back is the one signed');
    await writeFile(join(dir, 'pulled-payload.json'), pulled);
    assert.match(await openssl(['dgst', '-sha256', '-verify', 'key.pub', '-signature', 'pushed.sig', 'pulled-payload.json'], dir), /Verified OK/);
    // A payload one byte off does not verify: the check above is a real one.
    await writeFile(join(dir, 'other-payload.json'), Buffer.concat([pulled, Buffer.from(' ')]));
    await assert.rejects(openssl(['dgst', '-sha256', '-verify', 'key.pub', '-signature', 'pushed.sig', 'other-payload.json'], dir), /Verification failure/);

    // The attestation on the amd64 manifest, under its cosign tag.
    assert.equal(digestOf(await skopeoInspectRaw(`docker://${dst.host}/mirror/shop/app:sha256-${hex(amd.root.digest)}.att`)), att.root.digest);

    // docker-registry 2.8 has no referrers API: the tag schema index lists the SBOM, and its blob is the same bytes.
    assert.equal((await get(`${dst.url}/v2/mirror/shop/app/referrers/${app.root.digest}`)).status, 404);
    const index = await get(`${dst.url}/v2/mirror/shop/app/manifests/sha256-${hex(app.root.digest)}`, MediaType.ociIndex);
    assert.equal(index.status, 200);
    assert.ok(index.bytes.equals(tagIndex), 'the upstream index, byte for byte');
    const listed = (JSON.parse(index.bytes.toString('utf8')) as { manifests: { digest: string; artifactType: string }[] }).manifests;
    assert.deepEqual(listed.map((m) => [m.digest, m.artifactType]), [[sbom.root.digest, SPDX]]);
    const sbomDoc = JSON.parse((await get(`${dst.url}/v2/mirror/shop/app/manifests/${sbom.root.digest}`, MediaType.ociManifest)).bytes.toString('utf8')) as { subject: { digest: string }; layers: { digest: string }[] };
    assert.equal(sbomDoc.subject.digest, app.root.digest);
    assert.ok((await get(`${dst.url}/v2/mirror/shop/app/blobs/${sbomDoc.layers[0]!.digest}`)).bytes.equals(spdx), 'the SBOM bytes are identical');

    // Pushed again: nothing to add, the index stays as it is.
    const again = await airlock(['push', join(dir, 'signed.tar'), `${dst.host}/mirror`, '--json'], { env: env() });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(resultOf(again.stdout).referrersTags, undefined);
    assert.ok((await get(`${dst.url}/v2/mirror/shop/app/manifests/sha256-${hex(app.root.digest)}`, MediaType.ociIndex)).bytes.equals(tagIndex));
  });

  test('push into a repository whose tag schema index lists another referrer already: the SBOM is added, the other kept', async () => {
    const report = buildArtifact({ artifactType: 'application/vnd.example.vuln-report+json', files: [{ mediaType: 'application/json', bytes: Buffer.from('{"critical":0}') }], subject: app.root });
    await seedRegistry(dst.url, 'merged/shop/app', report.root.digest, report);
    const existing = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ ...report.root, artifactType: 'application/vnd.example.vuln-report+json' }] }));
    await seedRegistry(dst.url, 'merged/shop/app', `sha256-${hex(app.root.digest)}`, { root: blob(MediaType.ociIndex, existing).descriptor, blobs: [blob(MediaType.ociIndex, existing)], platforms: [] });
    const r = await airlock(['push', join(dir, 'signed.tar'), `${dst.host}/merged`, '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(resultOf(r.stdout).referrersTags.map((u: { entries: number; added: number; upstream: boolean }) => [u.entries, u.added, u.upstream]), [[2, 1, false]]);
    const index = await get(`${dst.url}/v2/merged/shop/app/manifests/sha256-${hex(app.root.digest)}`, MediaType.ociIndex);
    const listed = (JSON.parse(index.bytes.toString('utf8')) as { manifests: { digest: string; artifactType: string; annotations?: Record<string, string> }[] }).manifests;
    assert.deepEqual(listed.map((m) => [m.digest, m.artifactType]), [[report.root.digest, 'application/vnd.example.vuln-report+json'], [sbom.root.digest, SPDX]]);
    assert.deepEqual(listed[1]!.annotations, { 'org.opencontainers.image.created': '2024-05-01T00:00:00Z' }, "the manifest's annotations, as the spec asks");
  });

  describe('serve', () => {
    let srv: RunningServe;
    before(async () => {
      srv = await startServe([join(dir, 'signed.tar'), '--listen', '127.0.0.1:0']);
    });
    after(async () => {
      await srv?.stop();
    });

    test('answers the cosign tags and the referrers API, filtered by artifactType; the SBOM bytes are identical', async () => {
      const signature = await get(`${srv.url}/v2/shop/app/manifests/sha256-${hex(app.root.digest)}.sig`, MediaType.ociManifest);
      assert.equal(signature.status, 200);
      assert.equal(digestOf(signature.bytes), sig.root.digest);
      const all = await get(`${srv.url}/v2/shop/app/referrers/${app.root.digest}`);
      assert.equal(all.status, 200);
      const listed = (JSON.parse(all.bytes.toString('utf8')) as { manifests: { digest: string; artifactType: string; annotations?: Record<string, string> }[] }).manifests;
      assert.deepEqual(listed.map((m) => [m.digest, m.artifactType]), [[sbom.root.digest, SPDX]]);
      assert.deepEqual(listed[0]!.annotations, { 'org.opencontainers.image.created': '2024-05-01T00:00:00Z' });
      const filtered = await get(`${srv.url}/v2/shop/app/referrers/${app.root.digest}?artifactType=${encodeURIComponent(SPDX)}`);
      assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
      assert.equal((JSON.parse(filtered.bytes.toString('utf8')) as { manifests: unknown[] }).manifests.length, 1);
      const none = await get(`${srv.url}/v2/shop/app/referrers/${app.root.digest}?artifactType=${encodeURIComponent('application/vnd.example.other')}`);
      assert.deepEqual((JSON.parse(none.bytes.toString('utf8')) as { manifests: unknown[] }).manifests, []);
      // Through the mirror name containerd uses too.
      const mirrored = await get(`${srv.url}/v2/shop/app/referrers/${app.root.digest}?ns=${src.host}`);
      assert.equal((JSON.parse(mirrored.bytes.toString('utf8')) as { manifests: unknown[] }).manifests.length, 1);
      const sbomDoc = JSON.parse((await get(`${srv.url}/v2/shop/app/manifests/${sbom.root.digest}`, MediaType.ociManifest)).bytes.toString('utf8')) as { layers: { digest: string }[] };
      assert.ok((await get(`${srv.url}/v2/shop/app/blobs/${sbomDoc.layers[0]!.digest}`)).bytes.equals(spdx));
    });

    test('a lock from serve (a registry with the referrers API) finds the SBOM through the API', async () => {
      const there = join(dir, 'from-serve');
      await mkdir(there, { recursive: true });
      await writeFile(join(there, 'airlock.yaml'), spec(srv.host));
      const r = await airlock(['lock', '-f', join(there, 'airlock.yaml')], { env: env() });
      assert.equal(r.code, 0, r.stderr);
      const referrers = parseLock(await readFile(join(there, 'airlock.lock'), 'utf8')).images[0]!.referrers ?? [];
      assert.deepEqual(referrers.map((x) => [x.kind, x.digest, x.found]).sort(), [
        ['attestation', att.root.digest, 'tag'],
        ['sbom', sbom.root.digest, 'referrers'],
        ['signature', sig.root.digest, 'tag'],
      ].sort(), 'no tag schema index where the API answers');
    });
  });

  test('--no-referrers on lock and on pack, and `referrers: false` in the spec, leave them out', async () => {
    const off = join(dir, 'off');
    await mkdir(off, { recursive: true });
    await writeFile(join(off, 'airlock.yaml'), spec(src.host));
    const l = await airlock(['lock', '-f', join(off, 'airlock.yaml'), '--no-referrers'], { env: env() });
    assert.equal(l.code, 0, l.stderr);
    assert.doesNotMatch(await readFile(join(off, 'airlock.lock'), 'utf8'), /referrers:/);

    // The lock that lists them, packed without them: the same bundle as an image-only one.
    const p = await airlock(['pack', '-f', join(dir, 'airlock.yaml'), '-o', join(dir, 'plain.tar'), '--no-referrers', '--json'], { env: env() });
    assert.equal(p.code, 0, p.stderr);
    assert.equal(resultOf(p.stdout).referrers, undefined);
    const i = await airlock(['inspect', join(dir, 'plain.tar'), '--json'], { env: env() });
    assert.deepEqual(resultOf(i.stdout).images[0].referrers, []);

    await writeFile(join(off, 'airlock.yaml'), spec(src.host, 'referrers: false'));
    const s = await airlock(['lock', '-f', join(off, 'airlock.yaml')], { env: env() });
    assert.equal(s.code, 0, s.stderr);
    assert.doesNotMatch(await readFile(join(off, 'airlock.lock'), 'utf8'), /referrers:/);
    await writeFile(join(off, 'airlock.yaml'), spec(src.host, 'referrers: sometimes'));
    const bad = await airlock(['lock', '-f', join(off, 'airlock.yaml')], { env: env() });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /referrers must be true or false/);
  });

  test('a signed SBOM: the signature of the SBOM is found too; an entry of a stale tag schema index is left out, and push writes the indexes the target lacks', async () => {
    const tool = buildImage({ layers: [{ files: { 'bin/tool': '#!/bin/sh\n' } }] });
    await seedRegistry(src.url, 'shop/tool', '2', tool);
    const toolSbom = buildArtifact({ artifactType: SPDX, files: [{ mediaType: SPDX, bytes: Buffer.from('{"spdxVersion":"SPDX-2.3","name":"tool"}') }], subject: tool.root });
    const sbomSig = buildArtifact({ artifactType: 'application/vnd.cncf.notary.signature', files: [{ mediaType: 'application/jose+json', bytes: Buffer.from('{"payload":"e30","signatures":[]}') }], subject: toolSbom.root });
    const gone = buildArtifact({ artifactType: SPDX, files: [{ mediaType: SPDX, bytes: Buffer.from('{"deleted":true}') }], subject: tool.root });
    for (const a of [toolSbom, sbomSig, gone]) await seedRegistry(src.url, 'shop/tool', a.root.digest, a);
    const list = (...items: BuiltImage[]): BuiltImage => {
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: items.map((i) => ({ ...i.root })) }));
      return { root: blob(MediaType.ociIndex, bytes).descriptor, blobs: [blob(MediaType.ociIndex, bytes)], platforms: [] };
    };
    // `gone` was deleted upstream after it was listed: the index is stale.
    await seedRegistry(src.url, 'shop/tool', `sha256-${hex(tool.root.digest)}`, list(toolSbom, gone));
    await seedRegistry(src.url, 'shop/tool', `sha256-${hex(toolSbom.root.digest)}`, list(sbomSig));
    assert.equal((await fetch(`${src.url}/v2/shop/tool/manifests/${gone.root.digest}`, { method: 'DELETE' })).status, 202);
    const there = join(dir, 'tool');
    await mkdir(there, { recursive: true });
    await writeFile(join(there, 'airlock.yaml'), ['apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: tool, version: 1.0.0}', 'images:', `  - ${src.host}/shop/tool:2`, ''].join('\n'));
    const l = await airlock(['lock', '-f', join(there, 'airlock.yaml')], { env: env() });
    assert.equal(l.code, 0, l.stderr);
    const referrers = parseLock(await readFile(join(there, 'airlock.lock'), 'utf8')).images[0]!.referrers ?? [];
    assert.deepEqual(referrers.map((r) => [r.subject, r.kind, r.digest, r.found]).sort(), [
      [tool.root.digest, 'sbom', toolSbom.root.digest, 'tag-schema'],
      [toolSbom.root.digest, 'referrers-index', list(sbomSig).root.digest, 'tag'],
      [toolSbom.root.digest, 'signature', sbomSig.root.digest, 'tag-schema'],
    ].sort(), 'the stale index and its missing entry are left out; the live SBOM and its signature are carried');
    const p = await airlock(['pack', '-f', join(there, 'airlock.yaml'), '-o', join(there, 'tool.tar')], { env: env() });
    assert.equal(p.code, 0, p.stderr);
    const i = resultOf((await airlock(['inspect', join(there, 'tool.tar'), '--json'], { env: env() })).stdout);
    assert.deepEqual(i.images[0].referrers.map((r: { kind: string }) => r.kind).sort(), ['referrers-index', 'sbom', 'signature'], 'the signature of the SBOM is listed with the image');
    const r = await airlock(['push', join(there, 'tool.tar'), dst.host, '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(resultOf(r.stdout).referrersTags.map((u: { subject: string; entries: number; upstream: boolean }) => [u.subject, u.entries, u.upstream]).sort(), [
      [tool.root.digest, 1, false],
      [toolSbom.root.digest, 1, true],
    ].sort());
    const index = await get(`${dst.url}/v2/shop/tool/manifests/sha256-${hex(tool.root.digest)}`, MediaType.ociIndex);
    assert.deepEqual((JSON.parse(index.bytes.toString('utf8')) as { manifests: { digest: string; artifactType: string }[] }).manifests.map((m) => [m.digest, m.artifactType]), [[toolSbom.root.digest, SPDX]]);
  });

  test('export leaves the signatures and SBOMs out: nodes import the image alone', async () => {
    const out = join(dir, 'exported');
    const r = await airlock(['export', 'k3s', join(dir, 'signed.tar'), out, '--json'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const res = resultOf(r.stdout);
    assert.deepEqual(res.files.flatMap((f: { images: string[] }) => f.images), [`${src.host}/shop/app:1.0`]);
    assert.equal(res.skipped.length, 4);
  });
});
