// rewrite --include-optional (impure: runs helm): the components a chart leaves off by default,
// found the one way discover --include-optional finds them (switches.ts: every `enabled: false`
// and every subchart condition or tag that is off, and the string modes the templates compare;
// switched-render.ts renderOptional: rendered with them all on, halved when helm refuses), as
// values files rewrite renders beside the user's values, and which switch brings each image in
// (combine.ts, as discover says it).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { guardsAt, valuesBehindMessage } from '../discover/attribute.ts';
import type { ResolvedChart } from '../discover/chart-values.ts';
import { chartFindings } from '../discover/combine.ts';
import { extractImages } from '../discover/extract.ts';
import { normaliseKubeVersion } from '../discover/image-rules.ts';
import type { ChartRenderOptions } from '../discover/sources.ts';
import { renderOptional } from '../discover/switched-render.ts';
import { switchName, switchOverlay } from '../discover/switches.ts';
import type { TemplateLine } from '../discover/template-guards.ts';
import type { Manifest, OptionalInfo } from '../discover/types.ts';

type Obj = Record<string, unknown>;

/** One render with switches on: the values file that turns them on, and which they are. */
export interface SwitchScenario {
  file: string;
  /** `--set` paths of the switches on. */
  on: string[];
  /** The same as dotted values paths (how discover's attribution names them; a mode as `expose.type=clusterIP`). */
  dotted: string[];
}

export interface OptionalRenders {
  scenarios: SwitchScenario[];
  /** Switches helm would not render even alone, with helm's reason. */
  failed: { switch: string; reason: string }[];
  /** Templates parsed for the attribution, shared. */
  parsed: Map<string, TemplateLine[]>;
}

/**
 * The switch groups helm renders with the user's values (at most a few renders: all at once, then
 * halves), each written to a values file in `dir`.
 */
export async function optionalRenders(chartPath: string, o: ChartRenderOptions, top: Obj, charts: readonly ResolvedChart[], dir: string): Promise<OptionalRenders> {
  const parsed = new Map<string, TemplateLine[]>();
  const result = await renderOptional(chartPath, o, top, charts, {
    guardsAt: (origin, line) => guardsAt(origin, line, charts, parsed),
    valuesBehind: (reason) => valuesBehindMessage(reason, charts),
  });
  const scenarios: SwitchScenario[] = [];
  for (const [i, r] of result.renders.entries()) {
    const file = join(dir, `switches-${i}.yaml`);
    await writeFile(file, `${JSON.stringify(switchOverlay(r.on))}\n`);
    scenarios.push({ file, on: r.on.map((s) => s.path), dotted: r.on.map(switchName) });
  }
  return { scenarios, failed: result.failed.map((f) => ({ switch: f.switch.path, reason: f.reason })), parsed };
}

/**
 * Which switch brings in each image only the switched renders use, as discover --include-optional
 * says it: reference → the values key (and every key) to turn on.
 */
export function optionalAttribution(
  chart: string,
  namespace: string,
  rendered: readonly Manifest[],
  switched: readonly { dotted: readonly string[]; manifests: readonly Manifest[] }[],
  charts: readonly ResolvedChart[],
  kubeVersion: string | undefined,
  parsed: Map<string, TemplateLine[]>,
): Map<string, OptionalInfo> {
  const { findings } = chartFindings({
    chart,
    rendered: extractImages(rendered, { chart, namespace }).findings,
    charts,
    switched: switched.map((s) => ({ findings: extractImages(s.manifests, { chart, namespace }).findings, on: new Set(s.dotted) })),
    kubeVersion: normaliseKubeVersion(kubeVersion),
    parsed,
  });
  const out = new Map<string, OptionalInfo>();
  for (const f of findings) if (f.optional) out.set(f.reference, f.optional);
  return out;
}
