// `files:` in airlock.yaml and airlock.lock, and the artifact a file travels as: every unsafe name
// refused with the entry and the reason, modes read as octal as written, one source each, no
// credentials in a URL, names that would meet in a registry refused; the lock's files sorted,
// parsed back, and compared with the spec; the artifact the same bytes for the same file, and one
// changed by hand not taken for a file airlock carries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpec } from '../../src/spec/spec.ts';
import { diffLock, formatLock, parseLock, type Lock } from '../../src/spec/lock.ts';
import { UsageError, IntegrityError } from '../../src/core/errors.ts';
import { buildFileArtifact, fileRepository, readFileArtifact } from '../../src/files/artifact.ts';

const HEAD = 'apiVersion: airlock.dev/v1alpha1\nkind: Bundle\nmetadata: {name: edge}\nfiles:\n';
const spec = (files: string): ReturnType<typeof parseSpec> => parseSpec(HEAD + files, 'edge/airlock.yaml');
const refused = (files: string, re: RegExp): void => {
  assert.throws(() => spec(files), (e: unknown) => e instanceof UsageError && e.code === 'SPEC_INVALID' && e.message.startsWith('edge/airlock.yaml: ') && re.test(e.message), files);
};

test('unsafe file names are refused, naming the entry and why', () => {
  const cases: [string, RegExp][] = [
    ['"../x"', /files\[0\] \(\.\.\/x\): the name "\.\.\/x" is not a safe file name: it must be a plain file name, without \/ or \\/],
    ['/etc/passwd', /files\[0\] \(\/etc\/passwd\): .*without \/ or \\/],
    ['.hidden', /files\[0\] \(\.hidden\): .*it must not start with "\."/],
    ['"a..b"', /it must not contain "\.\."/],
    ['"a\\\\b"', /without \/ or \\/],
    ['"-rf"', /it must not start with "-"/],
    ['"bell\\a"', /only printable ASCII characters are allowed/],
    ['"été.txt"', /only printable ASCII characters are allowed/],
    ['" lead"', /it must not start or end with a space/],
    ['"+++"', /it needs at least one letter or digit/],
    ['""', /a file name is needed/],
    [`${'x'.repeat(256)}`, /256 characters long, more than 255/],
  ];
  for (const [name, re] of cases) refused(`  - {name: ${name}, path: f}\n`, re);
  refused('  - {path: f}\n', /files\[0\]: the name null is not a safe file name: a file name is needed/);
});

test('safe names are taken, each with the registry name push gives it', () => {
  const s = spec(['k3s', 'install.sh', 'README.md', 'k3s-airgap-images-amd64.tar.zst', '"My File (1).txt"', 'a_-b'].map((n, i) => `  - {name: ${n}, path: f${i}}\n`).join(''));
  assert.deepEqual(
    s.files!.map((f) => [f.name, fileRepository(f.name)]),
    [
      ['My File (1).txt', 'my-file-1-txt'],
      ['README.md', 'readme.md'],
      ['a_-b', 'a-b'],
      ['install.sh', 'install.sh'],
      ['k3s', 'k3s'],
      ['k3s-airgap-images-amd64.tar.zst', 'k3s-airgap-images-amd64.tar.zst'],
    ],
  );
  assert.deepEqual(s.images, [], 'a spec of files alone is a spec');
  refused('  - {name: README.md, path: a}\n  - {name: readme.md, path: b}\n', /files\[1\] \(readme\.md\): readme\.md and files\[0\] \(README\.md\) would both be files\/readme\.md in a registry: rename one/);
  refused('  - {name: k3s, path: a}\n  - {name: k3s, url: "https://x.example/k3s"}\n', /the file k3s is listed twice \(also files\[0\]\)/);
});

