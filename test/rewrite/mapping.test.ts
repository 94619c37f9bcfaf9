import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapAll, mapReference, parseTarget } from '../../src/rewrite/mapping.ts';
import { formatReference, parseReference } from '../../src/core/reference.ts';
import { ConflictError, UsageError } from '../../src/core/errors.ts';

test('host/path:tag maps to REGISTRY/PREFIX/path:tag', () => {
  const cases: [string, string, string][] = [
    ['nginx:1.27', 'registry.internal:5000/mirror', 'registry.internal:5000/mirror/library/nginx:1.27'],
    ['quay.io/prometheus/node-exporter:v1.8.2', 'harbor.local', 'harbor.local/prometheus/node-exporter:v1.8.2'],
    ['ghcr.io/a/b/c:1', '127.0.0.1:5000/x/y/', '127.0.0.1:5000/x/y/a/b/c:1'],
    [`registry.k8s.io/pause@sha256:${'c'.repeat(64)}`, 'r.local/p', `r.local/p/pause@sha256:${'c'.repeat(64)}`],
  ];
  for (const [src, target, want] of cases) assert.equal(formatReference(mapReference(parseReference(src), parseTarget(target))), want);
});

test('bad targets are usage errors naming the input', () => {
  assert.throws(() => parseTarget('Not A Host'), (e: unknown) => e instanceof UsageError && /Not A Host/.test(e.message));
  assert.throws(() => parseTarget('r.local/UPPER'), (e: unknown) => e instanceof UsageError && /UPPER/.test(e.message));
});

test('two sources on one target name are a conflict', () => {
  const refs = ['docker.io/x/app:1', 'quay.io/x/app:1'].map(parseReference);
  assert.throws(() => mapAll(refs, parseTarget('r.local')), (e: unknown) => e instanceof ConflictError && /docker.io\/x\/app:1 and quay.io\/x\/app:1 would both be pushed to r.local\/x\/app:1/.test(e.message));
  // Different tags of one repository are fine.
  assert.equal(mapAll(['docker.io/x/app:1', 'quay.io/x/app:2'].map(parseReference), parseTarget('r.local')).size, 2);
});

test('--keep-host: the source host goes under the prefix, so images that differ only by host do not collide', () => {
  const cases: [string, string, string][] = [
    ['nginx:1.27', 'r.local/mirror', 'r.local/mirror/docker.io/library/nginx:1.27'],
    ['quay.io/x/app:1', 'r.local', 'r.local/quay.io/x/app:1'],
    ['LOCALHOST:5000/team/app:2', 'r.local/p', 'r.local/p/localhost_5000/team/app:2'],
    [`registry.k8s.io/pause@sha256:${'c'.repeat(64)}`, 'r.local', `r.local/registry.k8s.io/pause@sha256:${'c'.repeat(64)}`],
  ];
  for (const [src, target, want] of cases) assert.equal(formatReference(mapReference(parseReference(src), parseTarget(target, { keepHost: true }))), want);
  const both = mapAll(['docker.io/x/app:1', 'quay.io/x/app:1'].map(parseReference), parseTarget('r.local', { keepHost: true }));
  assert.deepEqual([...both.values()].map((r) => formatReference(r)), ['r.local/docker.io/x/app:1', 'r.local/quay.io/x/app:1']);
});
