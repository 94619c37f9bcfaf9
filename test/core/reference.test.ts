// Image references: the docker grammar and normalisation, with cases adopted from
// distribution/reference (reference_test.go, normalize_test.go), plus round-trip properties.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { UsageError } from '../../src/core/errors.ts';
import {
  type Reference,
  formatName,
  formatReference,
  isLoopbackHost,
  parseReference,
  registryHostname,
  withDigest,
} from '../../src/core/reference.ts';
import type { Digest } from '../../src/core/digest.ts';

const F64 = 'f'.repeat(64);
const SHA = `sha256:${F64}` as Digest;
const SHA512 = `sha512:${'f'.repeat(128)}` as Digest;
const HEXID = '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a';

function ref(registry: string, repository: string, tag?: string, digest?: Digest): Reference {
  return { registry, repository, tag, digest };
}

// input → the fully qualified value it must normalise to.
const valid: [string, Reference][] = [
  // familiar Docker Hub names
  ['nginx', ref('docker.io', 'library/nginx', 'latest')],
  ['nginx:1.27', ref('docker.io', 'library/nginx', '1.27')],
  ['library/nginx', ref('docker.io', 'library/nginx', 'latest')],
  ['docker.io/nginx', ref('docker.io', 'library/nginx', 'latest')],
  ['docker.io/library/nginx:1.27', ref('docker.io', 'library/nginx', '1.27')],
  ['index.docker.io/debian', ref('docker.io', 'library/debian', 'latest')],
  ['index.docker.io/fooo/bar', ref('docker.io', 'fooo/bar', 'latest')],
  ['registry-1.docker.io/x/y:2', ref('docker.io', 'x/y', '2')],
  ['dmcgowan/myapp', ref('docker.io', 'dmcgowan/myapp', 'latest')],
  ['library/foo/bar', ref('docker.io', 'library/foo/bar', 'latest')],
  ['store/foo/bar', ref('docker.io', 'store/foo/bar', 'latest')],
  ['other/library', ref('docker.io', 'other/library', 'latest')],
  ['ubuntu-12.04-base', ref('docker.io', 'library/ubuntu-12.04-base', 'latest')],
  ['thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', ref('docker.io', 'library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', 'latest')],
  // a first component without '.', ':' or uppercase and not localhost is a path, not a host
  ['test_com', ref('docker.io', 'library/test_com', 'latest')],
  ['test_com/foo', ref('docker.io', 'test_com/foo', 'latest')],
  ['docker/migrator', ref('docker.io', 'docker/migrator', 'latest')],
  ['test.com:tag', ref('docker.io', 'library/test.com', 'tag')],
  ['test.com:5000', ref('docker.io', 'library/test.com', '5000')],
  ['foo_bar.com:8080', ref('docker.io', 'library/foo_bar.com', '8080')],
  ['foo/foo_bar.com:8080', ref('docker.io', 'foo/foo_bar.com', '8080')],
  ['192.168.1.1', ref('docker.io', 'library/192.168.1.1', 'latest')],
  ['192.168.1.1:tag', ref('docker.io', 'library/192.168.1.1', 'tag')],
  ['192.168.1.1:5000', ref('docker.io', 'library/192.168.1.1', '5000')],
  ['localhost', ref('docker.io', 'library/localhost', 'latest')],
  ['dbcc1', ref('docker.io', 'library/dbcc1', 'latest')],
  [HEXID.slice(0, 63), ref('docker.io', `library/${HEXID.slice(0, 63)}`, 'latest')],
  // hosts: DNS names, ports, IPv4, [IPv6], localhost, punycode, uppercase
  ['test.com/repo:tag', ref('test.com', 'repo', 'tag')],
  ['test:5000/repo', ref('test:5000', 'repo', 'latest')],
  ['test-com:8080/foo', ref('test-com:8080', 'foo', 'latest')],
  ['test.com:8080/foo', ref('test.com:8080', 'foo', 'latest')],
  ['sub-dom1.foo.com/bar/baz/quux', ref('sub-dom1.foo.com', 'bar/baz/quux', 'latest')],
  ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', ref('sub-dom1.foo.com', 'bar/baz/quux', 'some-long-tag')],
  ['b.gcr.io/test.example.com/my-app:test.example.com', ref('b.gcr.io', 'test.example.com/my-app', 'test.example.com')],
  ['xn--n3h.com/myimage:xn--n3h.com', ref('xn--n3h.com', 'myimage', 'xn--n3h.com')],
  ['xn--n3h.com:18080/foo', ref('xn--n3h.com:18080', 'foo', 'latest')],
  [`xn--7o8h.com/myimage:xn--7o8h.com@${SHA512}`, ref('xn--7o8h.com', 'myimage', 'xn--7o8h.com', SHA512)],
  ['192.168.1.1/repo', ref('192.168.1.1', 'repo', 'latest')],
  ['192.168.1.1:5000/repo', ref('192.168.1.1:5000', 'repo', 'latest')],
  ['192.168.1.1:5000/repo:5050', ref('192.168.1.1:5000', 'repo', '5050')],
  ['127.0.0.1:5000/library/debian', ref('127.0.0.1:5000', 'library/debian', 'latest')],
  ['127.0.0.1:8000/privatebase', ref('127.0.0.1:8000', 'privatebase', 'latest')],
  ['[2001:db8::1]/repo', ref('[2001:db8::1]', 'repo', 'latest')],
  ['[2001:db8:1:2:3:4:5:6]/repo:tag', ref('[2001:db8:1:2:3:4:5:6]', 'repo', 'tag')],
  ['[2001:db8::1]:5000/repo', ref('[2001:db8::1]:5000', 'repo', 'latest')],
  ['[2001:db8::1]:5000/repo:tag', ref('[2001:db8::1]:5000', 'repo', 'tag')],
  [`[2001:db8::1]:5000/repo@${SHA}`, ref('[2001:db8::1]:5000', 'repo', undefined, SHA)],
  [`[2001:db8::1]:5000/repo:tag@${SHA}`, ref('[2001:db8::1]:5000', 'repo', 'tag', SHA)],
  ['[2001:db8::]:5000/repo', ref('[2001:db8::]:5000', 'repo', 'latest')],
  ['[::1]:5000/repo', ref('[::1]:5000', 'repo', 'latest')],
  ['[fc00:1:2:3:4:5:6:7]:5000/library/debian', ref('[fc00:1:2:3:4:5:6:7]:5000', 'library/debian', 'latest')],
  ['localhost/foo', ref('localhost', 'foo', 'latest')],
  ['localhost:5000/foo/bar:1', ref('localhost:5000', 'foo/bar', '1')],
  ['Docker/docker', ref('Docker', 'docker', 'latest')],
  ['FOO/bar', ref('FOO', 'bar', 'latest')],
  ['Quay.IO/org/app:v1', ref('Quay.IO', 'org/app', 'v1')],
  [`docker.io/${HEXID}`, ref('docker.io', `library/${HEXID}`, 'latest')],
  // separators and nested paths
  ['docker-rules/docker', ref('docker.io', 'docker-rules/docker', 'latest')],
  ['docker---rules/docker', ref('docker.io', 'docker---rules/docker', 'latest')],
  ['dock__er/docker', ref('docker.io', 'dock__er/docker', 'latest')],
  ['d/docker', ref('docker.io', 'd/docker', 'latest')],
  ['jess/t', ref('docker.io', 'jess/t', 'latest')],
  ['ns/a.b_c__d---e/f0.9', ref('docker.io', 'ns/a.b_c__d---e/f0.9', 'latest')],
  ['ghcr.io/a/b/c/d/e/f:g', ref('ghcr.io', 'a/b/c/d/e/f', 'g')],
  // tags and digests
  ['lowercase:Uppercase', ref('docker.io', 'library/lowercase', 'Uppercase')],
  ['repo:_under', ref('docker.io', 'library/repo', '_under')],
  [`repo:${'t'.repeat(128)}`, ref('docker.io', 'library/repo', 't'.repeat(128))],
  [`test:5000/repo@${SHA}`, ref('test:5000', 'repo', undefined, SHA)],
  [`test:5000/repo:tag@${SHA}`, ref('test:5000', 'repo', 'tag', SHA)],
  [
    'busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa',
    ref('docker.io', 'library/busybox', 'latest', 'sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa'),
  ],
  [`redis@${SHA}`, ref('docker.io', 'library/redis', undefined, SHA)],
  [`quay.io/p/n@${SHA512}`, ref('quay.io', 'p/n', undefined, SHA512)],
];

