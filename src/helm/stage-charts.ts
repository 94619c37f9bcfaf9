// pack, for charts: fetch every archive the lock names into the blob cache (verified against the
// lock's digests), rebuild what airlock vendors, and put each chart's Helm OCI artifact (config,
// .tgz layer, manifest) into the cache, checked against the lock, ready for the bundle writer.
// Charts that come from a registry untouched are copied by pack like images instead.
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { IntegrityError, UsageError, throwIfAborted } from '../core/errors.ts';
import { digestOf, type Digest } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import { MediaType } from '../core/media-types.ts';
import type { FileStore } from '../content/file-store.ts';
import { readAllLimited } from '../content/verify-stream.ts';
import type { LockedChart, LockedChartDependency } from '../spec/lock.ts';
import { ARTIFACT_ANNOTATION, buildChartArtifact, CHART_ARTIFACT } from './artifact.ts';
import { loadChartArchive } from './chart-load.ts';
import { parseChartSource, readLocalChart, type ChartFetchContext } from './chart-source.ts';
import { MAX_CHART_BYTES } from './chart-tgz.ts';
import { redactUrl } from '../core/redact.ts';
import { materialize, type ArchiveNode } from './vendor.ts';

export interface ChartStageContext extends ChartFetchContext {
  store: FileStore;
}

/** A chart whose registry manifest is carried as it is (copied like an image). */
export function isPassThrough(chart: LockedChart): boolean {
  return chart.source.startsWith('oci://') && chart.archive === undefined;
}

/** The root descriptor a chart has in the bundle, marked as a chart. */
export function chartRoot(chart: LockedChart): Descriptor {
  return { mediaType: chart.artifact.mediaType, digest: chart.artifact.digest, size: chart.artifact.size, annotations: { [ARTIFACT_ANNOTATION]: CHART_ARTIFACT } };
}

/** One archive, from the cache or its source, verified against the lock. */
async function fetchArchive(source: string, digest: Digest, size: number, what: string, ctx: ChartStageContext): Promise<Buffer> {
  throwIfAborted(ctx.signal);
  const s = parseChartSource(source, what);
  if (s.kind === 'file') {
    const local = await readLocalChart(resolve(ctx.baseDir, s.path), what);
    const got = digestOf(local.bytes);
    if (got !== digest) {
      throw new UsageError(`${what}: ${s.path} changed since airlock.lock was written (it packages to ${got}, the lock says ${digest})`, {
        code: 'LOCK_STALE',
        hint: 'run `airlock lock` to pin the new content, or pack with relock',
      });
    }
    return local.bytes;
  }
  const desc: Descriptor = { mediaType: MediaType.helmChart, digest, size };
  if (size > MAX_CHART_BYTES) throw new IntegrityError(`${what}: the lock says the archive is ${size} bytes, more than ${MAX_CHART_BYTES}`, { code: 'CHART_ARCHIVE_TOO_LARGE' });
  if (!(await ctx.store.exists(desc, { signal: ctx.signal }))) {
    if (s.kind === 'http') {
      const bytes = await ctx.http.get(s.url, { what: `${what} (${redactUrl(s.url)})`, limit: size, signal: ctx.signal });
      if (digestOf(bytes) !== digest) {
        throw new IntegrityError(`${what}: ${redactUrl(s.url)} now has digest ${digestOf(bytes)}, the lock says ${digest}`, {
          code: 'DIGEST_MISMATCH',
          hint: 'the repository republished this version; check why, then run `airlock lock` to accept the new archive',
        });
      }
      await ctx.store.push(desc, Readable.from([bytes]), { signal: ctx.signal });
    } else {
      await ctx.store.ingest(desc, ctx.open({ registry: s.ref.registry, repository: s.ref.repository }), { signal: ctx.signal });
    }
  }
  return await readAllLimited(await ctx.store.fetch(desc, { signal: ctx.signal }), size, what);
}

async function nodeFrom(source: string, digest: Digest, size: number, deps: readonly LockedChartDependency[], what: string, ctx: ChartStageContext): Promise<ArchiveNode> {
  const bytes = await fetchArchive(source, digest, size, what, ctx);
  const chart = loadChartArchive(bytes, what);
  const out: ArchiveNode = { bytes, chart, deps: [] };
  for (const d of deps) {
    if (d.vendored) {
      out.deps.push({ name: d.name, version: d.version });
      continue;
    }
    const dwhat = `${what} → dependency ${d.name}`;
    out.deps.push({ name: d.name, version: d.version, node: await nodeFrom(d.source!, d.digest!, d.size!, d.dependencies, dwhat, ctx) });
  }
  return out;
}

/**
 * Put a chart's artifact into the cache and return its bundle root. The archive airlock builds
 * and the manifest must have the lock's digests: the same lock always packs the same bytes.
 */
export async function stageChart(chart: LockedChart, ctx: ChartStageContext): Promise<Descriptor> {
  const what = `chart ${chart.name} ${chart.version}`;
  const node = await nodeFrom(chart.source, chart.digest, chart.size, chart.dependencies, what, ctx);
  const carried = materialize(node);
  const expected = chart.archive ?? { digest: chart.digest, size: chart.size };
  if (digestOf(carried) !== expected.digest) {
    throw new IntegrityError(`${what}: the archive with its dependencies vendored is ${digestOf(carried)}, the lock says ${expected.digest}`, {
      code: 'LOCK_MISMATCH',
      hint: 'the lock was written by a different airlock version or edited; run `airlock lock` again',
    });
  }
  const artifact = buildChartArtifact(carried, node.chart.meta, node.chart.packagedAt);
  if (artifact.manifest.descriptor.digest !== chart.artifact.digest) {
    throw new IntegrityError(`${what}: the chart manifest comes out as ${artifact.manifest.descriptor.digest}, the lock says ${chart.artifact.digest}`, {
      code: 'LOCK_MISMATCH',
      hint: 'the lock was written by a different airlock version or edited; run `airlock lock` again',
    });
  }
  const { store, signal } = ctx;
  await store.push(artifact.config.descriptor, Readable.from([artifact.config.bytes]), { signal });
  await store.push(artifact.layer, Readable.from([carried]), { signal });
  await store.push(artifact.manifest.descriptor, Readable.from([artifact.manifest.bytes]), { signal });
  return chartRoot(chart);
}
