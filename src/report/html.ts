// The report as one HTML file a reviewer opens on an isolated workstation: inline CSS only, no
// script, font, image or link a browser would fetch (links are in-page anchors), readable with
// JavaScript off and printable. Big bundles stay readable: images grouped by registry, and the same
// table offered pre-sorted in <details> (sorting without JavaScript). Every text from the bundle,
// the base, the audit file or an approval is escaped (escape.ts).
import { formatBytes } from '../core/bytes.ts';
import type { BundleDiff, Changed, ListDiff } from '../diff/compare.ts';
import { signerText } from '../diff/text.ts';
import { esc } from './escape.ts';
import type { ReportBlob, ReportImage, ReportModel } from './model.ts';
import { bytesByImageSvg, splitBarSvg } from './svg.ts';

const CSS = `
:root{--fg:#1b1f24;--mut:#57606a;--line:#d0d7de;--bg:#fff;--soft:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--own:#0969da;--shared:#9ecbff;--new:#d1242f;--carried:#8c959f}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1200px;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}h3{font-size:16px;margin:20px 0 6px}
.sub{color:var(--mut);margin:0 0 12px}
nav{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin:12px 0}
nav a{margin-right:14px;color:var(--own);text-decoration:none}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;white-space:nowrap}
tr:nth-child(even) td{background:#fbfcfd}
dl.id{display:grid;grid-template-columns:210px 1fr;gap:4px 12px;margin:8px 0}
dl.id dt{color:var(--mut)}dl.id dd{margin:0}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;border:1px solid currentColor;white-space:nowrap}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.mut{color:var(--mut)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(210px,1fr));gap:10px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 12px}.card b{display:block;font-size:20px}
details{border:1px solid var(--line);border-radius:6px;padding:6px 10px;margin:8px 0}
summary{cursor:pointer;font-weight:600}
svg{max-width:100%;height:auto;font:12px system-ui,sans-serif}
svg .own{fill:var(--own)}svg .shared{fill:var(--shared)}svg .new{fill:var(--new)}svg .carried{fill:var(--carried)}svg .saved{fill:#d8dee4}
svg .l{fill:var(--fg)}svg .v{fill:var(--mut)}
.sev-critical,.sev-high{color:var(--bad)}.sev-medium{color:var(--warn)}.sev-low,.sev-info{color:var(--mut)}
ul.tight{margin:4px 0;padding-left:20px}
footer{margin-top:40px;color:var(--mut);font-size:12px}
@media print{
 body{max-width:none;padding:0;font-size:11px}
 nav,.alt{display:none}
 h2{break-after:avoid}tr,.card,svg{break-inside:avoid}
 details{border:none;padding:0}
 details>summary{list-style:none}
 details::details-content{content-visibility:visible;display:contents}
 a{color:inherit;text-decoration:none}
 tr:nth-child(even) td{background:none}
}
`;

