import { resolve } from 'node:path';
import { lock } from '../../api/lock.ts';
import { count, formatBytes, table } from '../output.ts';
import { registryOptions, registryUsage, sessionFrom } from './registry-flags.ts';
import type { LockedChartDependency } from '../../spec/lock.ts';
import { defineCommand } from './types.ts';
import { describeReferrers } from '../describe-referrers.ts';
import { formatMode } from '../../files/artifact.ts';
import { redactUrl } from '../../core/redact.ts';

export const lockCommand = defineCommand({
  name: 'lock',
  summary: 'pin every image and chart of airlock.yaml to a digest in airlock.lock',
  usage: `Usage: airlock lock [-f airlock.yaml] [--platform linux/amd64]... [--no-referrers] [--json]

Resolves every image tag in the spec to the digest it points at now, chooses the spec's platforms,
resolves every chart's version range (repository index.yaml or OCI tags; local folders are packaged)
with its dependencies (Chart.yaml, Chart.lock), and writes airlock.lock beside the spec (sorted,
deterministic, readable in a diff). Chart repositories use the same TLS options as registries.
Files (files: in the spec) are hashed: a local path read, a URL downloaded (same TLS options and
credentials as chart repositories) into the blob cache, so pack need not download it again; each
is pinned by its sha256 and size.

An index whose platforms the spec's choice leaves out is carried reduced (a new digest) with the
upstream index beside it: lock warns for each, since references pinned to the upstream digest resolve
through airlock serve and export, and after push only where the registry keeps the upstream index
(else post-render and rewrite --bundle map them).

It also records what refers to each image and to each platform manifest kept, so that pack carries
it: cosign's signatures, attestations and SBOMs (tags sha256-<hex>.sig, .att, .sbom) and OCI 1.1
referrers (the registry's referrers API, else the referrers tag schema sha256-<hex>).

Options:
  -f, --file FILE         the spec (default ./airlock.yaml)
      --platform P        lock these platforms instead of the spec's platforms: (repeatable, or
                          comma-separated: linux/amd64,linux/arm64); pack the lock with the same --platform
      --no-referrers      do not look for signatures, attestations and SBOMs (also \`referrers: false\`
                          in airlock.yaml)
${registryUsage}`,
  options: { file: { type: 'string', short: 'f' }, platform: { type: 'string', multiple: true }, 'no-referrers': { type: 'boolean' }, ...registryOptions },
  async run({ values, out, signal }) {
    const spec = resolve((values.file as string | undefined) ?? 'airlock.yaml');
    await using session = sessionFrom(values, out);
    out.info(`locking ${spec}`);
    const { lockFile, lock: locked } = await lock({ spec, session, signal, platforms: values.platform as string[] | undefined, onEvent: (e) => out.warning(e), ...(values['no-referrers'] === true ? { referrers: false } : {}) });
    const charts = locked.charts ?? [];
    const parts: string[] = [];
    if (locked.images.length > 0) {
      const rows = [['IMAGE', 'DIGEST', 'PLATFORMS', 'SIZE']];
      for (const i of locked.images) {
        rows.push([i.reference, i.digest.slice(0, 19), i.platforms?.map((p) => p.platform).join(',') ?? '-', formatBytes(i.totalSize)]);
      }
      parts.push(table(rows));
      const carried = locked.images.filter((i) => (i.referrers ?? []).length > 0).map((i) => `${i.reference} carries ${describeReferrers(i.referrers!)}`);
      if (carried.length > 0) parts.push(carried.join('\n'));
    }
    if (charts.length > 0) {
      const rows = [['CHART', 'VERSION', 'DIGEST', 'DEPENDENCIES']];
      for (const c of charts) rows.push([c.name, c.version, c.digest.slice(0, 19), describeDependencies(c.dependencies) || '-']);
      parts.push(table(rows));
    }
    const files = locked.files ?? [];
    if (files.length > 0) {
      const rows = [['FILE', 'MODE', 'SHA256', 'SIZE', 'FROM']];
      for (const f of files) rows.push([f.name, formatMode(f.mode), f.digest.slice('sha256:'.length, 'sha256:'.length + 12), formatBytes(f.size), f.path ?? redactUrl(f.url!)]);
      parts.push(table(rows));
    }
    out.result(
      { lockFile, images: locked.images, charts, ...(files.length > 0 ? { files } : {}) },
      `${parts.join('\n\n')}\nwrote ${lockFile} (${count(locked.images.length, 'image')}, ${count(charts.length, 'chart')}${files.length > 0 ? `, ${count(files.length, 'file')}` : ''})`,
    );
  },
});

/** "redis 17.3.1 (vendored), common 2.0.0 as lib": one line for a table cell. */
function describeDependencies(deps: LockedChartDependency[]): string {
  return deps.map((d) => `${d.name} ${d.version}${d.alias ? ` as ${d.alias}` : ''}${d.vendored ? ' (vendored)' : ''}`).join(', ');
}
