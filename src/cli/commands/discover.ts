import { existsSync, readFileSync, statSync } from 'node:fs';
import { ExitCode, UsageError } from '../../core/errors.ts';
import { discover, type DiscoverReport, type Finding, type RemoteCheck } from '../../api/discover.ts';
import { registryOptions, registryUsage, sessionFrom } from './registry-flags.ts';
import { renderOptionsOf, renderOptions } from './render-flags.ts';
import { count } from '../output.ts';
import { defineCommand } from './types.ts';
import { switchFlags } from '../../discover/switches.ts';
import { preprocessOptionalValues } from '../registry-args.ts';

const DEFAULT_SPEC = 'airlock.yaml';

/** `--write` may stand alone; a following `*.yaml` that is not a manifest is its file. */
function looksLikeSpecTarget(arg: string): boolean {
  if (!/\.ya?ml$/i.test(arg)) return false;
  try {
    if (!statSync(arg).isFile()) return false;
  } catch {
    return true; // a file that does not exist yet: the spec to create
  }
  try {
    return /^apiVersion:\s*["']?airlock\.dev\//m.test(readFileSync(arg, 'utf8').slice(0, 64 * 1024));
  } catch {
    return false;
  }
}

export function preprocessDiscoverArgs(args: string[]): string[] {
  // No file named after --write: the spec (--spec, default ./airlock.yaml).
  return preprocessOptionalValues(args, new Set(['--write']), (_flag, next) => (next !== undefined && !next.startsWith('-') && looksLikeSpecTarget(next) ? next : undefined), () => '');
}

/** One image a line; a comment after a tab marks optional ones (with the switch) and failed remote checks. */
function human(result: DiscoverReport, checks: Map<string, RemoteCheck> | undefined): string {
  return result.images
    .map((f) => {
      const c = checks?.get(f.reference);
      const notes: string[] = [];
      if (f.optional) {
        const on = switchFlags(f.optional);
        notes.push(on.length === 0 ? 'optional' : `optional: ${on.join(' ')}`);
      }
      if (c && c.status !== 'found') notes.push(c.status);
      return notes.length > 0 ? `${f.reference}\t# ${notes.join('; ')}` : f.reference;
    })
    .join('\n');
}

function jsonImage(f: Finding, check: RemoteCheck | undefined): Record<string, unknown> {
  return {
    reference: f.reference,
    reasons: f.reasons,
    ...(f.optional ? { optional: f.optional } : {}),
    ...(check ? { remote: { status: check.status, ...(check.digest ? { digest: check.digest } : {}), ...(check.message ? { message: check.message } : {}) } } : {}),
  };
}

export const discoverCommand = defineCommand({
  name: 'discover',
  summary: 'list every image charts, kustomize dirs and manifests need, with the reasons',
  usage: `Usage: airlock discover CHART|DIR|FILE... [-f values.yaml]... [--set k=v]... [--json] [--write [airlock.yaml]]
       airlock discover [--spec airlock.yaml] [--write]   (the spec's charts with a local path, with their values)

Renders charts with helm (hooks, test pods, subcharts and CRDs included), builds kustomize
directories with \`kubectl kustomize\`, reads plain manifests (multi-document YAML, List kinds), and
prints the images they need: one fully qualified reference per line, sorted. Images are found in pod
specs of every kind (init, ephemeral containers; custom resources embedding pod templates), image
fields of custom resources, container args/command/env and ConfigMaps (the images operators start
later), chart annotations (helm.sh/images, artifacthub.io/images, images) and the chart's values.
Works offline; helm and kubectl never reach the network.

Options:
  -f, --values FILE         chart values (repeatable, like helm)
      --set K=V             set a chart value (repeatable, like helm)
      --set-string K=V      set a chart value as a string (repeatable)
      --kube-version V      Kubernetes version for Capabilities.KubeVersion
  -n, --namespace N         namespace to render into (default: default)
      --release-name NAME   release name to render with, as helm template's NAME (default: release-name)
  -a, --api-versions X      extra API versions for Capabilities.APIVersions (repeatable)
      --include-optional    also list images of components switched off by default (found by
                            rendering again with every switch on, and with the other values of
                            string modes such as expose.type), each marked \`# optional: --set
                            KEY=true\` (or KEY=VALUE) with the values key that switches it on
      --verify-remote       confirm each image exists with one manifest HEAD (opens connections)
      --write [FILE]        add new images to the spec (default ./airlock.yaml), each with a comment
                            saying why; entries and comments already there are kept
      --spec FILE           with no CHART|DIR|FILE: discover the charts this spec lists (default ./airlock.yaml)
      --helm PATH           the helm binary (default $AIRLOCK_HELM, else helm on PATH)
      --kubectl PATH        the kubectl binary for kustomize dirs (default $AIRLOCK_KUBECTL,
                            kubectl beside --helm, else on PATH)
      --json                {"images":[{reference, reasons:[{source, resource, path, chart}],
                            optional?: {valuesPath, switches?, hint}}]}
${registryUsage}`,
  options: {
    ...renderOptions,
    'include-optional': { type: 'boolean', default: false },
    'release-name': { type: 'string' },
    'verify-remote': { type: 'boolean', default: false },
    write: { type: 'string' },
    spec: { type: 'string' },
    ...registryOptions,
  },
  preprocessArgs: preprocessDiscoverArgs,
  async run({ values, positionals, out, signal }) {
    const specPath = typeof values.spec === 'string' ? values.spec : DEFAULT_SPEC;
    const fromSpec = positionals.length === 0;
    if (fromSpec && !existsSync(specPath)) {
      throw new UsageError('discover needs at least one chart, kustomize directory or manifest file', {
        hint: `e.g. airlock discover ./charts/shop -f values-airgap.yaml (or list charts in ${specPath})`,
      });
    }
    if (fromSpec) out.info(`discovering the charts ${specPath} lists`);
    const verifyRemote = values['verify-remote'] === true;
    await using session = verifyRemote ? sessionFrom(values, out) : undefined;
    const result = await discover(positionals, {
      ...renderOptionsOf(values),
      ...(typeof values['release-name'] === 'string' ? { releaseName: values['release-name'] } : {}),
      spec: specPath,
      includeOptional: values['include-optional'] === true,
      verifyRemote,
      ...(typeof values.write === 'string' ? { writeSpec: values.write === '' ? specPath : values.write } : {}),
      session,
      signal,
      onEvent: (e) => {
        if (e.type === 'phase') out.info(`checking ${count(e.total, 'image')} in their registries`);
        // Not writing the spec is the answer to --write, not a fault.
        else if (e.code === 'SPEC_NOT_WRITTEN') out.info(e.message);
        else out.warning(e);
      },
    });
    if (result.images.length === 0 && result.hiddenOptional === 0) out.info('no images found');
    for (const w of result.warnings) out.info(`warning: ${w}`);

    const checks = result.remote ? new Map(result.remote.map((c) => [c.reference, c])) : undefined;
    let exit: number = ExitCode.ok;
    if (result.remote) {
      for (const c of result.remote) {
        if (c.status !== 'found') out.info(`${c.status === 'missing' ? 'not found' : 'not confirmed'}: ${c.reference}: ${c.message ?? ''}`);
      }
      const statuses = result.remote.map((c) => c.status);
      if (statuses.includes('missing')) exit = ExitCode.notFound;
      else if (statuses.includes('error')) exit = ExitCode.network;
    }
    const written = result.spec;

    for (const f of result.images) {
      if (f.optional) out.info(`optional: ${f.reference}: ${f.optional.hint}`);
    }
    if (result.hiddenOptional > 0) {
      out.info(`${count(result.hiddenOptional, 'optional image')} not listed: nothing renders them with these values (--include-optional lists them)`);
    }
    if (written) {
      out.info(
        written.written
          ? `${written.created ? 'created' : 'updated'} ${written.path}: ${count(written.added.length, 'image')} added${written.alreadyPresent.length ? `, ${written.alreadyPresent.length} already there` : ''}`
          : `${written.path} already lists every discovered image; not changed`,
      );
    }
    out.result(
      {
        images: result.images.map((f) => jsonImage(f, checks?.get(f.reference))),
        hiddenOptional: result.hiddenOptional,
        charts: result.charts,
        warnings: result.warnings,
        ...(written ? { spec: { path: written.path, added: written.added, created: written.created, written: written.written } } : {}),
      },
      human(result, checks),
    );
    return exit;
  },
});
