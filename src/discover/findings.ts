// Collecting findings: one entry per reference, each reason once, in a stable order.
import { REASON_SOURCES, type Finding, type Reason } from './types.ts';

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function reasonKey(r: Reason): string {
  return JSON.stringify([r.source, r.resource, r.path, r.chart ?? '', r.origin ?? '']);
}

export function compareReasons(a: Reason, b: Reason): number {
  return (
    REASON_SOURCES.indexOf(a.source) - REASON_SOURCES.indexOf(b.source) ||
    compareStrings(a.chart ?? '', b.chart ?? '') ||
    compareStrings(a.resource, b.resource) ||
    compareStrings(a.path, b.path) ||
    compareStrings(a.origin ?? '', b.origin ?? '')
  );
}

/** The same reason with its keys in one order, so JSON output reads the same every time. */
function canonical(r: Reason): Reason {
  const out: Reason = { source: r.source, resource: r.resource, path: r.path };
  if (r.chart !== undefined) out.chart = r.chart;
  if (r.origin !== undefined) out.origin = r.origin;
  return out;
}

/** Add a reason to the finding for `reference`, creating it; a reason already there is not repeated. */
export function addFinding(into: Map<string, Finding>, reference: string, reason: Reason): Finding {
  let f = into.get(reference);
  if (!f) {
    f = { reference, reasons: [] };
    into.set(reference, f);
  }
  const key = reasonKey(reason);
  if (!f.reasons.some((r) => reasonKey(r) === key)) f.reasons.push(canonical(reason));
  return f;
}

/** Findings sorted by reference (byte order), their reasons by source, chart, resource and path. */
export function sortFindings(findings: Finding[]): Finding[] {
  for (const f of findings) f.reasons.sort(compareReasons);
  return findings.sort((a, b) => compareStrings(a.reference, b.reference));
}
