import { ExitCode, UsageError } from '../../core/errors.ts';
import { rewrite, type RewriteReport } from '../../api/rewrite.ts';
import { chartFlags, renderOptionsOf } from './render-flags.ts';
import { count } from '../output.ts';
import { defineCommand } from './types.ts';
import { digestLines } from './digest-lines.ts';

/** What the run found, for people (stderr); `commandOnStdout`: the helm command is the data printed on stdout, not repeated here. */
function summary(r: RewriteReport, keepHost: boolean, commandOnStdout: boolean): string[] {
  const lines: string[] = [];
  if (r.globalImageRegistry) lines.push(`the chart honours global.imageRegistry: the overlay sets it to ${r.target}`);
  const done = r.images.filter((i) => i.status === 'redirected').length;
  lines.push(`rendered again with the overlay: ${done} of ${count(r.images.length, 'image')} now ${r.images.length === 1 ? 'points' : 'point'} where push put them (${r.target})`);
  if (r.optional) {
    const on = [...new Set(r.optional.renders.flat())];
    const all = r.optional.moved.length + r.optional.left.length;
    lines.push(
      on.length === 0
        ? 'include-optional: the chart has no component switched off (no `enabled: false`, no subchart condition off)'
        : `include-optional: rendered with ${count(on.length, 'switch', 'switches')} on too (${on.slice(0, 6).join(', ')}${on.length > 6 ? ', ...' : ''}): ${r.optional.moved.length} of ${count(all, 'optional image')} redirected`,
    );
    for (const m of r.optional.moved) lines.push(`optional, redirected: ${m.reference} -> ${m.target}${m.switches.length > 0 ? ` (with ${m.switches.join(', ')} on)` : ''}`);
  }
  for (const n of r.notRedirected) {
    const optional = n.optional ? ` [optional: with ${(n.optional.switches ?? [n.optional.valuesPath]).filter((x) => x !== '').join(', ') || 'switches'} on]` : '';
    lines.push(
      n.status === 'misdirected'
        ? `misdirected: ${n.resource} ${n.path}: ${n.image} would point at ${n.now?.join(', ') ?? '?'}, not ${n.expected}${optional}`
        : `not redirected: ${n.resource} ${n.path}: ${n.image}${n.template ? ` (${n.line !== undefined ? 'hard-coded in ' : ''}${n.template}${n.line !== undefined ? `:${n.line}` : ''})` : ''}${optional}`,
    );
  }
  if (r.postRender) {
    const left = r.postRender.remaining;
    lines.push(
      left.length === 0
        ? `with the post-renderer too (${count(r.postRender.mapped, 'place')} mapped by it): every image points at ${r.target}`
        : `even with the post-renderer ${count(left.length, 'place')} point elsewhere: ${left.map((x) => `${x.resource} ${x.path}: ${x.image}`).join('; ')}`,
    );
    if (commandOnStdout) lines.push('install with the helm command printed on stdout (run `airlock helm-plugin install` once first)');
    else lines.push('install with (run `airlock helm-plugin install` once first):', `  ${r.postRender.commandLine}`);
  } else if (r.notRedirected.length > 0) {
    lines.push(`values cannot redirect ${count(r.notRedirected.length, 'place')}: add the post-renderer, which maps them (--post-render-fallback prints the exact command; see \`airlock post-render --help\`):`);
    lines.push(`  airlock helm-plugin install && helm install NAME CHART -f overlay.yaml --post-renderer airlock-postrender --post-renderer-args --registry=${r.target}${keepHost ? ' --post-renderer-args --keep-host' : ''}`);
  }
  return lines;
}

