// Chart repositories over HTTP(S) with the registries' rules: a private CA via --ca-file, plain
// HTTP only on this machine or for --insecure hosts, Basic credentials from the credential store
// when asked, redirects, size limits, and an index digest that must match the download.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthError, IntegrityError, NetworkError, NotFoundError, UsageError } from '../../src/core/errors.ts';
import { ChartHttpClient } from '../../src/helm/http-client.ts';
import { RepoIndexes, resolveChartUrl } from '../../src/helm/repo-index.ts';
import { lockCharts } from '../../src/helm/lock-charts.ts';
import { writeChartTgz } from '../../src/helm/chart-tgz.ts';
import { digestOf } from '../../src/core/digest.ts';
import { makeCa, makeServerCert } from '../helpers/tls.ts';
import { removeDir, startChartRepo, type ChartRepoServer } from './support.ts';

const noCredentials = { get: async () => undefined };
const INDEX = (digest: string) => `apiVersion: v1\nentries:\n  app:\n    - name: app\n      version: 1.0.0\n      digest: ${digest}\n      urls: [charts/app-1.0.0.tgz]\n`;

describe('chart repository HTTP client', () => {
  let dir: string;
  let tls: ChartRepoServer;
  let plain: ChartRepoServer;
  let locked: ChartRepoServer;
  let caFile: string;
  const app = writeChartTgz('app', [{ path: 'Chart.yaml', data: Buffer.from('apiVersion: v2\nname: app\nversion: 1.0.0\n') }]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-chart-http-'));
    const ca = await makeCa(join(dir, 'ca'));
    const leaf = await makeServerCert(ca, { ips: ['127.0.0.1'], dns: ['localhost'] });
    caFile = ca.certFile;
    const tlsOpts = { key: await readFile(leaf.keyFile, 'utf8'), cert: await readFile(leaf.certFile, 'utf8') };
    [tls, plain, locked] = await Promise.all([
      startChartRepo(join(dir, 'tls'), { tls: tlsOpts }),
      startChartRepo(join(dir, 'plain')),
      startChartRepo(join(dir, 'locked'), { basic: { username: 'ann', password: 's3cret' } }),
    ]);
    for (const r of [tls, plain, locked]) {
      await writeFile(join(r.dir, 'index.yaml'), INDEX(digestOf(app).slice('sha256:'.length)));
      await mkdir(join(r.dir, 'charts'), { recursive: true });
      await writeFile(join(r.dir, 'charts', 'app-1.0.0.tgz'), app);
    }
  });
  after(async () => {
    await Promise.all([tls?.close(), plain?.close(), locked?.close()]);
    await removeDir(dir);
  });

  test('HTTPS with the CA given like for registries; untrusted without it', async () => {
    const trusted = new ChartHttpClient({ caFile, credentials: noCredentials });
    const untrusted = new ChartHttpClient({ credentials: noCredentials, attempts: 1 });
    try {
      const index = await new RepoIndexes(trusted).resolve(tls.url, 'app', '^1.0.0', 'test');
      assert.deepEqual(index, { version: '1.0.0', url: `${tls.url}/charts/app-1.0.0.tgz`, indexDigest: digestOf(app) });
      assert.ok((await trusted.get(index.url, { what: 'app', limit: 1 << 20 })).equals(app));
      await assert.rejects(untrusted.get(`${tls.url}/index.yaml`, { what: 'index', limit: 1 << 20 }), (e: unknown) => e instanceof NetworkError && e.code === 'TLS_UNTRUSTED' && /a CA file/.test(e.hint ?? ''));
    } finally {
      await Promise.all([trusted.close(), untrusted.close()]);
    }
  });

  test('plain HTTP only to this machine or a host marked --insecure', async () => {
    const http = new ChartHttpClient({ credentials: noCredentials });
    try {
      assert.ok((await http.get(`${plain.url}/charts/app-1.0.0.tgz`, { what: 'app', limit: 1 << 20 })).equals(app), 'loopback is fine');
      // Refused before any connection is made: no traffic leaves the machine.
      await assert.rejects(http.get('http://charts.example.test/index.yaml', { what: 'index.yaml of http://charts.example.test', limit: 10 }), (e: unknown) => e instanceof UsageError && e.code === 'PLAIN_HTTP_REFUSED' && /mark charts\.example\.test insecure/.test(e.hint ?? ''));
      await assert.rejects(http.get('ftp://charts.example.test/x', { what: 'x', limit: 10 }), (e: unknown) => e instanceof UsageError && e.code === 'URL_INVALID');
    } finally {
      await http.close();
    }
  });

  test('Basic credentials from the store when the server asks; clear errors when missing or refused', async () => {
    const good = new ChartHttpClient({ credentials: { get: async (host: string) => (host === locked.host ? { username: 'ann', password: 's3cret' } : undefined) } });
    const none = new ChartHttpClient({ credentials: noCredentials });
    const bad = new ChartHttpClient({ credentials: { get: async () => ({ username: 'ann', password: 'wrong' }) } });
    try {
      assert.ok((await good.get(`${locked.url}/charts/app-1.0.0.tgz`, { what: 'app', limit: 1 << 20 })).equals(app));
      await assert.rejects(none.get(`${locked.url}/index.yaml`, { what: 'index', limit: 1 << 20 }), (e: unknown) => e instanceof AuthError && /asks for credentials and none are configured/.test(e.message) && /docker login/.test(e.hint ?? ''));
      await assert.rejects(bad.get(`${locked.url}/index.yaml`, { what: 'index', limit: 1 << 20 }), (e: unknown) => e instanceof AuthError && /refused the credentials/.test(e.message));
    } finally {
      await Promise.all([good.close(), none.close(), bad.close()]);
    }
  });

  test('a missing repository, a body over the limit, a bad index', async () => {
    const http = new ChartHttpClient({ credentials: noCredentials });
    try {
      await assert.rejects(new RepoIndexes(http).get(`${plain.url}/nothing-here`), (e: unknown) => e instanceof NotFoundError && e.code === 'CHART_REPO_NOT_FOUND' && /is not a helm chart repository/.test(e.message));
      await assert.rejects(http.get(`${plain.url}/charts/app-1.0.0.tgz`, { what: 'app', limit: 10 }), (e: unknown) => e instanceof IntegrityError && /more than the 10-byte limit/.test(e.message));
      await mkdir(join(plain.dir, 'broken'), { recursive: true });
      await writeFile(join(plain.dir, 'broken', 'index.yaml'), 'entries: [1, 2');
      await assert.rejects(new RepoIndexes(http).get(`${plain.url}/broken`), (e: unknown) => e instanceof IntegrityError && e.code === 'INDEX_INVALID');
    } finally {
      await http.close();
    }
  });

  test('lock refuses an archive whose digest differs from the index', async () => {
    await mkdir(join(plain.dir, 'tampered', 'charts'), { recursive: true });
    await writeFile(join(plain.dir, 'tampered', 'index.yaml'), INDEX('0'.repeat(64)));
    await writeFile(join(plain.dir, 'tampered', 'charts', 'app-1.0.0.tgz'), app);
    const http = new ChartHttpClient({ credentials: noCredentials });
    try {
      await assert.rejects(
        lockCharts([{ name: 'app', repo: `${plain.url}/tampered`, version: '', values: [] }], { http, open: () => assert.fail('no registry'), baseDir: dir }),
        (e: unknown) => e instanceof IntegrityError && e.code === 'DIGEST_MISMATCH' && /the index of .*tampered says sha256:0{64}/.test(e.message),
      );
    } finally {
      await http.close();
    }
  });

  test('chart URLs in an index resolve like helm resolves them', () => {
    assert.equal(resolveChartUrl('https://c.test/charts', 'app-1.0.0.tgz'), 'https://c.test/charts/app-1.0.0.tgz');
    assert.equal(resolveChartUrl('https://c.test/charts/', 'sub/app-1.0.0.tgz'), 'https://c.test/charts/sub/app-1.0.0.tgz');
    assert.equal(resolveChartUrl('https://c.test/charts?token=x', 'app.tgz'), 'https://c.test/charts/app.tgz?token=x');
    assert.equal(resolveChartUrl('https://c.test/charts', 'https://cdn.test/app.tgz'), 'https://cdn.test/app.tgz');
  });
});
