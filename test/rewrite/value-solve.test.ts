// The probe's candidate values and the solver over probe traces (pure): which values get a marker,
// and what each traced image needs them set to, shared values agreeing across images.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTarget } from '../../src/rewrite/mapping.ts';
import { leavesIn, probeLeaves, traceOf, type ProbeLeaf } from '../../src/rewrite/value-probe.ts';
import { mappedPrefix, solvePairs } from '../../src/rewrite/value-solve.ts';

const TARGET = parseTarget('r.internal:5000/mirror');

/** A probe render, as a template would make it: the markers put where the template puts the values. */
function traced(leaves: ProbeLeaf[], key: string, image: string, marked: string) {
  const trace = traceOf(image, [marked], leaves);
  assert.ok(trace, `${marked} traces back to ${image}`);
  return { key, image, trace };
}

describe('probe candidates', () => {
  it('names, registries (set, empty, absent) and a map\'s missing registry are marked; other strings are not', () => {
    const top = {
      global: { imageRegistry: '' },
      nameOverride: 'nginx',
      admin: { image: 'vendor.example/app/admin' },
      cache: { registry: 'ghcr.io', repository: 'vendor/cache', tag: '6.0' },
      pullSecret: { registry: 'docker.io', username: 'robot' },
      web: { image: { repository: 'nginx' } },
      sub: { global: { image: { repository: 'quay.io/x/cd' } } },
      // a component's name that is also its image's last path component names resources, not images
      controller: { name: 'controller', ingressClass: 'nginx', image: { registry: 'registry.k8s.io', image: 'ingress-nginx/controller' } },
      exporter: { image: { name: 'exporter' } },
    };
    const images = ['vendor.example/app/admin:1', 'ghcr.io/vendor/cache:6.0', 'docker.io/library/nginx:1.27', 'quay.io/x/cd:v2', 'registry.k8s.io/ingress-nginx/controller:v1', 'quay.io/x/exporter:1'];
    const leaves = probeLeaves(top, images, [[], ['sub']]);
    const paths = leaves.map((l) => l.segments.join('.'));
    for (const p of ['global.imageRegistry', 'admin.image', 'cache.registry', 'cache.repository', 'pullSecret.registry', 'web.image.repository', 'web.image.registry', 'global.image.repository', 'global.image.registry', 'global.registry', 'imageRegistry', 'sub.imageRegistry', 'controller.image.registry', 'controller.image.image', 'exporter.image.name']) {
      assert.ok(paths.includes(p), p);
    }
    for (const p of ['nameOverride', 'pullSecret.username', 'cache.tag', 'sub.global.image.repository', 'controller.name', 'controller.ingressClass']) assert.ok(!paths.includes(p), p);
    const admin = leaves.find((l) => l.segments.join('.') === 'admin.image')!;
    assert.equal(admin.marker, `p${admin.id}.airlock-probe.invalid/app/admin`);
    assert.deepEqual(leavesIn(`docker.io/${admin.marker}:1`, leaves), [admin]);
    assert.equal(leavesIn(`p${admin.id}.airlock-probe.invalid/changed:1`, leaves), undefined, 'a marker the template changed is no model');
    const cache = leaves.find((l) => l.segments.join('.') === 'cache.registry')!;
    assert.equal(cache.marker, `p${cache.id}.airlock-probe.invalid`, 'a host alone becomes the marker host');
    const tagged = probeLeaves({ proxy: { image: 'nginx:1.27' } }, ['docker.io/library/nginx:1.27'])[0]!;
    assert.equal(tagged.marker, `p${tagged.id}.airlock-probe.invalid/nginx:1.27`, 'a dot in a tag does not make a name a host');
  });
});

describe('solving traced values', () => {
  it('a shared registry is mapped as a prefix once; a docker library name behind it gets library/', () => {
    const top = { global: { imageRegistry: '' }, app: { image: { registry: 'docker.io', repository: 'acme/app' } }, wait: { image: { registry: 'docker.io', repository: 'busybox' } } };
    const leaves = probeLeaves(top, ['docker.io/acme/app:1', 'docker.io/library/busybox:1.36'], [[]]);
    const id = (p: string) => leaves.find((l) => l.segments.join('.') === p)!;
    const g = id('global.imageRegistry');
    const app = traced(leaves, 'a', 'docker.io/acme/app:1', `${g.marker}/${id('app.image.repository').marker}:1`);
    const wait = traced(leaves, 'w', 'docker.io/library/busybox:1.36', `${g.marker}/${id('wait.image.repository').marker}:1.36`);
    assert.equal(app.trace.headDefaulted, true, 'global.imageRegistry is empty: the template defaulted it');
    const s = solvePairs([app, wait], TARGET);
    assert.deepEqual(s.unsolved, []);
    assert.deepEqual(new Map([...s.values].map(([k, v]) => [leaves[k]!.segments.join('.'), v])), new Map([['global.imageRegistry', 'r.internal:5000/mirror'], ['wait.image.repository', 'library/busybox']]));
  });

  it('a name string with its tag elsewhere is set whole; a registry written in the template cannot be moved', () => {
    const top = { admin: { image: 'vendor.example/app/admin' }, tool: { image: 'acme/tool' } };
    const leaves = probeLeaves(top, ['vendor.example/app/admin:4.2', 'docker.io/acme/tool:1'], [[]]);
    const leaf = (p: string) => leaves.find((l) => l.segments.join('.') === p)!;
    const admin = traced(leaves, 'a', 'vendor.example/app/admin:4.2', `${leaf('admin.image').marker}:4.2`);
    const tool = traced(leaves, 't', 'docker.io/acme/tool:1', `docker.io/${leaf('tool.image').marker}:1`);
    const s = solvePairs([admin, tool], TARGET);
    assert.deepEqual([...s.values], [[leaf('admin.image').id, 'r.internal:5000/mirror/app/admin']]);
    assert.deepEqual(s.unsolved, ['t']);
  });

  it('registry and hub values map as name prefixes', () => {
    assert.equal(mappedPrefix('docker.io/istio', TARGET), 'r.internal:5000/mirror/istio');
    assert.equal(mappedPrefix('quay.io', TARGET), 'r.internal:5000/mirror');
    assert.equal(mappedPrefix('docker.io', TARGET), 'r.internal:5000/mirror');
    assert.equal(mappedPrefix('not a registry', TARGET), undefined);
  });
});
