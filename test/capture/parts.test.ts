// The pieces of capture that need no socket: the hold-back verifier, the summary of records, the
// comparison with a discovery, the spec entries, and mirrors-config for registries named directly.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError } from '../../src/core/errors.ts';
import { digestOf, type Digest } from '../../src/core/digest.ts';
import { HoldBackVerify } from '../../src/capture/hold-back-verify.ts';
import { summarize } from '../../src/capture/pulled.ts';
import type { PullRecord } from '../../src/capture/record.ts';
import { compareWithDiscovery, readPredicted } from '../../src/capture/compare.ts';
import { writeCapturedToSpec } from '../../src/capture/write-spec.ts';
import { airlock } from '../helpers/cli.ts';

const D = (n: number): `sha256:${string}` => `sha256:${String(n).repeat(64).slice(0, 64)}`;

async function relay(chunks: Buffer[], expected: { digest: Digest; size: number }): Promise<{ out: Buffer; error: unknown }> {
  const got: Buffer[] = [];
  let error: unknown;
  try {
    await pipeline(Readable.from(chunks), new HoldBackVerify(expected, 'blob'), async function* (src) {
      for await (const c of src) got.push(c as Buffer);
    });
  } catch (e) {
    error = e;
  }
  return { out: Buffer.concat(got), error };
}

describe('HoldBackVerify', () => {
  const parts = [Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(10, 3)];
  const whole = Buffer.concat(parts);

  test('good bytes pass through whole', async () => {
    const r = await relay(parts, { digest: digestOf(whole), size: whole.length });
    assert.equal(r.error, undefined);
    assert.deepEqual(r.out, whole);
  });

  test('a wrong byte: the last chunk never goes out, the stream fails with DIGEST_MISMATCH', async () => {
    const bad = [parts[0]!, parts[1]!, Buffer.from([3, 3, 3, 3, 3, 3, 3, 3, 3, 4])];
    const r = await relay(bad, { digest: digestOf(whole), size: whole.length });
    assert.ok(r.error instanceof IntegrityError && r.error.code === 'DIGEST_MISMATCH', String(r.error));
    assert.ok(r.out.length < whole.length);
    assert.deepEqual(r.out, whole.subarray(0, r.out.length));
  });

  test('too many or too few bytes fail with SIZE_MISMATCH', async () => {
    const long = await relay([...parts, Buffer.from([9])], { digest: digestOf(whole), size: whole.length });
    assert.ok(long.error instanceof IntegrityError && long.error.code === 'SIZE_MISMATCH');
    const short = await relay(parts.slice(0, 2), { digest: digestOf(whole), size: whole.length });
    assert.ok(short.error instanceof IntegrityError && short.error.code === 'SIZE_MISMATCH');
    assert.ok(short.out.length < 2000);
  });
});

function rec(r: Partial<PullRecord>): PullRecord {
  return { type: 'pull', time: '2026-01-01T00:00:00Z', client: '10.0.0.1', registry: 'r.example', repository: 'a/b', kind: 'manifest', method: 'GET', reference: 'v1', status: 200, outcome: 'ok', ms: 1, ...r };
}

describe('summary of records', () => {
  test('a manifest chosen from an index counts for the index, with its platform; tags, clients, upstreams', () => {
    const s = summarize([
      rec({ method: 'HEAD', digest: D(1), mediaType: 'application/vnd.oci.image.index.v1+json' }),
      rec({ reference: D(1), digest: D(1), mediaType: 'application/vnd.oci.image.index.v1+json', client: '10.0.0.2' }),
      rec({ reference: D(2), digest: D(2), index: D(1), platform: 'linux/arm64', mediaType: 'application/vnd.oci.image.manifest.v1+json' }),
      rec({ kind: 'blob', reference: D(3), digest: D(3), size: 10 }),
      rec({ registry: 'q.example', repository: 'c', reference: D(4), digest: D(4), mediaType: 'application/vnd.oci.image.manifest.v1+json' }),
      rec({ registry: 'q.example', repository: 'gone', reference: 'x', status: 404, outcome: 'not-found' }),
      rec({ kind: 'blob', reference: D(5), digest: D(5), size: 10, outcome: 'refused', code: 'DIGEST_MISMATCH' }),
    ]);
    assert.deepEqual(
      s.images.map((i) => [i.registry, i.repository, i.digest, i.tags, i.platforms, i.clients]),
      [
        ['q.example', 'c', D(4), [], [], ['10.0.0.1']],
        ['r.example', 'a/b', D(1), ['v1'], ['linux/arm64'], ['10.0.0.1', '10.0.0.2']],
      ],
    );
    assert.deepEqual(s.upstreams, [
      { registry: 'q.example', requests: 2, failed: 1, bytes: 0 },
      { registry: 'r.example', requests: 5, failed: 1, bytes: 10 },
    ]);
    assert.deepEqual(s.notFound, ['q.example/gone:x']);
    assert.deepEqual(s.refused.map((r) => r.digest), [D(5)]);
  });

  test('compare with a discovery: missed and unused; a pinned prediction matches by digest', () => {
    const s = summarize([rec({ digest: D(1) }), rec({ repository: 'c/d', reference: 'latest', digest: D(2) })]);
    const c = compareWithDiscovery(s.images, ['r.example/a/b:v1', `r.example/c/d@${D(9)}`, 'r.example/e/f:1']);
    assert.deepEqual(c.missed, [`r.example/c/d:latest@${D(2)}`]);
    assert.deepEqual(c.unused, [`r.example/c/d@${D(9)}`, 'r.example/e/f:1']);
    assert.deepEqual(c.matched, [{ predicted: 'r.example/a/b:v1', pulled: `r.example/a/b:v1@${D(1)}` }]);
  });
});