// input → a fragment the error message must contain (besides the quoted input itself).
const invalid: [string, string][] = [
  ['', 'empty'],
  [' nginx', 'spaces'],
  ['nginx\n', 'spaces'],
  [':justtag', 'repository name is missing'],
  [`@${SHA}`, 'repository name is missing'],
  ['repo@sha256:ffffffffffffffffffffffffffffffffff', 'is not a digest'],
  [`validname@invaliddigest:${F64}`, 'is not a digest'],
  [`repo@sha256:${F64.toUpperCase()}`, 'is not a digest'],
  [`repo@sha384:${'f'.repeat(96)}`, 'is not a digest'],
  ['repo@', 'is not a digest'],
  [`repo@${SHA}@${SHA}`, 'is not a digest'],
  ['repo:', 'is not a valid tag'],
  ['repo:.tag', 'is not a valid tag'],
  ['repo:-tag', 'is not a valid tag'],
  [`repo:${'t'.repeat(129)}`, 'is not a valid tag'],
  ['repo:ta/g', 'registry host'],
  ['Uppercase:tag', 'lowercase'],
  ['test:5000/Uppercase/lowercase:tag', 'lowercase'],
  ['docker/Docker', 'lowercase'],
  ['docker.io/docker/Docker', 'lowercase'],
  ['aa/asdf$$^/aa', 'valid repository path'],
  ['https://github.com/docker/docker', 'registry host'],
  ['-docker', 'valid repository path'],
  ['-docker/docker', 'valid repository path'],
  ['-docker.io/docker/docker', 'registry host'],
  ['docker///docker', 'valid repository path'],
  ['docker.io/docker///docker', 'valid repository path'],
  ['docker-/docker', 'valid repository path'],
  ['-docker-/docker', 'valid repository path'],
  ['____/____', 'valid repository path'],
  ['_docker/_docker', 'valid repository path'],
  ['dock..er/docker', 'registry host'],
  ['dock_.er/docker', 'registry host'],
  ['dock-.er/docker', 'registry host'],
  ['ns/dock..er', 'valid repository path'],
  ['ns/dock_.er', 'valid repository path'],
  ['ns/dock-.er', 'valid repository path'],
  ['dock___er/docker', 'valid repository path'],
  ['docker/', 'valid repository path'],
  ['localhost:5000/', 'valid repository path'],
  ['[2001:db8::1]', 'is not a valid tag'],
  ['[2001:db8::1]:5000', 'valid repository path'],
  ['[2001:db8::1]:tag', 'valid repository path'],
  ['[fc00::1]', 'is not a valid tag'],
  ['fc00::1:5000/debian', 'registry host'],
  ['[fe80::1%eth0]:5000/repo', 'registry host'],
  ['[fe80::1%@invalidzone]:5000/repo', 'not a digest'],
  ['[2001:db8:3:4::192.0.2.33]:5000/debian', 'registry host'],
  ['host.io:port/repo', 'registry host'],
  ['ho_st.io/repo', 'registry host'],
  ['-host.io/repo', 'registry host'],
  ['host-.io/repo', 'registry host'],
  ['host..io/repo', 'registry host'],
  [HEXID, 'image ID'],
  [`${'a/'.repeat(128)}a:tag`, 'longer than 255'],
  [
    'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker',
    'longer than 255',
  ],
];

