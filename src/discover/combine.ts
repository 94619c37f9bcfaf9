// One chart's findings (pure): what its render uses, plus what its values and annotations name.
// What only the renders with switches on use is optional, as those renders composed it; a values
// or annotation image that no render uses at all is optional too, composed from the values. Each
// optional image comes with the values key that switches it on, so `--include-optional` can say
// how to get it.
import { formatName, formatReference, parseReference } from '../core/reference.ts';
import { findSwitch, type ResolvedChart } from './chart-values.ts';
import { imagesFromAnnotations, isAuthoritativeImageList } from './annotations.ts';
import { addFinding, sortFindings } from './findings.ts';
import type { Finding, OptionalInfo, Reason } from './types.ts';
import { formatValuesPath, joinPath, valueAt, type PathSegment } from './values-path.ts';
import { globalRegistryOf, scanChartValues, type ValuesImage } from './values-scan.ts';
import { attributeOptional, repositoryKey, slotKey, type StaticImage } from './attribute.ts';
import type { TemplateLine } from './template-guards.ts';

export interface ChartFindingsInput {
  /** Name of the chart as the user gave it (the top chart's name). */
  chart: string;
  /** extractImages over everything the chart rendered with the current values. */
  rendered: readonly Finding[];
  /** resolveChartValues(...).charts */
  charts: readonly ResolvedChart[];
  /** extractImages over renders with switches on, each with the switches (dotted values paths) that were on. */
  switched?: readonly { findings: readonly Finding[]; on: ReadonlySet<string> }[];
  /** `v1.30.0`: the tag of untagged kubectl images in the values. */
  kubeVersion?: string | undefined;
  /** Parsed templates, shared with earlier steps. */
  parsed?: Map<string, TemplateLine[]>;
}

interface OptionalEntry {
  reasons: Reason[];
  optional: OptionalInfo;
}

function nameOf(reference: string): string {
  return formatName(parseReference(reference));
}

function withRegistry(reference: string, registry: string): string | undefined {
  const r = parseReference(reference);
  try {
    return formatReference(parseReference(`${registry.replace(/\/+$/, '')}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`));
  } catch {
    return undefined;
  }
}

function switchHint(path: string, what: string): string {
  return `${what}; switch it on with --set ${path}=true`;
}

