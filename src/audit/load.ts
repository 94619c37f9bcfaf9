// The rendered objects of charts, kustomize directories and manifest files, read the way
// `airlock discover` reads them (the same helm and kubectl seam, the same parser), except that
// a manifest document that does not parse is a problem to report, not a reason to stop: the
// audit of everything else goes on.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AirlockError, NotFoundError, throwIfAborted, UsageError } from '../core/errors.ts';
import { buildKustomize, classifyInput, displayPath, parseManifestStream, renderChart, type ChartRenderOptions, type InputKind } from '../discover/sources.ts';
import type { Manifest } from '../discover/types.ts';

export interface RenderInputOptions {
  /** Chart directories or .tgz files, kustomize directories, manifest files or directories. */
  inputs: string[];
  valuesFiles?: string[];
  set?: string[];
  setString?: string[];
  kubeVersion?: string;
  namespace?: string;
  apiVersions?: string[];
  helm?: string;
  kubectl?: string;
  /** Base for relative paths and for paths shown in findings (default process.cwd()). */
  cwd?: string;
  signal?: AbortSignal;
}

export interface LoadProblem {
  /** The file (as shown to the user). */
  file: string;
  /** `document 2` */
  where: string;
  message: string;
}

export interface LoadedInputs {
  manifests: Manifest[];
  problems: LoadProblem[];
  warnings: string[];
}

const MANIFEST_EXT = /\.(ya?ml|json)$/i;
const MAX_MANIFEST_FILE = 64 * 1024 * 1024;
const MAX_FILES = 20_000;

function isK8sObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>).kind === 'string';
}

/** Documents of one file; the ones that do not parse become problems. */
export function parseTolerant(text: string, file: string): { manifests: Manifest[]; problems: LoadProblem[] } {
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

/** Render and read every input; unparseable manifest documents come back as problems. */
export async function loadInputs(o: RenderInputOptions): Promise<LoadedInputs> {
  const cwd = o.cwd ?? process.cwd();
  if (o.inputs.length === 0) {
    throw new UsageError('needs at least one chart, kustomize directory or manifest file', { hint: 'e.g. airlock audit ./charts/shop -f values-airgap.yaml' });
  }
  const kinds = await Promise.all(
    o.inputs.map(async (i) => {
      const path = /^[a-z][a-z0-9+.-]*:\/\//i.test(i) ? i : resolve(cwd, i);
      return { path, kind: await classifyInput(path) };
    }),
  );
  const hasValues = (o.valuesFiles?.length ?? 0) + (o.set?.length ?? 0) + (o.setString?.length ?? 0) > 0;
  if (hasValues && !kinds.some((k) => k.kind === 'chart')) {
    throw new UsageError('-f/--set/--set-string apply to charts, and no input is a chart', { hint: 'pass a chart directory or .tgz, or leave out the values flags' });
  }
  for (const f of o.valuesFiles ?? []) {
    try {
      await stat(resolve(cwd, f));
    } catch {
      throw new NotFoundError(`values file ${f} does not exist`, { code: 'VALUES_NOT_FOUND' });
    }
  }
  const show = (p: string): string => displayPath(p, cwd);
  const renderOpts: ChartRenderOptions = {
    valuesFiles: (o.valuesFiles ?? []).map((f) => resolve(cwd, f)),
    set: o.set ?? [],
    setString: o.setString ?? [],
    kubeVersion: o.kubeVersion,
    namespace: o.namespace,
    apiVersions: o.apiVersions ?? [],
    helm: o.helm,
    cwd,
    signal: o.signal,
    valuesLabels: o.valuesFiles ?? [],
  };
  const out: LoadedInputs = { manifests: [], problems: [], warnings: [] };
  let files = 0;

  const readFileInto = async (file: string): Promise<void> => {
    const s = await stat(file);
    if (s.size > MAX_MANIFEST_FILE) {
      out.problems.push({ file: show(file), where: 'file', message: `larger than ${MAX_MANIFEST_FILE} bytes; not read` });
      return;
    }
    const r = parseTolerant(await readFile(file, 'utf8'), show(file));
    out.manifests.push(...r.manifests);
    out.problems.push(...r.problems);
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
        else await doInput(p, kind);
      } else if (e.isFile() && MANIFEST_EXT.test(e.name)) {
        if (++files > MAX_FILES) throw new UsageError(`${show(dir)} holds more than ${MAX_FILES} manifest files`, { code: 'INPUT_INVALID' });
        await readFileInto(p);
      }
    }
  };
  const doInput = async (path: string, kind: InputKind): Promise<void> => {
    throwIfAborted(o.signal);
    if (kind === 'chart') {
      const { manifests, warnings } = await renderChart(path, { ...renderOpts, chartLabel: show(path) });
      out.warnings.push(...warnings);
      // helm names templates `CHARTNAME/templates/x.yaml`: make that a path the user can open.
      const dir = show(path);
      const fromDir = !/\.t(ar\.)?gz$/i.test(path);
      out.manifests.push(...manifests.map((m) => (m.origin && fromDir && m.origin.includes('/') ? { ...m, origin: join(dir, m.origin.slice(m.origin.indexOf('/') + 1)) } : m)));
      return;
    }
    if (kind === 'kustomize') {
      const manifests = await buildKustomize(path, { kubectl: o.kubectl, helm: o.helm, cwd, signal: o.signal });
      out.manifests.push(...manifests.filter((m) => isK8sObject(m.object)).map((m) => ({ ...m, origin: show(path) })));
      return;
    }
    const s = await stat(path);
    if (s.isDirectory()) await walk(path, 0);
    else await readFileInto(path);
  };
  for (const k of kinds) await doInput(k.path, k.kind);
  if (out.manifests.length === 0 && out.problems.length === 0) {
    throw new UsageError(`${o.inputs.join(', ')}: no Kubernetes objects found (no YAML or JSON document with a kind)`, {
      code: 'NO_MANIFESTS',
      hint: 'pass a chart directory or .tgz, a kustomize directory, or files with Kubernetes objects',
    });
  }
  out.warnings = [...new Set(out.warnings)];
  return out;
}
