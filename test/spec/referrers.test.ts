// Referrers in the spec and the lock, and the names and kinds they go by (see test/e2e/referrers.test.ts
// for the whole crossing against real registries).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../src/core/errors.ts';
import { isValidTag } from '../../src/core/reference.ts';
import { cosignTag, kindOfArtifactType, referrersTag } from '../../src/core/referrers.ts';
import { formatLock, parseLock, type Lock, type LockedReferrer } from '../../src/spec/lock.ts';
import { parseSpec } from '../../src/spec/spec.ts';

const D1 = `sha256:${'1'.repeat(64)}` as const;
const D2 = `sha256:${'2'.repeat(64)}` as const;
const D3 = `sha256:${'3'.repeat(64)}` as const;
const D4 = `sha256:${'4'.repeat(64)}` as const;

test('tag names: cosign and the referrers tag schema; a sha512 subject is cut to 64 hex characters, still a valid tag', () => {
  assert.equal(referrersTag(D1), `sha256-${'1'.repeat(64)}`);
  assert.equal(cosignTag(D1, 'sig'), `sha256-${'1'.repeat(64)}.sig`);
  const long = `sha512:${'ab'.repeat(64)}` as const;
  assert.equal(referrersTag(long), `sha512-${'ab'.repeat(32)}`);
  assert.ok(isValidTag(cosignTag(long, 'sbom')));
});

test('an artifactType says what a referrer is to a user', () => {
  const cases: [string | undefined, string][] = [
    ['application/spdx+json', 'sbom'],
    ['application/vnd.cyclonedx+json', 'sbom'],
    ['application/vnd.in-toto+json', 'attestation'],
    ['application/vnd.dsse.envelope.v1+json', 'attestation'],
    ['application/vnd.dev.sigstore.bundle.v0.3+json', 'signature'],
    ['application/vnd.cncf.notary.signature', 'signature'],
    ['application/vnd.dev.cosign.artifact.sig.v1+json', 'signature'],
    // "sig" inside a word is not a signature.
    ['application/vnd.example.design+json', 'artifact'],
    [undefined, 'artifact'],
  ];
  for (const [type, kind] of cases) assert.equal(kindOfArtifactType(type), kind, String(type));
});

test('lock: referrers are written sorted, whatever order they were found in, and parse back', () => {
  const referrers: LockedReferrer[] = [
    { subject: D2, kind: 'attestation', digest: D4, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, found: 'tag', tag: `sha256-${'2'.repeat(64)}.att` },
    { subject: D1, kind: 'sbom', artifactType: 'application/spdx+json', digest: D3, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 20, found: 'tag-schema' },
    { subject: D1, kind: 'referrers-index', digest: D4, mediaType: 'application/vnd.oci.image.index.v1+json', size: 30, found: 'tag', tag: `sha256-${'1'.repeat(64)}` },
  ];
  const lock: Lock = { name: 'a', version: '1', platforms: undefined, images: [{ reference: 'quay.io/x/y:1', digest: D1, mediaType: 'application/vnd.oci.image.index.v1+json', size: 300, totalSize: 900, referrers }] };
  const text = formatLock(lock);
  assert.equal(formatLock({ ...lock, images: [{ ...lock.images[0]!, referrers: [...referrers].reverse() }] }), text, 'the order found does not matter');
  const back = parseLock(text).images[0]!.referrers!;
  assert.deepEqual(back.map((r) => r.kind), ['referrers-index', 'sbom', 'attestation'], 'by subject, then kind');
  assert.deepEqual(back.find((r) => r.kind === 'sbom'), referrers[1]);
  assert.equal(formatLock(parseLock(text)), text, 'round trip');
  // A lock without referrers is what it always was: no empty list.
  assert.doesNotMatch(formatLock({ ...lock, images: [{ ...lock.images[0]!, referrers: [] }] }), /referrers/);
});

test('lock: a referrer that is not one airlock writes is named', () => {
  const lock: Lock = { name: 'a', version: '1', platforms: undefined, images: [{ reference: 'quay.io/x/y:1', digest: D1, mediaType: 'm', size: 1, totalSize: 1, referrers: [{ subject: D1, kind: 'signature', digest: D2, mediaType: 'm', size: 1, found: 'tag', tag: 'sha256-x.sig' }] }] };
  const text = formatLock(lock);
  assert.throws(() => parseLock(text.replace('kind: signature', 'kind: autograph')), (e: unknown) => e instanceof UsageError && /images\[0\]\.referrers\[0\]\.kind must be one of signature, attestation, sbom, artifact, referrers-index, got "autograph"/.test(e.message));
  assert.throws(() => parseLock(text.replace(/\n\s+tag: sha256-x\.sig/, '')), /images\[0\]\.referrers\[0\] was found by tag but names none/);
  assert.throws(() => parseLock(text.replace('found: tag', 'found: rumour')), /referrers\[0\]\.found must be one of tag, referrers, tag-schema/);
});

test('spec: `referrers: false` is kept; anything but a boolean is refused', () => {
  const base = 'apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a}\nimages: [nginx]\n';
  assert.equal(parseSpec(`${base}referrers: false`).referrers, false);
  assert.equal(parseSpec(base).referrers, undefined);
  assert.throws(() => parseSpec(`${base}referrers: sometimes`, 'x/airlock.yaml'), (e: unknown) => e instanceof UsageError && /^x\/airlock\.yaml: referrers must be true or false/.test(e.message));
});
