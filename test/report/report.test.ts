// airlock report: one self-contained HTML file. It references nothing a browser would fetch, runs
// no script, escapes whatever the bundle, the audit file or an approval says, names every change
// against the base, marks a damaged blob, stays quick on 300 images, and headless Chromium renders
// it without a request of its own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { approve, report } from '../../src/index.ts';
import { openBundle } from '../../src/bundle/read.ts';
import { generateKeys, loadSigningKey, loadVerifyingKey } from '../../src/sign/keys.ts';
import { airlock, resultOf } from '../helpers/cli.ts';
import { flipBlobByte } from '../helpers/tamper.ts';
import { writeAppBundles, writeManyImages, type AppBundles } from '../diff/fixture.ts';

/** What a browser would fetch, from the tags alone (escaped text holds no tag): src/href/… to anything but an in-page anchor, @import, url() but data:, and elements that load or run something. */
function externalReferences(html: string): string[] {
  const found: string[] = [];
  for (const tag of html.match(/<[a-zA-Z][^>]*>/g) ?? []) {
    if (/^<\s*(script|link|iframe|object|embed|img|base|frame|audio|video|source)\b/i.test(tag) || /^<meta[^>]+http-equiv/i.test(tag)) found.push(tag);
    for (const m of tag.matchAll(/\s(src|href|srcset|action|poster|data|xlink:href|formaction|background|on[a-z]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi)) {
      const value = m[2]!.replace(/^["']|["']$/g, '');
      if (!(m[1]!.toLowerCase() === 'href' && value.startsWith('#'))) found.push(m[0].trim());
    }
  }
  for (const m of html.matchAll(/@import|url\(\s*(?!["']?data:)[^)]*\)/gi)) found.push(m[0]);
  return found;
}

/**
 * Open a file in headless Chromium and return the URLs the page itself asked for (Chromium's own
 * background requests are told apart by their initiator). Every request is sent to a closed
 * loopback port and no name resolves, so nothing leaves the machine either way.
 */
async function pageRequests(file: string, dir: string, name: string): Promise<{ requests: string[]; screenshot: number }> {
  const log = join(dir, `${name}.netlog.json`);
  const png = join(dir, `${name}.png`);
  const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', `--user-data-dir=${join(dir, `${name}.profile`)}`, '--proxy-server=127.0.0.1:9', '--host-resolver-rules=MAP * ~NOTFOUND', `--log-net-log=${log}`, `--screenshot=${png}`, '--window-size=1280,2000', `file://${file}`];
  const child = spawn('chromium', args, { stdio: 'ignore' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  clearTimeout(timer);
  assert.equal(code, 0, 'chromium exits cleanly');
  const net = JSON.parse(await readFile(log, 'utf8')) as { constants: { logEventTypes: Record<string, number> }; events: { type: number; params?: { url?: string; initiator?: string } }[] };
  const start = net.constants.logEventTypes.URL_REQUEST_START_JOB;
  const requests = net.events.filter((e) => e.type === start && e.params?.url && !e.params.url.startsWith('file:') && e.params.initiator !== 'not an origin').map((e) => e.params!.url!);
  return { requests, screenshot: (await stat(png)).size };
}

/** The flags the README gives for opening the report in the sandbox: Chromium's own background calls (time, component updates, sign-in) off, so a run records what the page does and nothing else. */
const CHROMIUM_QUIET = ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-features=NetworkTimeServiceQuerying', '--component-updater=url-source=http://127.0.0.1:1', '--gaia-url=http://127.0.0.1:1', '--window-size=1280,2000'];

describe('report', () => {
  let dir: string;
  let b: AppBundles;
  let fp: string;
  const hostile = '<script>alert(1)</script><img src=https://evil.example/x.png>';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-report-'));
    await generateKeys({ out: join(dir, 'alice') });
    fp = (await loadVerifyingKey(join(dir, 'alice.pub'))).fingerprint;
    b = await writeAppBundles(dir, { v2: await loadSigningKey(join(dir, 'alice.key')) });
    await approve(b.v2, { key: join(dir, 'alice.key'), note: `looks fine ${hostile}` });
    await writeFile(
      join(dir, 'findings.json'),
      JSON.stringify({
        findings: [
          { host: 'telemetry.example.com', url: 'https://telemetry.example.com/v1', category: 'telemetry', severity: 'high', rule: 'r1', resource: `Deployment/shop/${hostile}`, path: 'spec.template.spec.containers[0].env[0].value', value: 'x', hint: 'turn reporting off' },
          { host: 'acme-v02.api.letsencrypt.org', port: 443, category: 'acme', severity: 'medium', rule: 'r2', resource: 'ClusterIssuer/le', path: 'spec.acme.server', value: 'x', hint: 'use the internal CA' },
        ],
      }),
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('one self-contained file: every section, every change named, hostile text escaped, nothing to fetch', async () => {
    const r = await airlock(['report', b.v2, '--base', b.v1, '--audit', join(dir, 'findings.json'), '--key', join(dir, 'alice.pub'), '-o', join(dir, 'r.html'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(resultOf(r.stdout).path, join(dir, 'r.html'));
    const html = await readFile(join(dir, 'r.html'), 'utf8');
    assert.deepEqual(externalReferences(html), []);
    assert.doesNotMatch(html, /<script|<img|javascript:/i);
    // The hostile note and audit resource are there, as text.
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=https://evil.example/x.png&gt;'));
    for (const id of ['identity', 'changes', 'picture', 'images', 'charts', 'files', 'findings', 'verification']) assert.match(html, new RegExp(`<section id="${id}">`), id);
    assert.ok(html.includes(`signed by key <code>${fp}</code> (ed25519), checked with the key given`));
    assert.match(html, /<span class="badge ok">added<\/span><\/td><td>docker\.io\/library\/redis:7</);
    assert.match(html, /docker\.io\/library\/nginx:1\.27<br>→ docker\.io\/library\/nginx:1\.28<\/td>.*?<td>0<br>→ 1<\/td><\/tr>/);
    assert.match(html, /6\.5\.0<br>→ 6\.6\.0/);
    // nginx:1.28 carries its signature; the images table says so.
    assert.match(html, /<tr><td>docker\.io\/library\/nginx:1\.28<\/td>.*?<ul class="tight"><li>signature <span class="mut">application\/vnd\.dev\.cosign\.artifact\.sig\.v1\+json<\/span><\/li><\/ul><\/td><\/tr>/);
    assert.match(html, /v1\.30\.1\+k3s1<br>→ v1\.30\.2\+k3s1/);
    assert.match(html, /<span class="badge sev-high">high<\/span>.*telemetry\.example\.com\/v1/s);
    assert.match(html, /acme-v02\.api\.letsencrypt\.org:443/);
    assert.match(html, /<span class="badge ok">intact<\/span> every blob \(18,/);
    assert.match(html, /<svg role="img" aria-label="bytes by image"/);
    assert.match(html, /new \(not in the base\): [\d.]+ KiB/);
    assert.match(html, /@media print\{/);
    // Without a key the signature is shown as a claim, never as the signer.
    const plain = await report(b.v2, { out: join(dir, 'claim.html') });
    const claim = await readFile(plain.path, 'utf8');
    assert.ok(claim.includes(`<span class="badge warn">not verified</span> claims key <code>${fp}</code>`));
    assert.ok(!claim.includes('checked with the key given'));
  });

  test('a damaged blob: the report marks it and the exit code is 5', async () => {
    const bad = join(dir, 'bad.tar');
    await copyFile(b.v2, bad);
    const bundle = await openBundle(bad);
    const layer = bundle.inventory.blobs.reduce((a, x) => (x.size > a.size ? x : a));
    await bundle.close();
    await flipBlobByte(bad, layer.digest, 100);
    const r = await airlock(['report', bad, '-o', join(dir, 'bad.html')]);
    assert.equal(r.code, 5, r.stdout + r.stderr);
    assert.match(r.stdout, /1 problem: the report lists them/);
    const html = await readFile(join(dir, 'bad.html'), 'utf8');
    assert.match(html, /<span class="badge bad">1 problem<\/span>/);
    assert.ok(html.includes(`<td><span class="badge bad">bad</span><br>`) && html.includes(layer.digest));
  });

  test('300 images: made quickly, grouped by registry, offered pre-sorted', async () => {
    const many = await writeManyImages(join(dir, 'many.tar'), 300);
    const started = Date.now();
    const r = await report(many, { out: join(dir, 'many.html') });
    const ms = Date.now() - started;
    assert.ok(ms < 20_000, `report took ${ms} ms`);
    const html = await readFile(r.path, 'utf8');
    assert.deepEqual(externalReferences(html), []);
    assert.ok((await stat(r.path)).size < 4 * 1024 * 1024);
    for (const reg of ['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io']) assert.match(html, new RegExp(`<h3 id="reg-\\d">${reg.replaceAll('.', '\\.')} <span class="mut">— 75 images`));
    assert.equal((html.match(/<details class="alt">/g) ?? []).length, 3);
    assert.match(html, /and 270 more images: /);
    assert.equal((html.match(/<tr><td>quay\.io\/team\/svc-/g) ?? []).length, 75 * 4, 'the grouped table and three sorted ones');
  });

  test('headless Chromium renders the report without a single request of its own; a page with one is caught', async () => {
    const shown = await pageRequests(join(dir, 'r.html'), dir, 'report');
    assert.deepEqual(shown.requests, []);
    assert.ok(shown.screenshot > 50_000, `a screenshot with content (${shown.screenshot} bytes)`);
    // The check sees a page that does fetch something.
    await writeFile(join(dir, 'fetches.html'), '<!doctype html><p>x</p><img src="http://127.0.0.1:9/x.png">');
    assert.deepEqual((await pageRequests(join(dir, 'fetches.html'), dir, 'control')).requests, ['http://127.0.0.1:9/x.png']);
  });

  test('opened by Chromium inside airlock sandbox with the README\'s flags: zero attempts recorded; a page that fetches is caught', { skip: process.getuid?.() === 0 ? false : 'needs root (network namespaces, nftables)' }, async () => {
    const open = async (url: string, name: string): Promise<{ code: number; report: { dns: unknown[]; connections: unknown[]; attempted: boolean; exitCode: number | null } }> => {
      const r = await airlock(['sandbox', '--json', '--', 'chromium', ...CHROMIUM_QUIET, `--user-data-dir=${join(dir, `${name}.sandbox-profile`)}`, `--screenshot=${join(dir, `${name}.sandbox.png`)}`, url], { timeoutMs: 90_000 });
      return { code: r.code, report: resultOf(r.stdout) as never };
    };
    const shown = await open(`file://${join(dir, 'r.html')}`, 'report');
    assert.deepEqual({ dns: shown.report.dns, connections: shown.report.connections, attempted: shown.report.attempted }, { dns: [], connections: [], attempted: false });
    assert.equal(shown.report.exitCode, 0);
    assert.ok((await stat(join(dir, 'report.sandbox.png'))).size > 50_000, 'the report was rendered');
    await writeFile(join(dir, 'phones-home.html'), '<!doctype html><p>x</p><img src="https://telemetry.example.com/x.png">');
    const control = await open(`file://${join(dir, 'phones-home.html')}`, 'control');
    assert.equal(control.code, 7, 'an attempt fails the sandbox run');
    assert.ok(JSON.stringify(control.report.dns).includes('telemetry.example.com'), JSON.stringify(control.report));
  });
});
