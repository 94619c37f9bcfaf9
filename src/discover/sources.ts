// Where rendered objects come from (impure): a chart rendered by the real helm, a kustomize
// directory built by `kubectl kustomize`, plain manifest files and directories; loadInputs is the
// one pipeline discover, audit and netpol read their inputs through (rewrite shares its values and
// render options). Nothing here touches the network: helm and kubectl run behind the offline
// runner seam.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { AirlockError, NotFoundError, throwIfAborted, UsageError } from '../core/errors.ts';
import { runHelm, runKubectl } from '../helm/helm-runner.ts';
import { parseValuesText } from './chart-tree.ts';
import { applySet, mergeValues } from './set-values.ts';
import type { Manifest } from './types.ts';
import { yamlValue } from '../util/yaml.ts';

export type InputKind = 'chart' | 'kustomize' | 'manifests';

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const MANIFEST_EXT = /\.(ya?ml|json)$/i;
const MAX_MANIFEST_FILE = 64 * 1024 * 1024;
const MAX_FILES = 20_000;

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

/** What an input path is: a chart (dir with Chart.yaml, or .tgz), a kustomize dir, or manifests. */
async function classifyInput(path: string): Promise<InputKind> {
  if (/^(oci|https?):\/\//.test(path)) {
    throw new UsageError(`discover works on local files, not "${path}"`, {
      code: 'INPUT_REMOTE',
      hint: 'fetch the chart first (`helm pull --untar ...` on a connected machine) and pass its directory or .tgz',
    });
  }
  const s = await statOrUndefined(path);
  if (!s) throw new NotFoundError(`${path} does not exist`, { code: 'INPUT_NOT_FOUND', hint: 'pass a chart directory or .tgz, a kustomize directory, or manifest files/directories' });
  if (s.isFile()) return /\.(tgz|tar\.gz)$/i.test(path) ? 'chart' : 'manifests';
  if (!s.isDirectory()) throw new UsageError(`${path} is neither a file nor a directory`, { code: 'INPUT_INVALID' });
  if ((await statOrUndefined(join(path, 'Chart.yaml')))?.isFile()) return 'chart';
  for (const k of KUSTOMIZATION_FILES) if ((await statOrUndefined(join(path, k)))?.isFile()) return 'kustomize';
  return 'manifests';
}

function sourceOf(doc: { commentBefore?: string | null; contents?: unknown }): string | undefined {
  const comments = [doc.commentBefore ?? '', (doc.contents as { commentBefore?: string | null } | null)?.commentBefore ?? ''].join('\n');
  return /Source:\s*(\S+)/.exec(comments)?.[1];
}

/**
 * Split a multi-document YAML stream into objects. `origin` names the stream in errors and is each
 * document's origin unless `useSourceComments` (helm's `# Source: chart/templates/x.yaml`) says more.
 */
