// Pictures as inline SVG (no script, no external font or image): bytes by image, each bar split
// into the bytes the image has alone and those it shares with others; and one bar of new against
// carried bytes. Labels are escaped like every other text of the report.
import { formatBytes } from '../core/bytes.ts';
import { esc } from './escape.ts';

export interface Bar {
  label: string;
  own: number;
  shared: number;
}

const WIDTH = 960;
const LABEL = 330;
const ROW = 20;

/** Horizontal bars, largest first; past `max` rows the rest are one line of text ("N more images"), not a bar that would dwarf the others. */
export function bytesByImageSvg(bars: readonly Bar[], max = 30): string {
  const sorted = [...bars].sort((a, b) => b.own + b.shared - (a.own + a.shared) || (a.label < b.label ? -1 : 1));
  const shown = sorted.slice(0, max);
  const rest = sorted.slice(max);
  const top = Math.max(1, ...shown.map((b) => b.own + b.shared));
  const span = WIDTH - LABEL - 110;
  const height = (shown.length + (rest.length > 0 ? 1 : 0)) * ROW + 34;
  const rows = shown.map((b, i) => {
    const y = 26 + i * ROW;
    const w1 = (b.own / top) * span;
    const w2 = (b.shared / top) * span;
    const label = b.label.length > 52 ? `…${b.label.slice(-51)}` : b.label;
    return (
      `<g><title>${esc(`${b.label}: ${formatBytes(b.own)} own, ${formatBytes(b.shared)} shared`)}</title>` +
      `<text x="${LABEL - 6}" y="${y + 13}" text-anchor="end" class="l">${esc(label)}</text>` +
      `<rect x="${LABEL}" y="${y + 2}" width="${w1.toFixed(1)}" height="${ROW - 5}" class="own"/>` +
      `<rect x="${(LABEL + w1).toFixed(1)}" y="${y + 2}" width="${w2.toFixed(1)}" height="${ROW - 5}" class="shared"/>` +
      `<text x="${(LABEL + w1 + w2 + 5).toFixed(1)}" y="${y + 13}" class="v">${esc(formatBytes(b.own + b.shared))}</text></g>`
    );
  });
  return (
    `<svg role="img" aria-label="bytes by image" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}">` +
    `<rect x="${LABEL}" y="4" width="12" height="12" class="own"/><text x="${LABEL + 16}" y="14" class="l">own (no other image uses it)</text>` +
    `<rect x="${LABEL + 230}" y="4" width="12" height="12" class="shared"/><text x="${LABEL + 246}" y="14" class="l">shared with other images</text>` +
    rows.join('') +
    (rest.length > 0
      ? `<text x="${LABEL}" y="${26 + shown.length * ROW + 13}" class="v">${esc(`and ${rest.length} more image${rest.length === 1 ? '' : 's'}: ${formatBytes(rest.reduce((a, b) => a + b.own, 0))} own, ${formatBytes(rest.reduce((a, b) => a + b.shared, 0))} shared (see the tables below)`)}</text>`
      : '') +
    '</svg>'
  );
}

/** One bar split in named parts (new vs carried bytes), with a legend under it. */
export function splitBarSvg(parts: readonly { label: string; bytes: number; cls: string }[]): string {
  const total = Math.max(1, parts.reduce((a, p) => a + p.bytes, 0));
  const span = WIDTH - 20;
  let x = 10;
  const rects: string[] = [];
  const legend: string[] = [];
  parts.forEach((p, i) => {
    const w = (p.bytes / total) * span;
    rects.push(`<rect x="${x.toFixed(1)}" y="6" width="${w.toFixed(1)}" height="26" class="${p.cls}"><title>${esc(`${p.label}: ${formatBytes(p.bytes)}`)}</title></rect>`);
    x += w;
    const lx = 10 + i * 320;
    legend.push(`<rect x="${lx}" y="44" width="12" height="12" class="${p.cls}"/><text x="${lx + 16}" y="54" class="l">${esc(`${p.label}: ${formatBytes(p.bytes)} (${((p.bytes / total) * 100).toFixed(1)}%)`)}</text>`);
  });
  return `<svg role="img" aria-label="${esc(parts.map((p) => p.label).join(' vs '))}" viewBox="0 0 ${WIDTH} 64" width="${WIDTH}" height="64">${rects.join('')}${legend.join('')}</svg>`;
}