describe('parseReference: table', () => {
  for (const [input, expected] of valid) {
    test(`parses ${JSON.stringify(input).slice(0, 90)}`, () => {
      assert.deepEqual(parseReference(input), expected);
    });
  }
  for (const [input, why] of invalid) {
    test(`refuses ${JSON.stringify(input).slice(0, 90)}`, () => {
      assert.throws(
        () => parseReference(input),
        (e: unknown) => {
          assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
          assert.equal(e.code, 'REFERENCE_INVALID');
          assert.equal(e.exitCode, 2);
          assert.ok(e.message.includes(`"${input}"`), `message names the input: ${e.message}`);
          assert.ok(e.message.includes(why), `message says "${why}": ${e.message}`);
          assert.match(e.hint ?? '', /registry/);
          return true;
        },
      );
    });
  }
});

describe('parseReference: lengths', () => {
  test('a name of exactly 255 characters is accepted, 256 is not', () => {
    const ok = `reg.io/${'a'.repeat(248)}`;
    assert.equal(ok.length, 255);
    assert.equal(formatName(parseReference(ok)).length, 255);
    assert.throws(() => parseReference(`reg.io/${'a'.repeat(249)}`), /longer than 255/);
    assert.throws(() => parseReference(`reg.io/${'a/'.repeat(124)}a`), /longer than 255/);
  });

  test('the limit counts the normalised name: docker.io/ is part of it', () => {
    const path = `${'a/'.repeat(127)}a`; // 255 characters as typed, like distribution's test case
    assert.throws(() => parseReference(`${path}:tag-puts-this-over-max`), /longer than 255/);
    assert.equal(parseReference(`localhost/${'a/'.repeat(122)}a`).repository.length, 245);
  });
});