test('mode is octal as written, sha256 as sha256sum prints it, one source, no credentials in a URL', () => {
  const s = spec(
    [
      '  - {name: a, path: a, mode: 0755}',
      '  - {name: b, path: b, mode: "0600"}',
      '  - {name: c, path: c, mode: 0o700}',
      '  - {name: d, path: d}',
      `  - {name: e, url: "https://get.example.com/e", sha256: ${'AB'.repeat(32)}, version: v1.30.2+k3s1}`,
      `  - {name: f, url: "http://127.0.0.1:8080/f", sha256: "sha256:${'0'.repeat(64)}", version: 1.10}`,
      '',
    ].join('\n'),
  );
  assert.deepEqual(
    s.files!.map((f) => [f.name, f.mode.toString(8), f.sha256 ?? '-', f.version ?? '-']),
    [
      ['a', '755', '-', '-'],
      ['b', '600', '-', '-'],
      ['c', '700', '-', '-'],
      ['d', '644', '-', '-'],
      ['e', '644', `sha256:${'ab'.repeat(32)}`, 'v1.30.2+k3s1'],
      ['f', '644', `sha256:${'0'.repeat(64)}`, '1.10'],
    ],
  );
  refused('  - {name: a, path: a, mode: 0999}\n', /files\[0\] \(a\): mode must be octal permission bits like 0755 or 0644, got "0999"/);
  refused('  - {name: a, path: a, mode: 4755}\n', /mode must be octal permission bits/);
  refused('  - {name: a, path: a, url: "https://x.example/a"}\n', /files\[0\] \(a\) needs exactly one of path .* and url/);
  refused('  - {name: a}\n', /needs exactly one of path/);
  refused('  - {name: a, url: "ftp://x.example/a"}\n', /url must be an http:\/\/ or https:\/\/ URL/);
  refused('  - {name: a, url: "https://me:secret@x.example/a"}\n', /url must not carry credentials .*docker login x\.example/);
  refused('  - {name: a, path: a, sha256: abc}\n', /sha256 must be 64 hex digits \(what sha256sum prints\)/);
  refused('  - {name: a, path: a, version: "1.0 beta"}\n', /version "1\.0 beta" cannot be a registry tag/);
  refused('  - {name: a, path: a, owner: root}\n', /files\[0\] \(a\): unknown key "owner" \(known: name, path, url, sha256, mode, version\)/);
  refused('  - {name: a, path: a, mdoe: 0755}\n', /unknown key "mdoe": did you mean "mode"\?/);
});

