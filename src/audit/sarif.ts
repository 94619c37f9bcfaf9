// Findings as SARIF 2.1.0 (pure), the format CI code-scanning systems read: one run, one rule per
// rule id with its category and default level, one result per finding with the manifest file as
// its location and the resource path as a logical location.
import { createHash } from 'node:crypto';
import { TOOL_NAME, TOOL_VERSION } from '../version.ts';
import { CATEGORY_HINT } from './rules.ts';
import type { AuditFinding, Severity } from './types.ts';

type Level = 'error' | 'warning' | 'note';

const LEVEL: Record<Severity, Level> = { critical: 'error', high: 'error', medium: 'warning', low: 'note', info: 'note' };
/** GitHub code scanning reads `security-severity` (0–10) on rules. */
const SECURITY_SEVERITY: Record<Severity, string> = { critical: '9.5', high: '8.0', medium: '5.5', low: '3.0', info: '1.0' };

function describe(f: AuditFinding): string {
  if (f.rule === 'unparseable-manifest' || f.rule === 'unparseable-config') return `${f.resource} ${f.path}: ${f.value}`;
  const what = f.host !== '' ? `${f.category} endpoint ${f.host}${f.port !== undefined ? `:${f.port}` : ''}` : `${f.category} setting`;
  return `${what} in ${f.resource} at ${f.path}: ${f.value}`;
}

export function toSarif(findings: readonly AuditFinding[]): Record<string, unknown> {
  const rules: Record<string, unknown>[] = [];
  const index = new Map<string, number>();
  for (const f of findings) {
    if (index.has(f.rule)) continue;
    index.set(f.rule, rules.length);
    rules.push({
      id: f.rule,
      name: f.rule.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase()),
      shortDescription: { text: f.rule.startsWith('unparseable') ? 'input that could not be audited' : `${f.category}: phones home or reaches outside the network` },
      fullDescription: { text: f.rule.startsWith('unparseable') ? f.hint : CATEGORY_HINT[f.category] },
      defaultConfiguration: { level: LEVEL[f.severity] },
      properties: { category: f.category, 'security-severity': SECURITY_SEVERITY[f.severity], tags: ['air-gap', 'egress', f.category] },
    });
  }
  const results = findings.map((f) => {
    const fingerprint = createHash('sha256').update(JSON.stringify([f.rule, f.resource, f.path, f.host])).digest('hex').slice(0, 32);
    return {
      ruleId: f.rule,
      ruleIndex: index.get(f.rule)!,
      level: LEVEL[f.severity],
      message: { text: `${describe(f)}. ${f.hint}` },
      locations: [
        {
          ...(f.origin !== undefined ? { physicalLocation: { artifactLocation: { uri: f.origin.split('\\').join('/') } } } : {}),
          logicalLocations: [{ fullyQualifiedName: `${f.resource}:${f.path}`, kind: 'resource' }],
        },
      ],
      partialFingerprints: { 'airlockFinding/v1': fingerprint },
      properties: {
        host: f.host,
        ...(f.url !== undefined ? { url: f.url } : {}),
        ...(f.port !== undefined ? { port: f.port } : {}),
        category: f.category,
        severity: f.severity,
        resource: f.resource,
        path: f.path,
        value: f.value,
      },
    };
  });
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: TOOL_NAME, version: TOOL_VERSION, semanticVersion: TOOL_VERSION, rules } },
        results,
        columnKind: 'unicodeCodePoints',
      },
    ],
  };
}