describe('reference helpers', () => {
  test('formatReference writes the fully qualified form, tag before digest', () => {
    assert.equal(formatReference(parseReference('nginx')), 'docker.io/library/nginx:latest');
    assert.equal(formatReference(parseReference(`nginx:1@${SHA}`)), `docker.io/library/nginx:1@${SHA}`);
    assert.equal(formatReference(parseReference(`127.0.0.1:5000/a/b@${SHA}`)), `127.0.0.1:5000/a/b@${SHA}`);
    assert.equal(formatName(parseReference('[::1]:5000/x:y')), '[::1]:5000/x');
  });

  test('withDigest pins the image and keeps the tag for readability', () => {
    const pinned = withDigest(parseReference('quay.io/org/app:v1'), SHA);
    assert.deepEqual(pinned, ref('quay.io', 'org/app', 'v1', SHA));
    assert.equal(formatReference(pinned), `quay.io/org/app:v1@${SHA}`);
  });

  test('registryHostname strips the port and IPv6 brackets', () => {
    assert.equal(registryHostname('docker.io'), 'docker.io');
    assert.equal(registryHostname('127.0.0.1:5000'), '127.0.0.1');
    assert.equal(registryHostname('[::1]:5000'), '::1');
    assert.equal(registryHostname('[2001:db8::1]'), '2001:db8::1');
    assert.equal(registryHostname('localhost:443'), 'localhost');
  });

  test('isLoopbackHost: only this machine may be plain HTTP without --insecure', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '[::1]:5000', '[::1]']) {
      assert.equal(isLoopbackHost(h), true, h);
    }
    for (const h of ['docker.io', '10.0.0.1:5000', '128.0.0.1', '127.0.0.1.nip.io', 'localhost.example.com', '[::2]:5000', '[2001:db8::1]']) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });
});

// --- properties ---------------------------------------------------------------------------------

const alnum = fc.stringMatching(/^[a-z0-9]{1,8}$/);
const separator = fc.constantFrom('.', '_', '__', '-', '--', '---');
const pathComponent = fc
  .tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 3 }))
  .map(([first, rest]) => first + rest.map(([s, a]) => s + a).join(''));
