// Pins to an upstream index the registry does not hold (its push fell back to the reduced index):
// which ones are mapped (decided from the import history), and how post-render rewrites them in
// every shape a manifest holds an image — a reference string, a name already at the target (an
// overlay moved it), and a {registry, repository, digest} map.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideDigestMap } from '../../src/rewrite/digest-map.ts';
import { parseTarget, type Target } from '../../src/rewrite/mapping.ts';
import { postRender } from '../../src/rewrite/post-render.ts';
import type { HistoryEntry } from '../../src/history/history.ts';
import type { Digest } from '../../src/core/digest.ts';

const O = `sha256:${'a'.repeat(64)}` as Digest;
const R = `sha256:${'b'.repeat(64)}` as Digest;
const O2 = `sha256:${'c'.repeat(64)}` as Digest;
const R2 = `sha256:${'d'.repeat(64)}` as Digest;
const reduced = [
  { image: 'quay.io/x/a:1', original: O, reduced: R },
  { image: 'quay.io/x/b:1', original: O2, reduced: R2 },
];

function push(target: string, kept: Record<string, 'original' | 'reduced'>): HistoryEntry {
  return {
    time: '2026-01-01T00:00:00.000Z',
    prev: '',
    action: 'push',
    bundle: '/b.tar',
    name: 'b',
    version: '1',
    inventory: 'sha256:0',
    key: null,
    verified: false,
    target,
    images: 2,
    indexes: reduced.filter((r) => kept[r.original]).map((r) => ({ image: r.image, target: `${target}/x`, original: r.original, reduced: r.reduced, kept: kept[r.original]! })),
  };
}

describe('which pinned digests are mapped', () => {
  it('by the last push to the same target: kept upstream index left, refused mapped, unrecorded mapped', () => {
    const target = parseTarget('reg.internal:5000/site');
    const history = [push('reg.internal:5000/site', { [O]: 'reduced', [O2]: 'reduced' }), push('other:5000', { [O2]: 'original' }), push('reg.internal:5000/site', { [O]: 'original' })];
    const m = decideDigestMap(reduced, history, target);
    assert.deepEqual(
      m.decisions.map((d) => [d.image, d.mapped, d.why]),
      [
        ['quay.io/x/a:1', false, 'kept'],
        ['quay.io/x/b:1', true, 'refused'],
      ],
    );
    assert.deepEqual([...m.digests], [[O2, R2]]);
    const fresh = decideDigestMap(reduced, [], target);
    assert.deepEqual(fresh.decisions.map((d) => d.why), ['unrecorded', 'unrecorded']);
    assert.deepEqual([...fresh.digests], [[O, R], [O2, R2]]);
  });
});

describe('post-render with pinned digests to map', () => {
  const target: Target = { ...parseTarget('reg.internal:5000/site'), digests: new Map([[O, R]]) };
  const pod = (containers: string): string => `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n${containers}`;

  it('maps the digest of a pinned reference with its name, and of one whose name is at the target already', () => {
    const text = pod(`    - {name: a, image: quay.io/x/a@${O}}\n    - {name: b, image: "reg.internal:5000/site/x/a:1@${O}"}\n    - {name: c, image: quay.io/x/a@${O2}}\n`);
    const r = postRender(text, target);
    assert.equal(r.text, pod(`    - {name: a, image: reg.internal:5000/site/x/a@${R}}\n    - {name: b, image: "reg.internal:5000/site/x/a:1@${R}"}\n    - {name: c, image: reg.internal:5000/site/x/a@${O2}}\n`));
    assert.deepEqual(r.remaining, []);
    // Run again: nothing more to do.
    assert.equal(postRender(r.text, target).changed.length, 0);
  });

  it('maps the digest field of an image map beside its registry and repository', () => {
    const text = `apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\nspec:\n  image:\n    registry: quay.io\n    repository: x/a\n    digest: ${O}\n`;
    const r = postRender(text, target);
    assert.equal(r.text, `apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\nspec:\n  image:\n    registry: reg.internal:5000\n    repository: site/x/a\n    digest: ${R}\n`);
  });
});