export function renderReport(m: ReportModel): string {
  const s = m.summary;
  const sections: [string, string, string][] = [
    ['identity', 'Identity', identity(m)],
    ...(m.diff ? [['changes', 'What changed', changes(m.diff)] as [string, string, string]] : []),
    ['picture', 'Bytes at a glance', picture(m)],
    ['images', `Images (${s.images.length})`, images(m.images)],
    ['charts', `Charts (${s.charts.length})`, charts(m)],
    ['files', `Files and tools (${s.files.length + s.tools.length})`, filesAndTools(m)],
    ...(m.findings ? [['findings', `Audit findings (${m.findings.length})`, findings(m)] as [string, string, string]] : []),
    ['verification', 'Verification of every blob', verification(m)],
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(`Review: ${s.name} ${s.version}`)}</title>
<style>${CSS}</style></head>
<body>
<header><h1>Review: ${esc(s.name)} ${esc(s.version)}</h1>
<p class="sub">airlock bundle <code>${esc(s.path)}</code> — report generated ${esc(m.generated)} by airlock ${esc(m.toolVersion)}. This file is self-contained: it loads nothing and runs no script.</p>
${verdict(m)}
<nav>${sections.map(([id, title]) => `<a href="#${id}">${esc(title)}</a>`).join('')}</nav></header>
<main>
${sections.map(([id, title, body]) => `<section id="${id}"><h2>${esc(title)}</h2>\n${body}</section>`).join('\n')}
</main>
<footer>Bundle inventory ${esc(s.inventoryDigest)}. Checked offline by airlock ${esc(m.toolVersion)}: blobs hashed against their digests${m.verify.signature?.verified ? ', signature verified with the key given' : ''}.</footer>
</body></html>
`;
}

function verdict(m: ReportModel): string {
  const v = m.verify;
  const sig = m.verify.signature;
  const sev = countBy(m.findings ?? [], (f) => f.severity);
  const cards = [
    card('Blobs', v.ok ? `<span class="ok">all ${v.blobs} verified</span>` : `<span class="bad">${v.problems.length} problem${v.problems.length === 1 ? '' : 's'}</span>`, `${formatBytes(v.bytes)} hashed`),
    card('Signature', !sig || !sig.signed ? '<span class="warn">unsigned</span>' : sig.verified ? '<span class="ok">verified</span>' : '<span class="warn">not verified</span>', sig?.verified ? `key ${esc(short(sig.key ?? ''))}` : sig?.claimed ? `claims ${esc(short(sig.claimed.key))}` : 'no signature'),
    card('Contents', `${m.summary.images.length} images`, `${m.summary.charts.length} charts, ${m.summary.files.length} files, ${m.summary.tools.length} tools; ${formatBytes(m.summary.totals.bytes)} unique`),
  ];
  if (m.diff) {
    const d = m.diff;
    const n = (l: ListDiff<unknown>): number => l.added.length + l.removed.length + l.changed.length;
    cards.push(card('Changes', `${n(d.images) + n(d.charts) + n(d.files) + n(d.tools)} changes`, d.bytes ? `${formatBytes(d.bytes.newBytes)} new bytes` : 'against a lock'));
  }
  if (m.findings) cards.push(card('Audit', `${m.findings.length} finding${m.findings.length === 1 ? '' : 's'}`, Object.entries(sev).map(([k, c]) => `${c} ${esc(k)}`).join(', ') || 'none'));
  return `<div class="cards">${cards.join('')}</div>`;
}

function card(title: string, big: string, small: string): string {
  return `<div class="card"><span class="mut">${esc(title)}</span><b>${big}</b><span class="mut">${small}</span></div>`;
}

function identity(m: ReportModel): string {
  const s = m.summary;
  const sig = m.verify.signature;
  const sigText = !sig || !sig.signed
    ? '<span class="badge warn">unsigned</span>'
    : sig.verified
      ? `<span class="badge ok">verified</span> signed by key <code>${esc(sig.key ?? '')}</code> (${esc(sig.algorithm ?? '')}), checked with the key given${sig.claimed && sig.claimed.key !== sig.key ? `; the bundle claims another signer <code>${esc(sig.claimed.key)}</code>` : ''}`
      : `<span class="badge warn">not verified</span> claims key <code>${esc(sig.claimed?.key ?? '')}</code> (${esc(sig.claimed?.algorithm ?? '')}) — ${m.verify.problems.some((p) => p.entry === 'airlock/inventory.json.sig') ? '<span class="bad">the key given does not verify it</span>' : 'a claim until checked: give the signer\'s key (--key NAME.pub)'}`;
  const rows: [string, string][] = [
    ['Name', esc(s.name)],
    ['Version', esc(s.version)],
    ['Inventory digest', `<code>${esc(s.inventoryDigest)}</code> <span class="mut">(sha256 of airlock/inventory.json: pins every blob)</span>`],
    ['Packed by', `airlock ${esc(s.toolVersion)} (bundle format ${s.formatVersion})`],
    ['Signature', sigText],
    [
      'Approvals beside it',
      m.approvals.length === 0
        ? '<span class="mut">none</span>'
        : `<ul class="tight">${m.approvals.map((a) => `<li>key <code>${esc(a.key)}</code> at ${esc(a.time)}${a.note !== undefined ? `: “${esc(a.note)}”` : ''} <span class="mut">(claimed: <code>verify --approved-by KEY.pub</code> checks it)</span></li>`).join('')}</ul>`,
    ],
    ['File', `<code>${esc(s.path)}</code>, ${esc(formatBytes(s.fileSize))}${s.volumes ? `, split into ${s.volumes.count} volumes${s.volumes.parity ? ` + ${s.volumes.parity} recovery` : ''}` : ''}`],
    ['Totals', `${s.totals.blobs} blobs, ${esc(formatBytes(s.totals.bytes))} unique, ${esc(formatBytes(s.totals.sharedBytes))} saved by sharing between images`],
  ];
  if (s.delta) rows.push(['Delta of', `${esc(s.delta.base.name)} ${esc(s.delta.base.version)} (inventory <code>${esc(s.delta.base.inventory)}</code>): relies on ${s.delta.blobs} blobs, ${esc(formatBytes(s.delta.bytes))}`]);
  return `<dl class="id">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

function changes(d: BundleDiff): string {
  const out: string[] = [`<p>Against <code>${esc(d.old.path)}</code> (${esc(d.old.kind)} ${esc(d.old.name)} ${esc(d.old.version)}${d.old.inventory ? `, inventory <code>${esc(d.old.inventory)}</code>` : ''}).${d.same ? ' <b>No differences.</b>' : ''}</p>`];
  const list = <T>(title: string, l: ListDiff<T>, cols: string[], row: (t: T) => string[], change: (c: Changed<T>) => string[]): void => {
    if (l.added.length + l.removed.length + l.changed.length === 0) {
      if (l.unchanged > 0) out.push(`<h3>${esc(title)}</h3><p class="mut">${l.unchanged} unchanged</p>`);
      return;
    }
    out.push(`<h3>${esc(title)}: ${l.added.length} added, ${l.removed.length} removed, ${l.changed.length} changed, ${l.unchanged} unchanged</h3>`);
    const rows = [
      ...l.added.map((t) => [`<span class="badge ok">added</span>`, ...row(t).map(cell)]),
      ...l.removed.map((t) => [`<span class="badge bad">removed</span>`, ...row(t).map(cell)]),
      ...l.changed.map((c) => [`<span class="badge warn">changed</span>`, ...change(c)]),
    ];
    out.push(table(['', ...cols], rows));
  };
  // A digest wraps like the changed rows' digests (monospace, broken anywhere) so the table fits the page.
  function cell(v: string): string {
    return /^sha256:[0-9a-f]{64}$/.test(v) ? `<span class="mono">${esc(v)}</span>` : esc(v);
  }
  const img = (i: { reference: string; digest: string; platforms: string[]; size: number; referrers: number }): string[] => [i.reference, i.digest, i.platforms.join(', ') || '-', formatBytes(i.size), String(i.referrers)];
  const arrow = (a: string, b: string): string => (a === b ? esc(a) : `${esc(a)}<br>→ ${esc(b)}`);
  list('Images', d.images, ['Reference', 'Digest', 'Platforms', 'Size', 'Signatures, SBOMs…'], img, (c) => [arrow(c.old.reference, c.new.reference), `<span class="mono">${arrow(c.old.digest, c.new.digest)}</span>`, arrow(c.old.platforms.join(', ') || '-', c.new.platforms.join(', ') || '-'), arrow(formatBytes(c.old.size), formatBytes(c.new.size)), arrow(String(c.old.referrers), String(c.new.referrers))]);
  list('Charts', d.charts, ['Chart', 'Version', 'Digest', 'Dependencies'], (c) => [c.name, c.version, c.digest, c.dependencies.join(', ') || '-'], (c) => [esc(c.old.name), arrow(c.old.version, c.new.version), `<span class="mono">${arrow(c.old.digest, c.new.digest)}</span>`, arrow(c.old.dependencies.join(', ') || '-', c.new.dependencies.join(', ') || '-')]);
  list('Files', d.files, ['File', 'Version', 'Sha256', 'Mode'], (f) => [f.name, f.version ?? '-', f.digest, f.mode], (c) => [esc(c.old.name), arrow(c.old.version ?? '-', c.new.version ?? '-'), `<span class="mono">${arrow(c.old.digest, c.new.digest)}</span>`, arrow(c.old.mode, c.new.mode)]);
  list('Tools', d.tools, ['Tool', 'Sha256', 'Size', ''], (t) => [t.path, t.digest, formatBytes(t.size), ''], (c) => [esc(c.old.path), `<span class="mono">${arrow(c.old.digest, c.new.digest)}</span>`, arrow(formatBytes(c.old.size), formatBytes(c.new.size)), '']);
  if (d.bytes) out.push(`<h3>Bytes</h3><p><b>${esc(formatBytes(d.bytes.newBytes))}</b> new in ${d.bytes.newBlobs} blobs (not in the old bundle: what nobody reviewed yet); ${esc(formatBytes(d.bytes.carriedBytes))} carried over in ${d.bytes.carriedBlobs}; ${esc(formatBytes(d.bytes.droppedBytes))} dropped in ${d.bytes.droppedBlobs}.</p>`);
  out.push(`<h3>Signer</h3><p>${esc(signerText(d.signer.old))} → ${esc(signerText(d.signer.new))} ${d.signer.changed ? '<span class="badge warn">changed</span>' : '<span class="badge ok">unchanged</span>'}</p>`);
  return out.join('\n');
}

function picture(m: ReportModel): string {
  const out: string[] = [];
  if (m.diff?.bytes) {
    out.push('<h3>New against carried bytes</h3>', splitBarSvg([{ label: 'new (not in the base)', bytes: m.diff.bytes.newBytes, cls: 'new' }, { label: 'carried over from the base', bytes: m.diff.bytes.carriedBytes, cls: 'carried' }]));
  }
  const t = m.summary.totals;
  out.push('<h3>Unique bytes against bytes saved by sharing</h3>', splitBarSvg([{ label: 'unique bytes carried', bytes: t.bytes, cls: 'own' }, { label: 'saved: layers shared between images', bytes: Math.max(0, t.sharedBytes), cls: 'saved' }]));
  if (m.images.length > 0) out.push('<h3>Bytes by image (largest first)</h3>', bytesByImageSvg(m.images.map((i) => ({ label: i.reference, own: i.ownBytes, shared: i.sharedBytes }))));
  return out.join('\n');
}

const IMAGE_COLS = ['Reference', 'Digest', 'Platforms', 'Size', 'Own', 'Shared', 'Carries'];

function imageRow(i: ReportImage): string[] {
  return [
    esc(i.reference),
    `<span class="mono">${esc(i.digest)}</span>${i.original ? `<br><span class="mut">cut from upstream index <span class="mono">${esc(i.original)}</span></span>` : ''}`,
    esc(i.platforms.join(', ') || '-'),
    esc(formatBytes(i.size)),
    esc(formatBytes(i.ownBytes)),
    i.sharedBlobs > 0 ? `${esc(formatBytes(i.sharedBytes))}<br><span class="mut">${i.sharedBlobs} layer${i.sharedBlobs === 1 ? '' : 's'} with ${i.sharesWith} other${i.sharesWith === 1 ? '' : 's'}</span>` : '-',
    i.referrers.length === 0 ? '-' : `<ul class="tight">${i.referrers.map((r) => `<li>${esc(r.kind)}${r.artifactType ? ` <span class="mut">${esc(r.artifactType)}</span>` : ''}</li>`).join('')}</ul>`,
  ];
}

function images(list: readonly ReportImage[]): string {
  if (list.length === 0) return '<p class="mut">No images.</p>';
  const byName = [...list].sort((a, b) => cmp(a.reference, b.reference));
  const groups = new Map<string, ReportImage[]>();
  for (const i of byName) groups.set(i.registry, [...(groups.get(i.registry) ?? []), i]);
  const out = [`<p>Grouped by registry, sorted by name. The same list sorted otherwise is below (open a section).</p>`];
  // Anchors by position: two registry names never share one.
  const ids = new Map([...groups.keys()].map((r, n) => [r, `reg-${n + 1}`]));
  if (groups.size > 1) out.push(`<p>${[...groups].map(([r, l]) => `<a href="#${ids.get(r)!}">${esc(r)}</a> (${l.length})`).join(' · ')}</p>`);
  const numeric = new Set([3, 4, 5]);
  for (const [r, l] of groups) {
    const bytes = l.reduce((a, i) => a + i.size, 0);
    out.push(`<h3 id="${ids.get(r)!}">${esc(r)} <span class="mut">— ${l.length} image${l.length === 1 ? '' : 's'}, ${esc(formatBytes(bytes))}</span></h3>`, table(IMAGE_COLS, l.map(imageRow), numeric));
  }
  const alt = (title: string, sorted: ReportImage[]): string => `<details class="alt"><summary>${esc(title)}</summary>${table(IMAGE_COLS, sorted.map(imageRow), numeric)}</details>`;
  out.push(alt('All images sorted by size (largest first)', [...list].sort((a, b) => b.size - a.size || cmp(a.reference, b.reference))));
  out.push(alt('All images sorted by bytes of their own (largest first)', [...list].sort((a, b) => b.ownBytes - a.ownBytes || cmp(a.reference, b.reference))));
  out.push(alt('All images sorted by bytes shared with others (largest first)', [...list].sort((a, b) => b.sharedBytes - a.sharedBytes || cmp(a.reference, b.reference))));
  return out.join('\n');
}

function charts(m: ReportModel): string {
  if (m.charts.length === 0) return '<p class="mut">No charts.</p>';
  return table(
    ['Chart', 'Version', 'Reference', 'Digest', 'Size', 'Dependencies'],
    [...m.charts].sort((a, b) => cmp(a.name, b.name)).map((c) => [esc(c.name), esc(c.version), esc(c.reference), `<span class="mono">${esc(c.digest)}</span>`, esc(formatBytes(c.size)), c.dependencies.length ? `<ul class="tight">${c.dependencies.map((d) => `<li>${esc(d)}</li>`).join('')}</ul>` : '-']),
    new Set([4]),
  );
}

function filesAndTools(m: ReportModel): string {
  const s = m.summary;
  const out: string[] = [];
  out.push('<h3>Files</h3>', s.files.length === 0 ? '<p class="mut">No files.</p>' : table(['File', 'Version', 'Mode', 'Size', 'Sha256', 'Pushed as'], s.files.map((f) => [esc(f.name), esc(f.version ?? '-'), esc(f.mode), esc(formatBytes(f.size)), `<span class="mono">${esc(f.digest)}</span>`, esc(f.reference)]), new Set([3])));
  out.push('<h3>Tools</h3>', s.tools.length === 0 ? '<p class="mut">No tools (pack --with-tools carries them).</p>' : table(['Tool', 'Platform', 'Size', 'Sha256', 'Entry'], s.tools.map((t) => [esc(t.name), esc(t.platform), esc(formatBytes(t.size)), `<span class="mono">${esc(t.digest)}</span>`, esc(t.path)]), new Set([2])));
  return out.join('\n');
}

const SEVERITY_ORDER = ['critical', 'high', 'medium', 'low', 'info'];

function findings(m: ReportModel): string {
  const list = [...(m.findings ?? [])].sort((a, b) => rank(a.severity) - rank(b.severity) || cmp(a.endpoint, b.endpoint) || cmp(a.resource, b.resource));
  const head = `<p>From <code>${esc(m.auditFile ?? '')}</code> (<code>airlock audit --format json</code>): every endpoint outside the network the app would talk to.</p>`;
  if (list.length === 0) return `${head}<p class="ok">No findings.</p>`;
  return (
    head +
    table(
      ['Severity', 'Endpoint', 'Resource', 'Where', 'Hint'],
      list.map((f) => [`<span class="badge sev-${esc(SEVERITY_ORDER.includes(f.severity) ? f.severity : 'info')}">${esc(f.severity)}</span>`, `<span class="mono">${esc(f.endpoint || '-')}</span>`, esc(f.resource), `<span class="mono">${esc(f.path)}</span>`, esc(f.hint)]),
    )
  );
}

function verification(m: ReportModel): string {
  const v = m.verify;
  const out: string[] = [];
  out.push(v.ok ? `<p><span class="badge ok">intact</span> every blob (${v.blobs}, ${esc(formatBytes(v.bytes))}) was hashed and matches its digest; manifests, index.json, the inventory and the tar's framing agree.</p>` : `<p><span class="badge bad">${v.problems.length} problem${v.problems.length === 1 ? '' : 's'}</span> do not import this bundle as it is.</p>`);
  if (v.problems.length > 0) out.push(table(['Where', 'Problem', 'Images'], v.problems.map((p) => [`<span class="mono">${esc(p.digest ?? p.entry ?? '')}</span>`, esc(p.message), esc(p.images.join(', ') || '-')])));
  const counts = countBy(m.blobs, (b) => b.status);
  out.push(
    `<details${m.blobs.length <= 60 ? ' open' : ''}><summary>Every blob: ${m.blobs.length} (${counts.ok ?? 0} verified${counts.bad ? `, ${counts.bad} bad` : ''}${counts.relied ? `, ${counts.relied} relied on from the base` : ''})</summary>${table(['Status', 'Digest', 'Media type', 'Size', 'Used by'], [...m.blobs].sort((a, b) => statusRank(a) - statusRank(b) || cmp(a.digest, b.digest)).map(blobRow), new Set([3]))}</details>`,
  );
  return out.join('\n');
}

function blobRow(b: ReportBlob): string[] {
  const status = b.status === 'ok' ? '<span class="badge ok">ok</span>' : b.status === 'bad' ? `<span class="badge bad">bad</span><br>${esc(b.problem ?? '')}` : '<span class="badge mut">in base</span>';
  const used = b.images.length <= 3 ? b.images.join(', ') : `${b.images.slice(0, 3).join(', ')} and ${b.images.length - 3} more`;
  return [status, `<span class="mono">${esc(b.digest)}</span>`, `<span class="mono">${esc(b.mediaType)}</span>`, esc(formatBytes(b.size)), esc(used)];
}

function table(cols: readonly string[], rows: readonly string[][], numeric: ReadonlySet<number> = new Set()): string {
  const cls = (i: number): string => (numeric.has(i) ? ' class="n"' : '');
  return `<table><thead><tr>${cols.map((c, i) => `<th${cls(i)}>${esc(c)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function statusRank(b: ReportBlob): number {
  return b.status === 'bad' ? 0 : b.status === 'relied' ? 2 : 1;
}

function rank(severity: string): number {
  const i = SEVERITY_ORDER.indexOf(severity);
  return i < 0 ? SEVERITY_ORDER.length : i;
}

function countBy<T>(list: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of list) out[key(t)] = (out[key(t)] ?? 0) + 1;
  return out;
}

function short(digest: string): string {
  return digest.length > 19 ? `${digest.slice(0, 19)}…` : digest;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
