import { ExitCode, UsageError } from '../../core/errors.ts';
import { rewrite, type RewriteReport } from '../../api/rewrite.ts';
import { chartFlags, renderOptionsOf } from './render-flags.ts';
import { defineCommand } from './types.ts';
import { digestLines } from './digest-lines.ts';

function summary(r: RewriteReport, keepHost: boolean): string[] {
  const lines: string[] = [];
  if (r.globalImageRegistry) lines.push(`the chart honours global.imageRegistry: the overlay sets it to ${r.target}`);
  const done = r.images.filter((i) => i.status === 'redirected').length;
  lines.push(`rendered again with the overlay: ${done} of ${r.images.length} image(s) now point where push put them (${r.target})`);
  for (const n of r.notRedirected) {
    lines.push(
      n.status === 'misdirected'
        ? `misdirected: ${n.resource} ${n.path}: ${n.image} would point at ${n.now?.join(', ') ?? '?'}, not ${n.expected}`
        : `not redirected: ${n.resource} ${n.path}: ${n.image}`,
    );
  }
  if (r.notRedirected.length > 0) {
    lines.push(`values cannot redirect ${r.notRedirected.length} place(s): add the post-renderer, which maps them (see \`airlock post-render --help\`):`);
    lines.push(`  airlock helm-plugin install && helm install NAME CHART -f overlay.yaml --post-renderer airlock-postrender --post-renderer-args --registry=${r.target}${keepHost ? ' --post-renderer-args --keep-host' : ''}`);
  }
  return lines;
}

export const rewriteCommand = defineCommand({
  name: 'rewrite',
  summary: 'write a values overlay that points every image of a chart at your registry, proven by rendering',
  usage: `Usage: airlock rewrite CHART --registry R[/P] [-f values.yaml]... [--set k=v]... [-o overlay.yaml] [--json]

Writes a values overlay that sends every image CHART renders to R[/P], exactly where
\`airlock push BUNDLE R[/P]\` put it (docker.io/library/nginx:1.27 -> R/P/library/nginx:1.27),
using the chart's own knobs:
  global.imageRegistry  set to R/P when the chart honours it: checked by rendering with a probe value
  values paths          where discovery found each image, written in the same shape:
                          {registry, repository, tag, digest}  registry: R, repository: P/path
                          {repository, tag}, {image, tag}      repository (image): R/P/path
                          image: repo:tag[@digest] strings     R/P/path:tag[@digest]
                        tags and digests stay as they are; a list is written whole (helm replaces lists)
Then renders the chart again with your values plus the overlay and proves, place by place, that every
image (pod specs, custom resources, container args/env, ConfigMaps) now points where push put it.
Images values cannot redirect are listed (resource, path, image): the post-renderer maps those
(\`airlock post-render --help\`, \`airlock helm-plugin install\`).

A chart that pins an image by its upstream index digest, which the bundle carries reduced to some
platforms: give --bundle (or --lock) and the overlay points such pins at the reduced index too,
unless the import history records that push stored the upstream index in R[/P] (see post-render --help).

Use the overlay after your own values; --set flags win over -f files, so do not --set its keys:
  helm install NAME CHART -f values.yaml -f overlay.yaml

Exit codes:
  0  every image redirected (proven)
  7  some images are not (the overlay is still written; each one is listed, fix them with the post-renderer)
  2  bad flags, a chart that does not render, a registry that is not R[/P]
  3  the chart or a values file does not exist

Options:
      --registry R[/P]     the registry (and path prefix) \`airlock push\` filled
      --keep-host          push put images under their source host (R/P/quay.io/x/app): point there
  -o, --out FILE           write the overlay to FILE (default: print it on stdout)
      --bundle FILE        the bundle pushed: map pins to upstream indexes it carries reduced
      --lock FILE          the same from the lock the bundle was packed from
  -f, --values FILE        your chart values (repeatable, like helm)
      --set K=V            set a chart value (repeatable, like helm)
      --set-string K=V     set a chart value as a string (repeatable)
      --kube-version V     Kubernetes version for Capabilities.KubeVersion
  -n, --namespace N        namespace to render into (default: default)
  -a, --api-versions X     extra API versions for Capabilities.APIVersions (repeatable)
      --helm PATH          the helm binary (default $AIRLOCK_HELM, else helm on PATH)
      --json               {"overlay", "overlayText", "values":[{path, value, images}],
                            "images":[{reference, target, status, via, places}], "notRedirected":[…]}`,
  options: {
    registry: { type: 'string' },
    'keep-host': { type: 'boolean' },
    out: { type: 'string', short: 'o' },
    bundle: { type: 'string', multiple: true },
    lock: { type: 'string', multiple: true },
    ...chartFlags,
  },
  async run({ values, positionals, out, signal }) {
    if (positionals.length !== 1) {
      throw new UsageError(positionals.length === 0 ? 'rewrite needs a chart: airlock rewrite CHART --registry R[/P]' : `rewrite takes one chart, got ${positionals.length}: ${positionals.join(' ')}`);
    }
    const registry = values.registry as string | undefined;
    if (registry === undefined) throw new UsageError('rewrite needs --registry R[/P]: the registry `airlock push` filled', { hint: 'e.g. airlock rewrite ./charts/shop --registry harbor.internal/mirror -o overlay.yaml' });
    // --kubectl is not a rewrite flag, so the options carry none.
    const result = await rewrite(positionals[0]!, registry, {
      ...renderOptionsOf(values),
      output: values.out as string | undefined,
      keepHost: values['keep-host'] === true,
      bundle: values.bundle as string[] | undefined,
      lock: values.lock as string[] | undefined,
      signal,
    });
    for (const w of result.warnings) out.info(`warning: ${w}`);
    for (const line of digestLines(result.digests ?? [], registry)) out.info(line);
    const file = result.file;
    for (const line of summary(result, values['keep-host'] === true)) out.info(line);
    if (file) out.info(`wrote ${values.out as string}`);
    out.result(
      {
        chart: result.chart,
        target: result.target,
        ...(file ? { file } : {}),
        overlay: result.overlay,
        overlayText: result.overlayText,
        globalImageRegistry: result.globalImageRegistry,
        values: result.values,
        images: result.images,
        notRedirected: result.notRedirected,
        warnings: result.warnings,
        ...(result.digests ? { digests: result.digests } : {}),
      },
      file ? '' : result.overlayText,
    );
    return result.notRedirected.length > 0 ? ExitCode.findings : ExitCode.ok;
  },
});