export const rewriteCommand = defineCommand({
  name: 'rewrite',
  summary: 'write a values overlay that points every image of a chart at your registry, proven by rendering',
  usage: `Usage: airlock rewrite CHART --registry R[/P] [--include-optional] [-f values.yaml]... [--set k=v]... [-o overlay.yaml] [--json]

Writes a values overlay that sends every image CHART renders to R[/P], exactly where
\`airlock push BUNDLE R[/P]\` put it (docker.io/library/nginx:1.27 -> R/P/library/nginx:1.27),
using the chart's own values, found by rendering, not by key names:
  One probe render marks every value that could be part of an image name (registries, hubs,
  repositories, \`image: repo\` strings whose tag comes from another key, and registry knobs the
  chart may read without setting them: global.imageRegistry, global.image.registry, global.registry,
  imageRegistry, a map's registry). Each rendered image then shows which values it is made of, and
  the overlay sets only those:
    a registry or hub value in front of names  R/P (docker.io/istio -> R/P/istio), shared values once
    a repository or image string               R/P/path (its own :tag@digest kept)
    a docker library name behind a registry    library/nginx, when the registry value is R/P
  Tags and digests stay as they are (a pinned digest is the same in R/P); a list is written whole
  (helm replaces lists).
Then renders the chart again with your values plus the overlay and proves, place by place, that every
image (pod specs, custom resources, container args/env, ConfigMaps) now points where push put it.
Images values cannot redirect are listed (resource, path, image, and the template file and line
when the image is hard-coded there): the post-renderer maps those (--post-render-fallback,
\`airlock post-render --help\`, \`airlock helm-plugin install\`).

Components switched off by default (an exporter under metrics.enabled: false, a subchart whose
condition is off) render no image with your values, so the overlay would not cover them: a later
\`helm install -f overlay.yaml --set metrics.enabled=true\` would pull the exporter from upstream.
--include-optional renders the chart again with those switches on, as \`discover --include-optional\`
does (all at once, halves when helm refuses), solves the overlay for both renders and proves it on
both: each optional image is listed with the values key that switches it on, moved or left. Values
for components that are off do nothing to your render; it is proven again all the same. Not the
default, like discover's: push carries optional images only when the bundle was discovered with
--include-optional, the switched renders cost more helm runs, and an optional image values cannot
move (hard-coded in its template) makes the exit code 7 though your render is fully redirected.

A chart that pins an image by its upstream index digest, which the bundle carries reduced to some
platforms: give --bundle (or --lock) and the overlay points such pins at the reduced index too,
unless the import history records that push stored the upstream index in R[/P] (see post-render --help).

Use the overlay after your own values; --set flags win over -f files, so do not --set its keys:
  helm install NAME CHART -f values.yaml -f overlay.yaml

Exit codes:
  0  every image redirected (proven; with --post-render-fallback, by values and post-renderer together)
  7  some images are not (the overlay is still written; each one is listed, fix them with the post-renderer)
  2  bad flags, a chart that does not render, a registry that is not R[/P]
  3  the chart or a values file does not exist

Options:
      --registry R[/P]     the registry (and path prefix) \`airlock push\` filled
      --keep-host          push put images under their source host (R/P/quay.io/x/app): point there
      --include-optional   redirect the images of components switched off by default too (rendered
                           with the switches on, proven with them on and off; see above)
  -o, --output FILE        write the overlay to FILE (default: print it on stdout; --out is the older spelling)
      --post-render-fallback
                           what values cannot move (an image hard-coded in a template) goes to
                           airlock's post-renderer: prints the exact helm command (with -o, on
                           stdout), proven by running the post-renderer over the overlay's render
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
                            "images":[{reference, target, status, via, places, optional?}], "notRedirected":[…],
                            with --include-optional "optional":{renders, failed, moved:[{reference, target,
                            switch, switches}], left:[{reference, switch, switches, hint}]}}`,
  options: {
    registry: { type: 'string' },
    'keep-host': { type: 'boolean' },
    output: { type: 'string', short: 'o' },
    out: { type: 'string' },
    'post-render-fallback': { type: 'boolean' },
    'include-optional': { type: 'boolean' },
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
      output: (values.output ?? values.out) as string | undefined,
      keepHost: values['keep-host'] === true,
      bundle: values.bundle as string[] | undefined,
      lock: values.lock as string[] | undefined,
      postRenderFallback: values['post-render-fallback'] === true,
      includeOptional: values['include-optional'] === true,
      signal,
    });
    for (const w of result.warnings) out.info(`warning: ${w}`);
    for (const line of digestLines(result.digests ?? [], registry)) out.info(line);
    const file = result.file;
    for (const line of summary(result, values['keep-host'] === true, file !== undefined)) out.info(line);
    if (file) out.info(`wrote ${file}`);
    out.data(
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
        ...(result.postRender ? { postRender: result.postRender } : {}),
        ...(result.optional ? { optional: result.optional } : {}),
        warnings: result.warnings,
        ...(result.digests ? { digests: result.digests } : {}),
      },
      file ? (result.postRender ? `${result.postRender.commandLine}\n` : '') : result.overlayText,
    );
    if (result.postRender) return result.postRender.remaining.length > 0 ? ExitCode.findings : ExitCode.ok;
    return result.notRedirected.length > 0 ? ExitCode.findings : ExitCode.ok;
  },
});