const repository = fc.array(pathComponent, { minLength: 1, maxLength: 4 }).map((c) => c.join('/'));
const label = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?$/);
const port = fc.integer({ min: 1, max: 65535 }).map((p) => `:${p}`);
const ipv6 = fc.constantFrom('[::1]', '[2001:db8::1]', '[fc00:1:2:3:4:5:6:7]', '[2001:db8::]', '[FE80::A]');
const registry = fc.oneof(
  // a DNS name with a dot, maybe a port
  fc.tuple(fc.array(label, { minLength: 2, maxLength: 4 }), fc.option(port, { nil: '' })).map(([l, p]) => l.join('.') + p),
  // a single label is a host only with a port (or when it is localhost, or has uppercase)
  fc.tuple(label, port).map(([l, p]) => l + p),
  fc.option(port, { nil: '' }).map((p) => `localhost${p}`),
  fc.tuple(fc.ipV4(), fc.option(port, { nil: '' })).map(([ip, p]) => ip + p),
  fc.tuple(ipv6, fc.option(port, { nil: '' })).map(([ip, p]) => ip + p),
  fc.constant('docker.io'),
);
const tag = fc.stringMatching(/^[\w][\w.-]{0,20}$/);
const hex = (n: number) => fc.stringMatching(new RegExp(`^[a-f0-9]{${n}}$`));
const digest = fc.oneof(hex(64).map((h) => `sha256:${h}` as Digest), hex(128).map((h) => `sha512:${h}` as Digest));

/** Canonical references: what parseReference returns, so every one must round-trip. */
const canonical = fc
  .record({ registry, repository, tag: fc.option(tag, { nil: undefined }), digest: fc.option(digest, { nil: undefined }) })
  .filter((r) => r.tag !== undefined || r.digest !== undefined)
  .filter((r) => r.registry !== 'docker.io' || r.repository.includes('/'))
  .filter((r) => r.registry !== 'index.docker.io' && r.registry !== 'registry-1.docker.io')
  .filter((r) => r.registry.length + 1 + r.repository.length <= 255)
  .map((r): Reference => ({ registry: r.registry, repository: r.repository, tag: r.tag, digest: r.digest }));

describe('parseReference: properties', () => {
  test('parse(format(r)) deep-equals r for canonical references', () => {
    fc.assert(
      fc.property(canonical, (r) => {
        assert.deepEqual(parseReference(formatReference(r)), r);
      }),
      { numRuns: 2000 },
    );
  });

  // Familiar inputs as people type them: optional host, path, optional tag and digest.
  const familiar = fc
    .tuple(fc.option(registry, { nil: undefined }), repository, fc.option(tag, { nil: undefined }), fc.option(digest, { nil: undefined }))
    .map(([reg, path, t, d]) => `${reg !== undefined ? `${reg}/` : ''}${path}${t !== undefined ? `:${t}` : ''}${d !== undefined ? `@${d}` : ''}`);

  test('format(parse(s)) is a fixed point for familiar inputs', () => {
    let parsed = 0;
    fc.assert(
      fc.property(familiar, (s) => {
        let once: string;
        try {
          once = formatReference(parseReference(s));
        } catch (e) {
          assert.ok(e instanceof UsageError, String(e));
          return;
        }
        parsed++;
        assert.equal(formatReference(parseReference(once)), once);
      }),
      { numRuns: 2000 },
    );
    assert.ok(parsed > 1500, `most generated familiar references parse (${parsed} of 2000)`);
  });

  test('any string either parses to a fixed point or throws a UsageError naming it', () => {
    const anyText = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: fc.constantFrom(...'aZ09.:_-/@[]'.split('')), maxLength: 40 }),
      familiar.map((s) => s.toUpperCase()),
    );
    fc.assert(
      fc.property(anyText, (s) => {
        let once: string;
        try {
          once = formatReference(parseReference(s));
        } catch (e) {
          assert.ok(e instanceof UsageError, `not a UsageError for ${JSON.stringify(s)}: ${String(e)}`);
          assert.ok(e.message.includes(`"${s}"`));
          return;
        }
        assert.equal(formatReference(parseReference(once)), once);
      }),
      { numRuns: 3000 },
    );
  });
});