test('the lock lists files sorted, reads them back, and says how they differ from the spec', () => {
  const art = (name: string, digest: string, size: number, mode: number, version?: string) => buildFileArtifact({ name, digest: digest as `sha256:${string}`, size, mode, version });
  const k = art('k3s', `sha256:${'1'.repeat(64)}`, 70_000_000, 0o755, 'v1.30.2+k3s1');
  const i = art('install.sh', `sha256:${'2'.repeat(64)}`, 30_000, 0o755);
  const lock: Lock = {
    name: 'edge',
    version: '0.0.0',
    platforms: undefined,
    images: [],
    files: [
      { name: 'k3s', url: 'https://github.com/k3s-io/k3s/releases/download/v1.30.2%2Bk3s1/k3s', version: 'v1.30.2+k3s1', mode: 0o755, digest: k.layer.digest, size: k.layer.size, reference: k.reference, artifact: { mediaType: k.manifest.descriptor.mediaType, digest: k.manifest.descriptor.digest, size: k.manifest.descriptor.size } },
      { name: 'install.sh', path: 'scripts/install.sh', mode: 0o755, digest: i.layer.digest, size: i.layer.size, reference: i.reference, artifact: { mediaType: i.manifest.descriptor.mediaType, digest: i.manifest.descriptor.digest, size: i.manifest.descriptor.size } },
    ],
  };
  const text = formatLock(lock);
  assert.ok(text.indexOf('name: install.sh') < text.indexOf('name: k3s'), 'sorted by name');
  assert.match(text, /  - name: install\.sh\n    path: scripts\/install\.sh\n    mode: "0755"\n    digest: sha256:2{64}\n    size: 30000\n    reference: localhost\/files\/install\.sh:222222222222\n/);
  assert.match(text, /reference: localhost\/files\/k3s:v1\.30\.2_k3s1\n/);
  const back = parseLock(text);
  assert.equal(formatLock(back), text, 'it reads back to the same text');

  const matching = spec('  - {name: k3s, url: "https://github.com/k3s-io/k3s/releases/download/v1.30.2%2Bk3s1/k3s", version: v1.30.2+k3s1, mode: 0755}\n  - {name: install.sh, path: scripts/install.sh, mode: 0755}\n');
  assert.deepEqual(diffLock({ ...matching, version: '0.0.0' }, back), []);
  const changed = spec(`  - {name: k3s, path: k3s, version: v1.30.2+k3s1, mode: 0700, sha256: ${'3'.repeat(64)}}\n  - {name: LICENSE, path: LICENSE}\n`);
  assert.deepEqual(diffLock({ ...changed, version: '0.0.0' }, back), [
    'file LICENSE is in the spec but not in the lock',
    'file k3s comes from path k3s in the spec but url https://github.com/k3s-io/k3s/releases/download/v1.30.2%2Bk3s1/k3s in the lock',
    'file k3s has mode 0700 in the spec but 0755 in the lock',
    `file k3s is pinned to sha256:${'3'.repeat(64)} in the spec but locked as sha256:${'1'.repeat(64)}`,
    'file install.sh is in the lock but no longer in the spec',
  ]);
  assert.throws(() => parseLock(text.replace('name: install.sh', 'name: ../install.sh')), (e: unknown) => e instanceof UsageError && e.code === 'LOCK_INVALID' && /files\[0\]\.name "\.\.\/install\.sh" is not a safe file name/.test(e.message));
});

test('the artifact: the same bytes for the same file; one changed by hand is not a file airlock carries', () => {
  const input = { name: 'k3s', digest: `sha256:${'a'.repeat(64)}` as const, size: 12, mode: 0o755, version: 'v1.30.2+k3s1' };
  const a = buildFileArtifact(input);
  assert.ok(a.manifest.bytes.equals(buildFileArtifact(input).manifest.bytes));
  assert.deepEqual(readFileArtifact(a.reference, a.manifest.descriptor, a.manifest.bytes), { ...input, reference: a.reference });
  const doc = JSON.parse(a.manifest.bytes.toString()) as { layers: { annotations: Record<string, string> }[] };
  assert.deepEqual(doc.layers[0]!.annotations, { 'dev.airlock.file.mode': '0755', 'org.opencontainers.image.title': 'k3s' });
  const bad = (bytes: Buffer, reference = a.reference): unknown => {
    try {
      readFileArtifact(reference, { ...a.manifest.descriptor }, bytes);
    } catch (e) {
      return e;
    }
    return undefined;
  };
  const renamed = Buffer.from(a.manifest.bytes.toString().replace('"org.opencontainers.image.title":"k3s"', '"org.opencontainers.image.title":"../k3s"'));
  const e1 = bad(renamed);
  assert.ok(e1 instanceof IntegrityError && /its name "\.\.\/k3s" is not safe/.test(e1.message), String(e1));
  const e2 = bad(a.manifest.bytes, 'localhost/files/other:v1.30.2_k3s1');
  assert.ok(e2 instanceof IntegrityError && /index\.json names it localhost\/files\/other:v1\.30\.2_k3s1; the file k3s is carried as localhost\/files\/k3s:v1\.30\.2_k3s1/.test(e2.message), String(e2));
  const e3 = bad(Buffer.from(a.manifest.bytes.toString().replace('"0755"', '"0777"')));
  assert.ok(e3 instanceof IntegrityError && /its manifest is not the one airlock writes for this file/.test(e3.message), String(e3));
});