export function parseManifestStream(text: string, origin: string, useSourceComments = false): Manifest[] {
  const docs = parseAllDocuments(text, { uniqueKeys: false, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: Manifest[] = [];
  for (const d of list) {
    if (d.errors.length > 0) {
      const first = d.errors[0]!;
      const templated = /\{\{/.test(text) ? '; it looks like a helm template: pass the chart directory instead' : '';
      throw new UsageError(`${origin} is not valid YAML: ${first.message.split('\n')[0]}${templated}`, { code: 'YAML_INVALID' });
    }
    const object: unknown = yamlValue(d, origin, 'YAML_INVALID', 1000);
    if (object === null || object === undefined) continue;
    const src = useSourceComments ? sourceOf(d) : undefined;
    out.push({ object, origin: src ?? origin });
  }
  return out;
}

/** helm's output split at its `---` document markers (text only, for comparing two renders). */
function splitDocuments(text: string): string[] {
  return text.split(/^---[ \t]*$/m).map((d) => d.trim()).filter((d) => d !== '');
}

export interface ChartRenderOptions {
  valuesFiles: string[];
  set: string[];
  setString: string[];
  kubeVersion?: string | undefined;
  namespace?: string | undefined;
  /** helm template's release name (helm's own default: `release-name`). */
  releaseName?: string | undefined;
  apiVersions: string[];
  helm?: string | undefined;
  cwd?: string | undefined;
  signal?: AbortSignal | undefined;
  /** How to name the chart and values files in messages (as the user wrote them). */
  chartLabel?: string | undefined;
  valuesLabels?: string[] | undefined;
}

function describeChart(path: string, o: ChartRenderOptions): string {
  const parts = [`chart ${o.chartLabel ?? path}`];
  const values = o.valuesLabels ?? o.valuesFiles;
  if (values.length > 0) parts.push(`with values ${values.join(', ')}`);
  const sets = [...o.set.map((s) => `--set ${s}`), ...o.setString.map((s) => `--set-string ${s}`)];
  if (sets.length > 0) parts.push(`${values.length > 0 ? 'and' : 'with'} ${sets.join(' ')}`);
  return parts.join(' ');
}

function templateArgs(path: string, o: ChartRenderOptions): string[] {
  const args = o.releaseName ? ['template', o.releaseName, path, '--include-crds'] : ['template', path, '--include-crds'];
  for (const f of o.valuesFiles) args.push('--values', f);
  for (const s of o.set) args.push('--set', s);
  for (const s of o.setString) args.push('--set-string', s);
  if (o.kubeVersion) args.push('--kube-version', o.kubeVersion);
  if (o.namespace) args.push('--namespace', o.namespace);
  for (const a of o.apiVersions) args.push('--api-versions', a);
  return args;
}

/**
 * Render a chart with the real helm: every document including hooks and test pods (helm template
 * prints both), CRDs, subcharts with the parent's values. A second render as an upgrade catches
 * templates that exist only on upgrade; if only that one fails, a warning says so.
 */
export async function renderChart(path: string, o: ChartRenderOptions): Promise<{ manifests: Manifest[]; warnings: string[] }> {
  const what = describeChart(path, o);
  const run = (extra: string[]) =>
    runHelm([...templateArgs(path, o), ...extra], { helm: o.helm, cwd: o.cwd, signal: o.signal, what });
  const [install, upgrade] = await Promise.allSettled([run([]), run(['--is-upgrade'])]);
  if (install.status === 'rejected') throw install.reason;
  const manifests = parseManifestStream(install.value.stdout, `helm template output for ${what}`, true);
  const warnings: string[] = [];
  if (upgrade.status === 'fulfilled') {
    // Only documents the upgrade renders differently are new; parsing the rest again is wasted time.
    const seen = new Set(splitDocuments(install.value.stdout));
    const extra = splitDocuments(upgrade.value.stdout).filter((d) => !seen.has(d));
    if (extra.length > 0) manifests.push(...parseManifestStream(`---\n${extra.join('\n---\n')}\n`, `helm template --is-upgrade output for ${what}`, true));
  } else {
    warnings.push(`${what}: rendering as an upgrade failed (${helmFailureReason(upgrade.reason)}); images only an upgrade uses may be missing`);
  }
  return { manifests, warnings };
}

/**
 * helm's own reason from a failed render: its `Error: ...` line and the lines that continue it
 * (charts spread a `required`/`fail` message over several), not the wrapper's first line.
 */
export function helmFailureReason(error: unknown): string {
  const text = String((error as Error)?.message ?? error);
  const lines = text.split('\n').map((l) => l.trim());
  const at = lines.findIndex((l) => /^Error:/.test(l));
  if (at < 0) return lines.find((l) => /error/i.test(l)) ?? lines[0] ?? 'failed';
  const parts: string[] = [];
  for (const l of lines.slice(at)) {
    if (/^Use --debug/.test(l)) break;
    // a blank line ends the message, unless it only separates `...):` from the message itself
    if (l === '') {
      if (parts.length > 0 && !parts[parts.length - 1]!.endsWith(':')) break;
      continue;
    }
    parts.push(l);
  }
  const reason = parts.join(' ').replace(/^Error:\s*/, '').replace(/\s+/g, ' ').trim();
  return reason.length > 600 ? `${reason.slice(0, 597)}...` : reason;
}

const defaultKubeVersions = new Map<string, Promise<string | undefined>>();

/**
 * The Kubernetes version helm renders with when no --kube-version is given (its
 * `.Capabilities.KubeVersion`, built into helm): read by rendering a one-line chart, once per helm.
 * Undefined when helm does not say.
 */
export function helmDefaultKubeVersion(o: { helm?: string | undefined; signal?: AbortSignal | undefined }): Promise<string | undefined> {
  const key = o.helm ?? '';
  let known = defaultKubeVersions.get(key);
  if (known === undefined) {
    known = (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'airlock-kube-version-'));
      try {
        await mkdir(join(dir, 'templates'));
        await writeFile(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: kube-version\nversion: 0.1.0\n');
        await writeFile(join(dir, 'templates', 'v.yaml'), 'version: {{ .Capabilities.KubeVersion.Version | quote }}\n');
        const { stdout } = await runHelm(['template', dir], { helm: o.helm, signal: o.signal, what: "helm's default Kubernetes version" });
        return /^version: "(v?\d+\.\d+\.\d+)"$/m.exec(stdout)?.[1];
      } catch {
        return undefined;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    })();
    defaultKubeVersions.set(key, known);
  }
  return known;
}

/** One install-mode render with more values files after the user's (an overlay of switches). */
export async function renderChartWith(path: string, o: ChartRenderOptions, extraValuesFiles: string[]): Promise<Manifest[]> {
  const what = describeChart(path, o);
  const { stdout } = await runHelm(templateArgs(path, { ...o, valuesFiles: [...o.valuesFiles, ...extraValuesFiles] }), {
    helm: o.helm,
    cwd: o.cwd,
    signal: o.signal,
    what: `${what} with its switches on`,
  });
  return parseManifestStream(stdout, `helm template output for ${what} with its switches on`, true);
}

/** `kubectl kustomize DIR`, offline (remote bases fail with a clear message). */
async function buildKustomize(dir: string, o: { kubectl?: string | undefined; helm?: string | undefined; cwd?: string | undefined; signal?: AbortSignal | undefined }): Promise<Manifest[]> {
  const { stdout } = await runKubectl(['kustomize', dir], { kubectl: o.kubectl, helm: o.helm, cwd: o.cwd, signal: o.signal, what: `kustomize directory ${dir}` });
  return parseManifestStream(stdout, `kustomize ${dir}`);
}

function isK8sObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>).kind === 'string';
}

export interface LoadProblem {
  /** The file (as shown to the user). */
  file: string;
  /** `document 2` */
  where: string;
  message: string;
}

/** Documents of one file; the ones that do not parse become problems. */
function parseTolerant(text: string, file: string): { manifests: Manifest[]; problems: LoadProblem[] } {
  try {
    return { manifests: parseManifestStream(text, file).filter((m) => isK8sObject(m.object)), problems: [] };
  } catch (e) {
    if (!(e instanceof AirlockError)) throw e;
  }
  const manifests: Manifest[] = [];
  const problems: LoadProblem[] = [];
  const chunks = text.split(/^---[^\n]*$/m);
  let n = 0;
  for (const chunk of chunks) {
    if (chunk.trim() === '' || /^(\s*#[^\n]*\n?)*\s*$/.test(chunk)) continue;
    n++;
    try {
      manifests.push(...parseManifestStream(chunk, `${file} document ${n}`).filter((m) => isK8sObject(m.object)).map((m) => ({ ...m, origin: file })));
    } catch (e) {
      if (!(e instanceof AirlockError)) throw e;
      const message = e.message.replace(`${file} document ${n} is `, '').replace(/; it looks like a helm template.*$/, '');
      problems.push({ file, where: `document ${n}`, message: /\{\{/.test(chunk) ? `${message} (a helm template: pass the chart directory instead)` : message });
    }
  }
  return { manifests, problems };
}

/**
 * Manifest files: a file, or every *.yaml/*.yml/*.json below a directory (hidden entries skipped).
 * Charts and kustomize directories met on the way are returned separately, to be rendered.
 * `tolerant`: a file too large or a document that does not parse is a problem, not an error.
 */
async function readManifests(
  path: string,
  display: (p: string) => string,
  tolerant: boolean,
): Promise<{ manifests: Manifest[]; problems: LoadProblem[]; nested: { kind: 'chart' | 'kustomize'; path: string }[] }> {
  const manifests: Manifest[] = [];
  const problems: LoadProblem[] = [];
  const nested: { kind: 'chart' | 'kustomize'; path: string }[] = [];
  let files = 0;
  const readFileInto = async (file: string): Promise<void> => {
    const s = await stat(file);
    if (s.size > MAX_MANIFEST_FILE) {
      if (!tolerant) throw new UsageError(`${display(file)} is larger than ${MAX_MANIFEST_FILE} bytes`, { code: 'INPUT_TOO_LARGE' });
      problems.push({ file: display(file), where: 'file', message: `larger than ${MAX_MANIFEST_FILE} bytes; not read` });
      return;
    }
    const text = await readFile(file, 'utf8');
    if (tolerant) {
      const r = parseTolerant(text, display(file));
      manifests.push(...r.manifests);
      problems.push(...r.problems);
    } else {
      manifests.push(...parseManifestStream(text, display(file)).filter((d) => isK8sObject(d.object)));
    }
  };
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (depth >= 16) continue;
        const kind = await classifyInput(p);
        if (kind === 'manifests') await walk(p, depth + 1);
        else nested.push({ kind, path: p });
      } else if (e.isFile() && MANIFEST_EXT.test(e.name)) {
        if (++files > MAX_FILES) throw new UsageError(`${display(path)} holds more than ${MAX_FILES} manifest files`, { code: 'INPUT_INVALID' });
        await readFileInto(p);
      }
    }
  };
  const s = await stat(path);
  if (s.isDirectory()) await walk(path, 0);
  else await readFileInto(path);
  // Tolerant callers judge emptiness over all inputs together (loadInputs).
  if (!tolerant && manifests.length === 0 && nested.length === 0) {
    throw new UsageError(
      s.isDirectory()
        ? `${display(path)} holds no Kubernetes manifests (no *.yaml, *.yml or *.json file with a kind)`
        : `${display(path)} holds no Kubernetes objects (no YAML document with a kind)`,
      { code: 'NO_MANIFESTS', hint: 'pass a chart directory or .tgz, a kustomize directory, or files with Kubernetes objects' },
    );
  }
  return { manifests, problems, nested };
}

/** helm -f files, --set and --set-string merged the way helm merges them, each file checked first. */
export async function loadUserValues(
  o: { valuesFiles?: string[] | undefined; set?: string[] | undefined; setString?: string[] | undefined },
  cwd: string,
  command: string,
): Promise<Record<string, unknown>> {
  const values: Record<string, unknown> = {};
  for (const f of o.valuesFiles ?? []) {
    if (/^[a-z]+:\/\//.test(f)) {
      throw new UsageError(`values file ${f}: ${command} reads local values files only`, { code: 'VALUES_INVALID', hint: 'download it first and pass the local path' });
    }
    let text: string;
    try {
      text = await readFile(resolve(cwd, f), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`values file ${f} does not exist`, { code: 'VALUES_NOT_FOUND' });
      throw new UsageError(`cannot read values file ${f}: ${(e as Error).message}`, { code: 'VALUES_INVALID', cause: e });
    }
    mergeValues(values, parseValuesText(text, `values file ${f}`));
  }
  for (const s of o.set ?? []) applySet(values, s, false);
  for (const s of o.setString ?? []) applySet(values, s, true);
  return values;
}

/** The helm flags every command shares (-f, --set, --kube-version, ...), as given on the command line. */
export interface RenderInputOptions {
  /** Chart directories or .tgz files, kustomize directories, manifest files or directories. */
  inputs: string[];
  /** helm -f files, in order (apply to every chart input). */
  valuesFiles?: string[];
  set?: string[];
  setString?: string[];
  kubeVersion?: string;
  namespace?: string;
  /** helm template's release name (default `release-name`, as helm's). */
  releaseName?: string;
  apiVersions?: string[];
  helm?: string;
  kubectl?: string;
  /** Base for relative paths and for the paths shown to the user (default process.cwd()). */
  cwd?: string;
  signal?: AbortSignal;
}

/** Render options for helm from the user's flags, values files resolved against `cwd`. */
export function chartRenderOptions(o: Omit<RenderInputOptions, 'inputs'>, cwd: string): ChartRenderOptions {
  if (o.releaseName !== undefined && !/^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$/.test(o.releaseName)) {
    throw new UsageError(`release name "${o.releaseName}" is not one helm accepts`, {
      hint: 'use at most 53 lowercase letters, digits and dashes, starting and ending with a letter or digit (helm default: release-name)',
    });
  }
  return {
    valuesFiles: (o.valuesFiles ?? []).map((f) => resolve(cwd, f)),
    set: o.set ?? [],
    setString: o.setString ?? [],
    kubeVersion: o.kubeVersion,
    namespace: o.namespace,
    releaseName: o.releaseName,
    apiVersions: o.apiVersions ?? [],
    helm: o.helm,
    cwd,
    signal: o.signal,
    valuesLabels: o.valuesFiles ?? [],
  };
}

export interface LoadInputsOptions extends RenderInputOptions {
  /** The command, named in messages: `discover needs at least one chart ...`. */
  command: string;
  /**
   * A manifest file too large or a document that does not parse is a problem to report, not a
   * reason to stop (audit); emptiness is then judged over all inputs together.
   */
  tolerant?: boolean;
}

/** One rendered or read input; a manifest directory's nested charts and kustomize dirs follow it as inputs of their own. */
export interface LoadedInput {
  kind: InputKind;
  /** Absolute path. */
  path: string;
  /** The path as shown to the user. */
  label: string;
  manifests: Manifest[];
  /** helm's render warnings for this input. */
  warnings: string[];
}

export interface LoadedInputs {
  inputs: LoadedInput[];
  /** The user's values (-f, --set, --set-string) merged. */
  values: Record<string, unknown>;
  /** Only with `tolerant`: what could not be read. */
  problems: LoadProblem[];
}

/**
 * Classify, check and render or read every input the way every command does: charts by the real
 * helm (values flags only go with charts), kustomize dirs by kubectl, manifest files and
 * directories parsed here. Offline.
 */
export async function loadInputs(o: LoadInputsOptions): Promise<LoadedInputs> {
  const cwd = o.cwd ?? process.cwd();
  if (o.inputs.length === 0) {
    throw new UsageError(`${o.command} needs at least one chart, kustomize directory or manifest file`, { code: 'INPUTS_MISSING', hint: 'e.g. a chart directory such as ./charts/shop' });
  }
  const kinds = await Promise.all(
    o.inputs.map(async (i) => {
      // URLs are refused by classifyInput as they are, not as a path below cwd
      const path = /^[a-z][a-z0-9+.-]*:\/\//i.test(i) ? i : resolve(cwd, i);
      return { path, kind: await classifyInput(path) };
    }),
  );
  const hasValues = (o.valuesFiles?.length ?? 0) + (o.set?.length ?? 0) + (o.setString?.length ?? 0) > 0;
  if (hasValues && !kinds.some((k) => k.kind === 'chart')) {
    throw new UsageError('values files and set values apply to charts, and no input is a chart', {
      code: 'VALUES_WITHOUT_CHART',
      hint: 'pass a chart directory or .tgz, or leave out the values',
    });
  }
  const values = await loadUserValues(o, cwd, o.command);
  const show = (p: string): string => displayPath(p, cwd);
  const renderOpts = chartRenderOptions(o, cwd);
  const tolerant = o.tolerant ?? false;
  const out: LoadedInputs = { inputs: [], values, problems: [] };

  const doInput = async (path: string, kind: InputKind): Promise<void> => {
    throwIfAborted(o.signal);
    const label = show(path);
    if (kind === 'chart') {
      const { manifests, warnings } = await renderChart(path, { ...renderOpts, chartLabel: label });
      out.inputs.push({ kind, path, label, manifests, warnings });
      return;
    }
    if (kind === 'kustomize') {
      const manifests = await buildKustomize(path, { kubectl: o.kubectl, helm: o.helm, cwd, signal: o.signal });
      out.inputs.push({ kind, path, label, manifests: manifests.filter((m) => isK8sObject(m.object)).map((m) => ({ ...m, origin: label })), warnings: [] });
      return;
    }
    const { manifests, problems, nested } = await readManifests(path, show, tolerant);
    out.inputs.push({ kind, path, label, manifests, warnings: [] });
    out.problems.push(...problems);
    for (const n of nested) await doInput(n.path, n.kind);
  };
  for (const k of kinds) await doInput(k.path, k.kind);
  if (tolerant && out.problems.length === 0 && out.inputs.every((i) => i.manifests.length === 0)) {
    throw new UsageError(`${o.inputs.join(', ')}: no Kubernetes objects found (no YAML or JSON document with a kind)`, {
      code: 'NO_MANIFESTS',
      hint: 'pass a chart directory or .tgz, a kustomize directory, or files with Kubernetes objects',
    });
  }
  return out;
}

/** A short, stable name for an input in reasons and comments: relative to cwd when inside it. */
export function displayPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel === '' ? basename(path) : rel.startsWith('..') ? path : rel;
}
