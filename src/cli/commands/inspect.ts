import { basename } from 'node:path';
import { ExitCode, UsageError } from '../../core/errors.ts';
import { inspect } from '../../api/inspect.ts';
import { count, formatBytes, table } from '../output.ts';
import { defineCommand } from './types.ts';

export const inspectCommand = defineCommand({
  name: 'inspect',
  summary: 'list the images and charts of a bundle with digests, platforms and sizes',
  usage: `Usage: airlock inspect BUNDLE [--json]
       airlock inspect BUNDLE.tar.*            (a split bundle: reads only its first volume)

Reads the bundle's inventory (not its blobs), so it is fast on any size of bundle: it does not verify
the bundle (it says so on stderr, and \`verified: false\` with --json). What it can check cheaply it
does, and refuses (exit ${ExitCode.integrity}) a file that is not a well-formed airlock bundle: the metadata entries
framed and filled as airlock writes them, the lock and index.json as the inventory pins them, and the
file's size (a truncated bundle). Shows whether it is a delta (and of which base), split, or signed —
only the key the bundle claims: \`verify --key\` checks it — the tools it carries (pack --with-tools), and the
files (files: in airlock.yaml), with their modes, sha256 and the names push gives them.
Lists what each image carries besides: its signatures, attestations and SBOMs (found at lock).`,
  options: {},
  async run({ positionals, out, signal }) {
    if (positionals.length === 0) throw new UsageError('inspect needs one bundle: airlock inspect BUNDLE');
    const info = await inspect(positionals.length === 1 ? positionals[0]! : positionals, { signal });
    // What follows is what the bundle says of itself: say so where it cannot be missed.
    out.warning({ code: 'NOT_VERIFIED', message: `${info.path} was not verified: inspect reads its metadata only; \`airlock verify\` checks every blob${info.signature ? ' and, with --key, the signature' : ''}` });
    const rows = [['IMAGE', 'DIGEST', 'PLATFORMS', 'SIZE']];
    for (const i of info.images) rows.push([i.reference, i.digest, i.platforms.join(',') || '-', formatBytes(i.size)]);
    const referrerRows = [['IMAGE', 'CARRIES', 'ARTIFACT TYPE', 'DIGEST', 'SUBJECT']];
    for (const i of info.images) for (const r of i.referrers) referrerRows.push([i.reference, r.kind, r.artifactType ?? '-', r.digest, r.subject === i.digest ? 'the image' : r.subject]);
    const chartRows = [['CHART', 'VERSION', 'REFERENCE', 'DIGEST', 'SIZE']];
    for (const c of info.charts) chartRows.push([c.name, c.version, c.reference, c.digest, formatBytes(c.size)]);
    const toolRows = [['TOOL', 'PLATFORM', 'SIZE', 'SHA256']];
    for (const x of info.tools) toolRows.push([x.name, x.platform, formatBytes(x.size), x.digest.slice('sha256:'.length)]);
    const fileRows = [['FILE', 'MODE', 'SIZE', 'SHA256', 'REFERENCE']];
    for (const f of info.files) fileRows.push([f.name, f.mode, formatBytes(f.size), f.digest.slice('sha256:'.length), f.reference]);
    const t = info.totals;
    out.result(
      { ...info },
      `bundle ${info.name} ${info.version} (airlock ${info.toolVersion})\n` +
        (info.images.length > 0 || info.charts.length === 0 ? `${table(rows)}\n` : '') +
        (referrerRows.length > 1 ? `\n${table(referrerRows)}\n` : '') +
        (info.charts.length > 0 ? `${info.images.length > 0 ? '\n' : ''}${table(chartRows)}\n\n` : '') +
        (info.tools.length > 0 ? `${info.charts.length > 0 ? '' : '\n'}${table(toolRows)}\n(extract one with \`tar -xf ${basename(info.path)} ${info.tools[0]!.path}\`)\n\n` : '') +
        (info.files.length > 0 ? `${info.charts.length > 0 || info.tools.length > 0 ? '' : '\n'}${table(fileRows)}\n(write them out with \`airlock extract ${basename(info.path)} --files DIR\`)\n\n` : '') +
        `${count(info.images.length, 'image')}, ${count(info.charts.length, 'chart')}, ${info.files.length > 0 ? `${count(info.files.length, 'file')}, ` : ''}${count(t.blobs, 'blob')}, ${formatBytes(t.bytes)} unique, ${formatBytes(t.sharedBytes)} shared between images; file ${formatBytes(info.fileSize)}` +
        `\ninventory ${info.inventoryDigest}` +
        (info.delta ? `\ndelta of ${info.delta.base.name} ${info.delta.base.version} (inventory ${info.delta.base.inventory}): relies on ${count(info.delta.blobs, 'blob')} (${formatBytes(info.delta.bytes)}) from it` : '') +
        (info.signature ? `\nsigned, not verified (claims key ${info.signature.claimed.key}, ${info.signature.claimed.algorithm}); check it with \`airlock verify --key NAME.pub\`` : '') +
        (info.volumes ? `\nsplit into ${count(info.volumes.count, 'volume')} of at most ${formatBytes(info.volumes.size)}${info.volumes.parity ? ` with ${count(info.volumes.parity, 'recovery volume')}` : ''}` : ''),
    );
  },
});