export function chartFindings(input: ChartFindingsInput): { findings: Finding[]; warnings: string[] } {
  const required = new Map<string, Finding>();
  for (const f of input.rendered) for (const r of f.reasons) addFinding(required, f.reference, r);
  const renderedRefs = new Set(required.keys());
  const renderedByName = new Map<string, string>();
  for (const ref of [...renderedRefs].sort()) if (!renderedByName.has(nameOf(ref))) renderedByName.set(nameOf(ref), ref);

  const optional = new Map<string, OptionalEntry>();
  const offer = (reference: string, reason: Reason, info: OptionalInfo): void => {
    const e = optional.get(reference);
    if (e) {
      e.reasons.push(reason);
      return;
    }
    optional.set(reference, { reasons: [reason], optional: info });
  };
  const warnings: string[] = [];

  const scans: { chart: ResolvedChart; v: ValuesImage }[] = [];
  for (const chart of input.charts) for (const v of scanChartValues(chart, { kubeVersion: input.kubeVersion })) scans.push({ chart, v });
  const statics: StaticImage[] = scans.map(({ chart, v }) => ({ chart, segments: v.segments, references: [v.reference, ...v.variants] }));

  // What only a render with switches on shows: optional, composed exactly as the chart does it.
  const actx = { charts: input.charts, statics, parsed: input.parsed ?? new Map<string, TemplateLine[]>() };
  const switched = new Map<string, OptionalEntry>();
  // A switch that only moves rendered images to another registry (`privateRegistry.enabled` with a
  // placeholder host) adds no image: the same repository and tag is already there.
  const renderedSlots = new Set([...renderedRefs].map(slotKey));
  for (const render of input.switched ?? []) {
    for (const f of render.findings) {
      if (required.has(f.reference) || renderedSlots.has(slotKey(f.reference))) continue;
      const e = switched.get(f.reference);
      if (e === undefined) {
        switched.set(f.reference, { reasons: [...f.reasons], optional: attributeOptional(f, render.on, actx) });
        continue;
      }
      e.reasons.push(...f.reasons);
      // a smaller group of switches may say what an all-on render could not
      if (e.optional.valuesPath === '') e.optional = attributeOptional(f, render.on, actx);
    }
  }
  const switchedByKey = new Map<string, string>();
  for (const ref of [...switched.keys()].sort()) if (!switchedByKey.has(repositoryKey(ref))) switchedByKey.set(repositoryKey(ref), ref);
  const renderedKeys = new Set([...renderedRefs].map(repositoryKey));

  for (const { chart, v } of scans) {
    const resource = `Chart/${chart.node.name}`;
    const full: PathSegment[] = [...chart.prefix, ...v.segments];
    const reason: Reason = { source: 'values', resource, path: formatValuesPath(full), chart: input.chart };
    const candidates = [v.reference, ...v.variants];
    let match = candidates.find((c) => renderedRefs.has(c));
    if (match === undefined && v.tagDefaulted) {
      match = candidates.map((c) => renderedByName.get(nameOf(c))).find((c) => c !== undefined);
    }
    if (match !== undefined) {
      if (chart.enabled) addFinding(required, match, reason);
      continue;
    }
    // The renders are the truth about how the chart composes the image: the values only add why.
    const rendered = candidates.find((c) => switched.has(c)) ?? candidates.map((c) => switchedByKey.get(repositoryKey(c))).find((c) => c !== undefined);
    if (rendered !== undefined) {
      switched.get(rendered)!.reasons.push(reason);
      continue;
    }
    if (candidates.some((c) => renderedKeys.has(repositoryKey(c)))) continue;
    const inner = findSwitch(chart.values, v.segments);
    let info: OptionalInfo;
    if (!chart.enabled && chart.switchPath !== undefined) {
      const innerPath = inner ? formatValuesPath([...chart.prefix, ...inner]) : undefined;
      const then = innerPath !== undefined && innerPath !== chart.switchPath ? ` and --set ${innerPath}=true` : '';
      info = { valuesPath: chart.switchPath, hint: `${switchHint(chart.switchPath, `chart ${chart.chartPath} is switched off`)}${then}` };
    } else if (inner) {
      const p = formatValuesPath([...chart.prefix, ...inner]);
      info = { valuesPath: p, hint: switchHint(p, `set at ${reason.path}, which is switched off`) };
    } else {
      // not the image's own path: that is no switch, and `--set` on it would break the chart
      info = { valuesPath: '', hint: `set at ${reason.path} in the values, but nothing renders it with these values, nor with every switch on` };
    }
    offer(v.reference, reason, info);
  }

  for (const chart of input.charts) {
    const resource = `Chart/${chart.node.name}`;
    const { images, warnings: w } = imagesFromAnnotations(chart.node.annotations, chart.chartPath);
    warnings.push(...w);
    const globalRegistry = globalRegistryOf(chart.values) ?? '';
    for (const listed of images) {
      const reason: Reason = { source: 'chart-annotation', resource, path: joinPath(joinPath('annotations', listed.key), listed.index), chart: input.chart };
      // With global.imageRegistry set, the chart pulls the listed image from that registry.
      const moved = globalRegistry === '' ? undefined : withRegistry(listed.reference, globalRegistry);
      const rendered = [listed.reference, moved].find((r) => r !== undefined && renderedRefs.has(r));
      if (rendered !== undefined) {
        if (chart.enabled) addFinding(required, rendered, reason);
        continue;
      }
      const inSwitched = [listed.reference, moved].find((r) => r !== undefined && switched.has(r));
      if (inSwitched !== undefined) {
        switched.get(inSwitched)!.reasons.push(reason);
        continue;
      }
      const img = { ...listed, reference: moved ?? listed.reference };
      const key = repositoryKey(img.reference);
      if (!isAuthoritativeImageList(img.key) && (renderedKeys.has(key) || switchedByKey.has(key))) continue;
      const condition = img.condition === undefined ? undefined : valueAt(chart.values, img.condition.split('.'));
      const conditionOff = condition === false || (typeof condition === 'string' && condition === 'false');
      if (chart.enabled && isAuthoritativeImageList(img.key) && !conditionOff) {
        addFinding(required, img.reference, reason);
        continue;
      }
      let info: OptionalInfo;
      const fromValues = optional.get(img.reference) ?? [...optional.entries()].find(([ref]) => nameOf(ref) === nameOf(img.reference))?.[1];
      if (!chart.enabled && chart.switchPath !== undefined) {
        info = { valuesPath: chart.switchPath, hint: switchHint(chart.switchPath, `chart ${chart.chartPath} is switched off`) };
      } else if (conditionOff && img.condition !== undefined) {
        const p = formatValuesPath([...chart.prefix, ...img.condition.split('.')]);
        info = { valuesPath: p, hint: switchHint(p, `listed in the ${img.key} annotation of chart ${chart.chartPath} under that condition`) };
      } else if (fromValues) {
        info = fromValues.optional;
      } else {
        info = { valuesPath: '', hint: `listed in the ${img.key} annotation of chart ${chart.chartPath}, but nothing renders it with these values, nor with every switch on` };
      }
      offer(img.reference, reason, info);
    }
  }

  const findings = [...required.values()];
  for (const [reference, e] of switched) findings.push({ reference, reasons: e.reasons, optional: e.optional });
  for (const [reference, e] of optional) {
    if (required.has(reference) || switched.has(reference)) continue;
    findings.push({ reference, reasons: e.reasons, optional: e.optional });
  }
  return { findings: sortFindings(findings), warnings };
}
