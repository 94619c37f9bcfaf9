// Mirror configuration for nodes: every source registry of a bundle is mirrored by the internal
// registry R, so kubelet/containerd pull images by their original names, unchanged manifests and
// charts included. Two shapes:
//   k3s/RKE2  registries.yaml: `mirrors.<source>.endpoint` = R, with a `rewrite` rule when R holds
//             the images under a prefix (k3s applies it to the repository path: `^(.*)$` → `P/$1`),
//             and `configs.<R>.tls.ca_file` for a private CA.
//   containerd certs.d/<source>/hosts.toml: `server` and `[host."R"]` (pull, resolve), with the
//             CA copied beside it. hosts.toml cannot rewrite paths; a prefix (or the source host
//             kept in the path) is reached through the host's API root instead: `[host."R/v2/P"]`
//             with `override_path = true`, so containerd asks R for `/v2/P/<path>/manifests/…`.
// Where images land in R comes from the one mapping function, the one push uses: with mapAll, a
// bundle whose images would collide in R is refused here exactly as push refuses it.
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { NotFoundError, UsageError } from '../core/errors.ts';
import { writeFileAtomic, writeFilesAtomic } from '../util/atomic-file.ts';
import { DOCKER_HUB, isLoopbackHost, isValidRegistry, parseReference, type Reference } from '../core/reference.ts';
import { inspectBundle } from '../bundle/index.ts';
import { formatTarget, mapAll, parseTarget, pathPrefixFor, type Target } from './mapping.ts';

export type MirrorsFormat = 'k3s' | 'containerd';
export const MIRRORS_FORMATS: readonly MirrorsFormat[] = ['k3s', 'containerd'];

export interface MirrorPlan {
  target: Target;
  /** `https://R` or `http://R`: how nodes reach R. */
  endpoint: string;
  /** Source registries (host[:port]) of the bundle's images, sorted. */
  sources: string[];
}

/** The file name the CA is copied to beside each hosts.toml. */
export const HOSTS_CA_FILE = 'ca.crt';

/**
 * What to mirror where. `registry` is `R[/P]`, optionally with `http://` or `https://`; without a
 * scheme R is reached over HTTPS, except a loopback R without a CA (plain HTTP, as airlock's own
 * client allows) or when `plainHttp` is set.
 */
export function planMirrors(
  references: readonly Reference[],
  registry: string,
  opts: { plainHttp?: boolean | undefined; caFile?: string | undefined; keepHost?: boolean | undefined; sources?: readonly string[] | undefined } = {},
): MirrorPlan {
  const explicit = /^(https?):\/\//i.exec(registry)?.[1]?.toLowerCase();
  const target = parseTarget(registry, { keepHost: opts.keepHost });
  if (explicit === 'http' && opts.caFile !== undefined) {
    throw new UsageError(`a CA file is for HTTPS, but ${registry} says plain HTTP`, { code: 'MIRRORS_INVALID', hint: 'drop http:// or drop the CA file' });
  }
  const scheme = explicit ?? (opts.plainHttp || (isLoopbackHost(target.registry) && opts.caFile === undefined) ? 'http' : 'https');
  if (opts.plainHttp && explicit === 'https') throw new UsageError(`plain HTTP contradicts the https:// of ${registry}`, { code: 'MIRRORS_INVALID' });
  // Refuses what push would refuse: two images landing on one name in R.
  mapAll(references, target);
  const sources = [...new Set([...references.map((r) => r.registry), ...(opts.sources ?? []).map(checkSource)])].sort();
  return { target, endpoint: `${scheme}://${target.registry}`, sources };
}