describe('discovery files and the spec', () => {
  test('discover --json (NDJSON), a JSON document and the plain list all read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-capture-parts-'));
    try {
      const nd = join(dir, 'd.json');
      await writeFile(nd, `${JSON.stringify({ type: 'warning', code: 'X', message: 'm' })}\n${JSON.stringify({ type: 'result', images: [{ reference: 'nginx:1.27', reasons: [] }] })}\n`);
      assert.deepEqual(await readPredicted(nd), ['docker.io/library/nginx:1.27']);
      const doc = join(dir, 'd2.json');
      await writeFile(doc, JSON.stringify({ images: [{ reference: 'quay.io/a/b:1' }] }));
      assert.deepEqual(await readPredicted(doc), ['quay.io/a/b:1']);
      const txt = join(dir, 'd.txt');
      await writeFile(txt, 'quay.io/a/b:1\t# missing\n\nredis\n');
      assert.deepEqual(await readPredicted(txt), ['quay.io/a/b:1', 'docker.io/library/redis:latest']);
      await writeFile(txt, 'Not A Reference\n');
      await assert.rejects(readPredicted(txt), /entry 1: invalid image reference/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('--write: an image already listed (pinned or not) stays as the user wrote it; new ones pinned with a comment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-capture-parts-'));
    try {
      const spec = join(dir, 'airlock.yaml');
      await writeFile(spec, ['# our app', 'apiVersion: airlock.dev/v1alpha1', 'kind: Bundle', 'metadata: {name: x}', 'images:', `  - r.example/a/b@${D(1)}  # mine`, '  # unpinned, as I like it', '  - r.example/e/f:2', ''].join('\n'));
      const s = summarize([rec({ digest: D(1) }), rec({ repository: 'c/d', reference: D(2), digest: D(2) }), rec({ repository: 'e/f', reference: '2', digest: D(3) })]);
      const r = await writeCapturedToSpec(spec, s.images);
      assert.deepEqual(r.added, [`r.example/c/d@${D(2)}`]);
      assert.deepEqual(r.alreadyPresent, [`r.example/a/b:v1@${D(1)}`, `r.example/e/f:2@${D(3)}`]);
      const text = await readFile(spec, 'utf8');
      assert.match(text, /# our app/);
      assert.match(text, /# mine/);
      assert.match(text, /# unpinned, as I like it\n  - r\.example\/e\/f:2\n/);
      assert.match(text, new RegExp(`# captured: pulled by 1 node\\n  - r\\.example/c/d@${D(2)}`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('mirrors-config --source (no bundle)', () => {
  test('hosts.toml for each registry named; nothing named is a usage error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-capture-parts-'));
    try {
      const r = await airlock(['mirrors-config', '--source', 'docker.io', '--source', 'registry.example:5000', '--registry', '127.0.0.1:5999', '--format', 'containerd', '-o', dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(await readFile(join(dir, 'docker.io', 'hosts.toml'), 'utf8'), /server = "http:\/\/127\.0\.0\.1:5999"/);
      assert.match(await readFile(join(dir, 'registry.example:5000', 'hosts.toml'), 'utf8'), /\[host\."http:\/\/127\.0\.0\.1:5999"\]/);
      const none = await airlock(['mirrors-config', '--registry', '127.0.0.1:5999']);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /needs a bundle or --source/);
      const bad = await airlock(['mirrors-config', '--source', 'not a host', '--registry', '127.0.0.1:5999']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /invalid source registry "not a host"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
