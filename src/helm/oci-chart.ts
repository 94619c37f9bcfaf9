// Charts in OCI registries (`oci://host/path` + chart name): versions are tags (with "+" written
// as "_"), the chart is the manifest's one layer of type helm chart content.
import { ExitCode, IntegrityError, NotFoundError, UsageError } from '../core/errors.ts';
import { isDigest } from '../core/digest.ts';
import { MAX_MANIFEST_BYTES, parseManifest, type Descriptor } from '../core/manifest.ts';
import { MediaType } from '../core/media-types.ts';
import { isValidRegistry, isValidRepository } from '../core/reference.ts';
import type { OpOptions, RangeFetcher, ReadOnlyStorage } from '../content/types.ts';
import { readAllLimited } from '../content/verify-stream.ts';
import { MAX_CHART_BYTES } from './chart-tgz.ts';
import { describeVersions, isValidChartVersion, ociTagForVersion, selectVersion, versionFromOciTag } from './version.ts';

/** What charts need of a registry repository (the registry client's RemoteRepository has it all). */
export interface ChartSourceRepository extends ReadOnlyStorage, Partial<RangeFetcher> {
  fetchManifest(reference: string, opts?: OpOptions): Promise<{ descriptor: Descriptor; bytes: Buffer }>;
  listTags?(opts?: OpOptions): Promise<string[]>;
}
export type OpenChartRepository = (name: { registry: string; repository: string }) => ChartSourceRepository;

/** Layer type of charts pushed by helm before 3.7. */
export const LEGACY_CHART_LAYER = 'application/tar+gzip';

export interface OciLocation {
  registry: string;
  /** The repository that holds the chart's tags: `<path>/<chart name>`. */
  repository: string;
}

/** `oci://host[:port]/path` + chart name → the chart's repository. */
export function ociChartLocation(repoUrl: string, name: string, what: string): OciLocation {
  const rest = repoUrl.replace(/^oci:\/\//, '').replace(/\/+$/, '');
  const slash = rest.indexOf('/');
  const registry = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  const repository = path ? `${path}/${name}` : name;
  if (!isValidRegistry(registry) || !isValidRepository(repository)) {
    throw new UsageError(`${what}: "${repoUrl}" with chart "${name}" is not a valid OCI chart location`, {
      code: 'CHART_REPO_INVALID',
      hint: 'write oci://REGISTRY[:PORT]/PATH (lowercase), the URL `helm pull oci://…/CHART` takes without the chart name',
    });
  }
  return { registry, repository };
}

/** An exact version (no operators) is fetched by tag without listing tags, as helm does. */
function isExactVersion(range: string): boolean {
  return /^v?\d+(\.\d+){0,2}([-+][0-9A-Za-z.+_-]+)?$/.test(range.trim()) && isValidChartVersion(range.trim());
}

export interface ResolvedOciChart {
  version: string;
  tag: string;
  manifest: Descriptor;
  manifestBytes: Buffer;
  layer: Descriptor;
}

export async function resolveOciChart(repo: ChartSourceRepository, loc: OciLocation, name: string, range: string, what: string, signal?: AbortSignal): Promise<ResolvedOciChart> {
  const where = `oci://${loc.registry}/${loc.repository}`;
  let tag: string;
  if (isExactVersion(range)) {
    tag = ociTagForVersion(range.trim());
  } else {
    if (!repo.listTags) throw new UsageError(`${what}: cannot list the tags of ${where}`, { code: 'CHART_TAGS_UNAVAILABLE', hint: 'pin an exact version' });
    const tags = await repo.listTags({ signal });
    const versions = tags.map(versionFromOciTag).filter(isValidChartVersion);
    const version = selectVersion(versions, range);
    if (version === undefined) {
      throw new NotFoundError(`${what}: no version of chart "${name}" in ${where} satisfies "${range || '*'}" (available: ${describeVersions(versions)})`, {
        code: 'CHART_VERSION_NOT_FOUND',
        hint: 'change the version range',
      });
    }
    tag = ociTagForVersion(version);
  }
  let fetched: { descriptor: Descriptor; bytes: Buffer };
  try {
    fetched = await repo.fetchManifest(tag, { signal });
  } catch (e) {
    if ((e as { exitCode?: number }).exitCode === ExitCode.notFound) {
      let available = '';
      try {
        if (repo.listTags) available = ` (available: ${describeVersions((await repo.listTags({ signal })).map(versionFromOciTag).filter(isValidChartVersion))})`;
      } catch {
        // the listing is only a courtesy in the message
      }
      throw new NotFoundError(`${what}: chart "${name}" version ${versionFromOciTag(tag)} is not in ${where}${available}`, { code: 'CHART_VERSION_NOT_FOUND', cause: e, hint: 'check the chart name, the oci:// URL and the version' });
    }
    throw e;
  }
  const parsed = parseManifest(fetched.bytes, fetched.descriptor.mediaType, `${where}:${tag}`);
  if (parsed.kind !== 'manifest' || parsed.value.config.mediaType !== MediaType.helmConfig) {
    throw new UsageError(`${what}: ${where}:${tag} is not a helm chart (its config is ${parsed.kind === 'manifest' ? parsed.value.config.mediaType : 'an index'}, not ${MediaType.helmConfig})`, {
      code: 'NOT_A_CHART',
      hint: 'an oci:// chart source must hold charts pushed with `helm push`',
    });
  }
  const layers = parsed.value.layers.filter((l) => l.mediaType === MediaType.helmChart || l.mediaType === LEGACY_CHART_LAYER);
  if (layers.length !== 1 || !isDigest(layers[0]!.digest)) {
    throw new IntegrityError(`${what}: ${where}:${tag} has ${layers.length} chart layers, expected one`, { code: 'CHART_LAYERS_INVALID' });
  }
  const layer = layers[0]!;
  if (layer.size > MAX_CHART_BYTES) throw new IntegrityError(`${what}: the chart layer of ${where}:${tag} is ${layer.size} bytes, more than ${MAX_CHART_BYTES}`, { code: 'CHART_ARCHIVE_TOO_LARGE' });
  if (fetched.bytes.length > MAX_MANIFEST_BYTES) throw new IntegrityError(`${what}: manifest too large`, { code: 'MANIFEST_TOO_LARGE' });
  return { version: versionFromOciTag(tag), tag, manifest: fetched.descriptor, manifestBytes: fetched.bytes, layer };
}

/** The chart layer's bytes, verified against its descriptor. */
export async function fetchOciLayer(repo: ChartSourceRepository, layer: Descriptor, what: string, signal?: AbortSignal): Promise<Buffer> {
  return await readAllLimited(await repo.fetch(layer, { signal }), Math.min(layer.size, MAX_CHART_BYTES), what);
}
