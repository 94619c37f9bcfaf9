// Load a chart (directory or .tgz) with its subcharts (charts/*, directories or .tgz, nested to
// any depth) as discovery needs it: Chart.yaml metadata and the default values. Templates are
// helm's business; this only feeds the values scan and the annotation lists.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { NotFoundError, UsageError } from '../core/errors.ts';
import { MAX_CHART_BYTES, readChartTgz, type ChartFile } from '../helm/chart-tgz.ts';
import type { ChartDependency, ChartNode } from './chart-values.ts';
import { yamlValue } from '../util/yaml.ts';

interface FileSource {
  read(rel: string): Promise<Buffer | undefined>;
  /** Entries directly inside `rel` (`''` = the chart root). */
  list(rel: string): Promise<{ name: string; dir: boolean }[]>;
  describe(rel: string): string;
}

function dirSource(root: string): FileSource {
  return {
    async read(rel) {
      try {
        return await readFile(join(root, rel));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
        throw e;
      }
    },
    async list(rel) {
      try {
        const entries = await readdir(join(root, rel), { withFileTypes: true });
        return entries.map((e) => ({ name: e.name, dir: e.isDirectory() }));
      } catch {
        return [];
      }
    },
    describe: (rel) => join(root, rel),
  };
}

function archiveSource(files: readonly ChartFile[], root: string, what: string): FileSource {
  const byPath = new Map(files.map((f) => [f.path, f.data]));
  return {
    read: async (rel) => byPath.get(rel),
    async list(rel) {
      const base = rel === '' ? '' : `${rel}/`;
      const seen = new Map<string, boolean>();
      for (const p of byPath.keys()) {
        if (!p.startsWith(base)) continue;
        const rest = p.slice(base.length);
        const slash = rest.indexOf('/');
        const name = slash < 0 ? rest : rest.slice(0, slash);
        if (name !== '') seen.set(name, (seen.get(name) ?? false) || slash >= 0);
      }
      return [...seen].map(([name, dir]) => ({ name, dir }));
    },
    describe: (rel) => `${what}:${root}/${rel}`,
  };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

function parseDependencies(list: unknown): ChartDependency[] {
  if (!Array.isArray(list)) return [];
  const out: ChartDependency[] = [];
  for (const d of list) {
    if (typeof d !== 'object' || d === null) continue;
    const o = d as Record<string, unknown>;
    const name = str(o.name);
    if (!name) continue;
    const dep: ChartDependency = { name };
    const alias = str(o.alias);
    const condition = str(o.condition);
    if (alias) dep.alias = alias;
    if (condition) dep.condition = condition;
    if (Array.isArray(o.tags)) dep.tags = o.tags.filter((t): t is string => typeof t === 'string');
    out.push(dep);
  }
  return out;
}

/** Values files as helm reads them: YAML 1.1 (merge keys, `1.10` is a number), a later duplicate key wins. */
export function parseValuesText(text: string, what: string): Record<string, unknown> {
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: false, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new UsageError(`${what} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, {
      code: 'VALUES_INVALID',
      hint: 'fix the YAML (helm needs a mapping of keys to values)',
    });
  }
  const v: unknown = yamlValue(doc, what, 'VALUES_INVALID', 1000);
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw new UsageError(`${what} must be a YAML mapping of keys to values, not a ${Array.isArray(v) ? 'list' : typeof v}`, { code: 'VALUES_INVALID' });
  }
  return v as Record<string, unknown>;
}

const MAX_TEMPLATE_BYTES = 1024 * 1024;
const MAX_TEMPLATES = 2000;

/** The chart's templates as text (only to read which switch guards which line; helm renders them). */
async function loadTemplates(src: FileSource, at: (p: string) => string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let count = 0;
  const walk = async (rel: string, depth: number): Promise<void> => {
    if (depth > 8) return;
    const entries = (await src.list(at(rel))).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = `${rel}/${e.name}`;
      if (e.dir) await walk(p, depth + 1);
      else if (count < MAX_TEMPLATES) {
        const data = await src.read(at(p));
        if (data && data.length <= MAX_TEMPLATE_BYTES) {
          out[p] = data.toString('utf8');
          count++;
        }
      }
    }
  };
  await walk('templates', 0);
  return out;
}

async function loadFrom(src: FileSource, rel: string, warnings: string[], depth: number): Promise<ChartNode> {
  const at = (p: string): string => (rel === '' ? p : `${rel}/${p}`);
  const chartYaml = await src.read(at('Chart.yaml'));
  if (!chartYaml) throw new UsageError(`${src.describe(rel)} is not a chart: it has no Chart.yaml`, { code: 'CHART_INVALID' });
  // failsafe: every scalar a string, so `appVersion: 1.10` stays "1.10" as helm reads it
  const doc = parseDocument(chartYaml.toString('utf8'), { schema: 'failsafe', uniqueKeys: false, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new UsageError(`${src.describe(at('Chart.yaml'))} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, { code: 'CHART_INVALID' });
  }
  const meta = (yamlValue(doc, src.describe(at('Chart.yaml')), 'CHART_INVALID') ?? {}) as Record<string, unknown>;
  const name = str(meta.name);
  if (!name) throw new UsageError(`${src.describe(at('Chart.yaml'))} has no name`, { code: 'CHART_INVALID' });

  let dependencies = parseDependencies(meta.dependencies);
  if (dependencies.length === 0) {
    const req = await src.read(at('requirements.yaml'));
    if (req) {
      const r = parseDocument(req.toString('utf8'), { schema: 'failsafe', uniqueKeys: false });
      if (r.errors.length === 0) dependencies = parseDependencies((yamlValue(r, src.describe(at('requirements.yaml')), 'CHART_INVALID') as Record<string, unknown> | null)?.dependencies);
    }
  }

  let defaults: Record<string, unknown> = {};
  const valuesYaml = await src.read(at('values.yaml'));
  if (valuesYaml) {
    try {
      defaults = parseValuesText(valuesYaml.toString('utf8'), `${src.describe(at('values.yaml'))}`);
    } catch (e) {
      warnings.push(`${(e as Error).message}; its values were not scanned`);
    }
  }

  const subcharts: ChartNode[] = [];
  if (depth < 16) {
    const entries = (await src.list(at('charts'))).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const subRel = at(`charts/${e.name}`);
      if (e.dir) {
        if (await src.read(`${subRel}/Chart.yaml`)) subcharts.push(await loadFrom(src, subRel, warnings, depth + 1));
      } else if (/\.tgz$|\.tar\.gz$/.test(e.name)) {
        const bytes = await src.read(subRel);
        if (!bytes) continue;
        const { root, files } = readChartTgz(bytes, src.describe(subRel));
        subcharts.push(await loadFrom(archiveSource(files, root, src.describe(subRel)), '', warnings, depth + 1));
      }
    }
  }

  const node: ChartNode = {
    name,
    annotations: typeof meta.annotations === 'object' && meta.annotations !== null ? (meta.annotations as Record<string, unknown>) : {},
    dependencies,
    defaults,
    subcharts,
    templates: await loadTemplates(src, at),
    source: src.describe(rel),
  };
  const version = str(meta.version);
  const appVersion = str(meta.appVersion);
  if (version) node.version = version;
  if (appVersion) node.appVersion = appVersion;
  return node;
}

/** Load a chart directory or packaged .tgz with all its subcharts. */
export async function loadChartTree(path: string): Promise<{ chart: ChartNode; warnings: string[] }> {
  const warnings: string[] = [];
  let s;
  try {
    s = await stat(path);
  } catch {
    throw new NotFoundError(`chart ${path} does not exist`, { code: 'CHART_NOT_FOUND' });
  }
  if (s.isDirectory()) return { chart: await loadFrom(dirSource(path), '', warnings, 0), warnings };
  if (s.size > MAX_CHART_BYTES) throw new UsageError(`chart archive ${path} is larger than ${MAX_CHART_BYTES} bytes`, { code: 'CHART_INVALID' });
  const { root, files } = readChartTgz(await readFile(path), path);
  if (!files.some((f) => f.path === 'Chart.yaml')) throw new UsageError(`${path} holds no <chart>/Chart.yaml: not a packaged chart`, { code: 'CHART_INVALID' });
  return { chart: await loadFrom(archiveSource(files, root, path), '', warnings, 0), warnings };
}