/** A source registry named directly (`--source`), as image references spell it. */
function checkSource(source: string): string {
  const host = source.replace(/^https?:\/\//i, '').replace(/\/+$/, '');
  if (!isValidRegistry(host)) throw new UsageError(`invalid source registry "${source}": expected HOST[:PORT]`, { code: 'MIRRORS_INVALID', hint: 'e.g. --source docker.io --source registry.example.com:5000' });
  return ['index.docker.io', 'registry-1.docker.io'].includes(host) ? DOCKER_HUB : host;
}

/**
 * k3s/RKE2 `registries.yaml` (docs.k3s.io/installation/private-registry). Written by hand rather
 * than by a YAML library so every host, URL and pattern is double-quoted as in the k3s docs
 * (JSON strings are valid YAML double-quoted scalars).
 */
export function k3sRegistriesYaml(plan: MirrorPlan, opts: { caFile?: string } = {}): string {
  const q = (s: string): string => JSON.stringify(s);
  const lines = [`# Written by airlock mirrors-config: nodes pull these registries' images from ${formatTarget(plan.target)}.`, 'mirrors:'];
  for (const source of plan.sources) {
    lines.push(`  ${q(source)}:`, '    endpoint:', `      - ${q(plan.endpoint)}`);
    const prefix = pathPrefixFor(source, plan.target);
    if (prefix) lines.push('    rewrite:', `      ${q('^(.*)$')}: ${q(`${prefix}/$1`)}`);
  }
  if (opts.caFile !== undefined) lines.push('configs:', `  ${q(plan.target.registry)}:`, '    tls:', `      ca_file: ${q(opts.caFile)}`);
  return `${lines.join('\n')}\n`;
}

/** containerd `certs.d` files, relative to the certs.d directory. */
export function containerdHostsFiles(plan: MirrorPlan, opts: { caFile?: string } = {}): { path: string; text: string }[] {
  const q = (s: string): string => JSON.stringify(s);
  return plan.sources.map((source) => {
    // Under a prefix (or the source host kept), the host is the registry's API root for this source.
    const prefix = pathPrefixFor(source, plan.target);
    const host = prefix ? `${plan.endpoint}/v2/${prefix}` : plan.endpoint;
    const lines = [
      `# Written by airlock mirrors-config: ${source} images are pulled from ${plan.endpoint}.`,
      `# server is ${plan.endpoint} too, so nodes never fall back to ${source} itself.`,
      `server = ${q(plan.endpoint)}`,
      ...(opts.caFile !== undefined ? [`ca = ${q(HOSTS_CA_FILE)}`] : []),
      '',
      `[host.${q(host)}]`,
      '  capabilities = ["pull", "resolve"]',
      ...(prefix ? ['  override_path = true'] : []),
      ...(opts.caFile !== undefined ? [`  ca = ${q(HOSTS_CA_FILE)}`] : []),
      '',
    ];
    return { path: join(hostDirName(source), 'hosts.toml'), text: lines.join('\n') };
  });
}

/** containerd looks up `docker.io` for Docker Hub images; other hosts by host[:port]. */
function hostDirName(source: string): string {
  return source === DOCKER_HUB ? 'docker.io' : source;
}

export interface MirrorsConfigOptions {
  bundles: readonly string[];
  registry: string;
  format: MirrorsFormat;
  caFile?: string | undefined;
  plainHttp?: boolean | undefined;
  /** Images are under their source host in R (`R/P/<host>/<path>`, as `airlock push --keep-host` puts them). */
  keepHost?: boolean | undefined;
  /** Registries (HOST[:PORT]) mirrored besides the bundles' (all of them when there is no bundle: a capture's upstreams). */
  sources?: readonly string[] | undefined;
  /** k3s: a file, or a directory to hold registries.yaml; containerd: the certs.d directory. Unset (k3s only): return the text. */
  out?: string | undefined;
}

export interface MirrorsConfigResult {
  format: MirrorsFormat;
  target: string;
  endpoint: string;
  sources: string[];
  /** Files written (absolute); empty when the text was returned instead. */
  files: string[];
  /** registries.yaml when no `out` was given. */
  text?: string | undefined;
}

export async function mirrorsConfig(opts: MirrorsConfigOptions): Promise<MirrorsConfigResult> {
  if (!MIRRORS_FORMATS.includes(opts.format)) {
    throw new UsageError(`unknown mirrors format "${opts.format}"`, { code: 'FORMAT_INVALID', hint: `formats: ${MIRRORS_FORMATS.join(', ')}` });
  }
  if (opts.bundles.length === 0 && (opts.sources ?? []).length === 0) {
    throw new UsageError('nothing to mirror: no bundle and no source registry given', { code: 'MIRRORS_INVALID', hint: 'name a bundle, or the registries to mirror with --source HOST[:PORT]' });
  }
  const refs: Reference[] = [];
  for (const b of opts.bundles) for (const img of (await inspectBundle(b)).images) refs.push(parseReference(img.reference));
  const caFile = opts.caFile === undefined ? undefined : resolve(opts.caFile);
  const plan = planMirrors(refs, opts.registry, { plainHttp: opts.plainHttp, caFile, keepHost: opts.keepHost, sources: opts.sources });
  const base = { format: opts.format, target: formatTarget(plan.target), endpoint: plan.endpoint, sources: plan.sources };

  if (opts.format === 'k3s') {
    const text = k3sRegistriesYaml(plan, { caFile });
    if (opts.out === undefined) return { ...base, files: [], text };
    const out = resolve(opts.out);
    const file = (await isDirectory(out)) || opts.out.endsWith('/') ? join(out, 'registries.yaml') : out;
    await writeFileAtomic(file, text, { mkdir: true });
    return { ...base, files: [file] };
  }

  const files = containerdHostsFiles(plan, { caFile });
  if (opts.out === undefined) {
    throw new UsageError('containerd mirrors are a directory tree: give an output directory (e.g. /etc/containerd/certs.d)', { code: 'MIRRORS_INVALID' });
  }
  const ca = caFile === undefined ? undefined : await readCa(caFile);
  const root = resolve(opts.out);
  const entries: { path: string; data: string | Buffer }[] = [];
  for (const f of files) {
    const path = join(root, f.path);
    if (ca !== undefined) entries.push({ path: join(dirname(path), HOSTS_CA_FILE), data: ca });
    entries.push({ path, data: f.text });
  }
  // The tree appears whole: a node never reads hosts.toml without the CA it names.
  await writeFilesAtomic(entries, { mkdir: true });
  return { ...base, files: entries.map((e) => e.path) };
}

async function readCa(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`CA file ${path} does not exist`, { code: 'CA_NOT_FOUND', cause: e });
    throw new UsageError(`cannot read CA file ${path}: ${(e as Error).message}`, { code: 'CA_UNREADABLE', cause: e });
  }
}

async function isDirectory(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
