// A diff as people read it: grouped by kind, + added, - removed, ~ changed with old → new per field.
import { formatBytes } from '../core/bytes.ts';
import type { BundleDiff, Changed, DiffSideInfo, ListDiff } from './compare.ts';
import type { SideChart, SideFile, SideImage, SideSigner } from './side.ts';

export function formatDiffText(d: BundleDiff): string {
  const lines: string[] = [`old: ${sideLine(d.old)}`, `new: ${sideLine(d.new)}`];
  if (d.same) lines.push('', 'no differences: the same images, charts, files, tools and signer');
  section(lines, 'images', d.images, imageLine, imageChange);
  section(lines, 'charts', d.charts, chartLine, chartChange);
  section(lines, 'files', d.files, fileLine, fileChange);
  section(lines, 'tools', d.tools, (t) => `${t.path}  ${t.digest}  ${formatBytes(t.size)}`, (c) => [`digest ${c.old.digest} → ${c.new.digest}`, ...(c.fields.includes('size') ? [`size ${formatBytes(c.old.size)} → ${formatBytes(c.new.size)}`] : [])]);
  lines.push('');
  if (d.bytes) {
    const b = d.bytes;
    lines.push(`bytes: ${formatBytes(b.newBytes)} new in ${b.newBlobs} blob${b.newBlobs === 1 ? '' : 's'} (not in old); ${formatBytes(b.carriedBytes)} carried over in ${b.carriedBlobs}; ${formatBytes(b.droppedBytes)} dropped in ${b.droppedBlobs}`);
  } else lines.push('bytes: not compared (a lock lists no blobs; diff two bundles for the new bytes)');
  lines.push(`signer: ${signerText(d.signer.old)} → ${signerText(d.signer.new)}${d.signer.changed ? '  (CHANGED)' : '  (unchanged)'}`);
  return lines.join('\n');
}

function sideLine(s: DiffSideInfo): string {
  return `${s.path} (${s.kind} ${s.name} ${s.version}${s.toolVersion ? `, airlock ${s.toolVersion}` : ''}${s.inventory ? `, inventory ${s.inventory}` : ''})`;
}

export function signerText(s: SideSigner | undefined): string {
  if (!s) return 'unsigned';
  return s.verified ? `${s.key} (${s.algorithm}, verified)` : `claims ${s.key} (${s.algorithm}, not verified: give --key NAME.pub)`;
}

function section<T>(lines: string[], title: string, l: ListDiff<T>, line: (t: T) => string, change: (c: Changed<T>) => string[]): void {
  const total = l.added.length + l.removed.length + l.changed.length + l.unchanged;
  if (total === 0) return;
  lines.push('', `${title}: ${l.added.length} added, ${l.removed.length} removed, ${l.changed.length} changed, ${l.unchanged} unchanged`);
  for (const t of l.added) lines.push(`  + ${line(t)}`);
  for (const t of l.removed) lines.push(`  - ${line(t)}`);
  for (const c of l.changed) {
    lines.push(`  ~ ${changeHead(c as Changed<unknown>)}`);
    for (const f of change(c)) lines.push(`      ${f}`);
  }
}

function changeHead(c: Changed<unknown>): string {
  const o = c.old as { reference?: string; name?: string; path?: string };
  const n = c.new as { reference?: string; name?: string; path?: string };
  if ('version' in (c.old as object) && 'dependencies' in (c.old as object)) return `${(o as SideChart).name}`;
  const a = o.reference ?? o.name ?? o.path ?? '';
  const b = n.reference ?? n.name ?? n.path ?? '';
  return a === b ? a : `${a} → ${b}`;
}

function imageLine(i: SideImage): string {
  return `${i.reference}  ${i.digest}  ${i.platforms.join(',') || '-'}  ${formatBytes(i.size)}${i.referrers ? `  (+${i.referrers} referrer${i.referrers === 1 ? '' : 's'})` : ''}`;
}

function imageChange(c: Changed<SideImage>): string[] {
  const out: string[] = [];
  if (c.fields.includes('digest')) out.push(`digest     ${c.old.digest} → ${c.new.digest}`);
  if (c.fields.includes('platforms')) out.push(`platforms  ${c.old.platforms.join(',') || '-'} → ${c.new.platforms.join(',') || '-'}`);
  if (c.fields.includes('size')) out.push(`size       ${formatBytes(c.old.size)} → ${formatBytes(c.new.size)}`);
  if (c.fields.includes('referrers')) out.push(`referrers  ${c.old.referrers} → ${c.new.referrers}`);
  return out;
}

function chartLine(c: SideChart): string {
  return `${c.name} ${c.version}  ${c.reference}  ${c.digest}  ${formatBytes(c.size)}${c.dependencies.length ? `  (depends on ${c.dependencies.join(', ')})` : ''}`;
}

function chartChange(c: Changed<SideChart>): string[] {
  const out: string[] = [];
  if (c.fields.includes('version')) out.push(`version    ${c.old.version} → ${c.new.version}`);
  if (c.fields.includes('reference')) out.push(`reference  ${c.old.reference} → ${c.new.reference}`);
  if (c.fields.includes('digest')) out.push(`digest     ${c.old.digest} → ${c.new.digest}`);
  if (c.fields.includes('size')) out.push(`size       ${formatBytes(c.old.size)} → ${formatBytes(c.new.size)}`);
  if (c.fields.includes('dependencies')) out.push(`dependencies  ${c.old.dependencies.join(', ') || '-'} → ${c.new.dependencies.join(', ') || '-'}`);
  return out;
}

function fileLine(f: SideFile): string {
  return `${f.name}${f.version ? ` ${f.version}` : ''}  ${f.digest}  ${f.mode}  ${formatBytes(f.size)}`;
}

function fileChange(c: Changed<SideFile>): string[] {
  const out: string[] = [];
  if (c.fields.includes('version')) out.push(`version  ${c.old.version ?? '-'} → ${c.new.version ?? '-'}`);
  if (c.fields.includes('digest')) out.push(`digest   ${c.old.digest} → ${c.new.digest}`);
  if (c.fields.includes('size')) out.push(`size     ${formatBytes(c.old.size)} → ${formatBytes(c.new.size)}`);
  if (c.fields.includes('mode')) out.push(`mode     ${c.old.mode} → ${c.new.mode}`);
  return out;
}
