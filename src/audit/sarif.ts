// Findings as SARIF 2.1.0 (pure), the format CI code-scanning systems read: one run, one rule per
// rule id with its category, default level, help (text and markdown) and help URI; one result per
// finding with the manifest file as its location (and the line, when it is known) and the resource
// path as a logical location. GitHub code scanning refuses rules without help and results
// without a physical location, so both are always written when the file is known.
// References (links for people) are results of kind `informational` with level `none`: shown by
// viewers that want them, never an alert.
import { createHash } from 'node:crypto';
import pkg from '../../package.json' with { type: 'json' };
import { TOOL_NAME, TOOL_VERSION } from '../version.ts';
import { CATEGORY_HINT } from './rules.ts';
import type { AuditFinding, Category, Severity } from './types.ts';

type Level = 'error' | 'warning' | 'note' | 'none';

const LEVEL: Record<Severity, Level> = { critical: 'error', high: 'error', medium: 'warning', low: 'note', info: 'note' };
/** GitHub code scanning reads `security-severity` (0–10) on rules. */
const SECURITY_SEVERITY: Record<Severity, string> = { critical: '9.5', high: '8.0', medium: '5.5', low: '3.0', info: '1.0' };

/** Where the project documents the audit; package.json's `homepage` when it names one. */
const homepage: unknown = (pkg as unknown as { homepage?: unknown }).homepage;
export const INFORMATION_URI: string = typeof homepage === 'string' ? homepage : 'https://github.com/airlock/airlock';
/** The README section that explains findings, categories and references. */
const HELP_URI = `${INFORMATION_URI.replace(/#.*$/, '')}#what-audit-reports`;

const CATEGORY_WHY: Record<Category, string> = {
  registry: 'An image pulled from a registry outside the network cannot be pulled in an air gap.',
  acme: 'A public ACME certificate authority cannot be reached from an air gap: certificates will not be issued or renewed.',
  'oauth-oidc': 'Logins through a public identity provider fail without internet access.',
  'object-storage': 'Data is stored in a public cloud object store (AWS S3, Google Cloud Storage, Azure Blob Storage) because no endpoint points the client elsewhere; in an air gap reads and writes fail.',
  telemetry: 'Telemetry sends data out of the network; in an air gap it fails (and retries) or, worse, leaks through a proxy.',
  'ai-api': 'A public AI API cannot be reached from an air gap, and sends data out of the network where it can.',
  download: 'Something is downloaded from outside the network at run time; in an air gap it fails.',
  'update-check': 'An update check calls home; updates arrive through the bundle instead.',
  other: 'The app connects to a host outside the network; in an air gap the connection fails.',
  reference: 'A link or name for people (runbook, dashboard link, documentation, own address, pinned SSH host key). It is not egress and needs no change.',
};

function describe(f: AuditFinding): string {
  if (f.rule === 'unparseable-manifest' || f.rule === 'unparseable-config') return `${f.resource} ${f.path}: ${f.value}`;
  const what = f.host !== '' ? `${f.category} ${f.category === 'reference' ? 'to' : 'endpoint'} ${f.host}${f.port !== undefined ? `:${f.port}` : ''}` : `${f.category} setting`;
  return `${what} in ${f.resource} at ${f.path}: ${f.value}`;
}

interface RuleSummary {
  first: AuditFinding;
  hints: Set<string>;
}

function ruleDescriptor(id: string, s: RuleSummary): Record<string, unknown> {
  const f = s.first;
  const unparseable = id.startsWith('unparseable');
  const reference = f.category === 'reference';
  // One hint for the rule, or the category's when its findings carry their own (one per image).
  const hint = s.hints.size === 1 ? f.hint : CATEGORY_HINT[f.category];
  const short = unparseable ? 'input that could not be audited' : reference ? 'reference: a link or name for people, not egress' : `${f.category}: phones home or reaches outside the network`;
  const why = unparseable ? 'Nothing in this input was audited, so endpoints in it would go unnoticed.' : CATEGORY_WHY[f.category];
  return {
    id,
    name: id.replace(/(^|-)([a-z0-9])/g, (_m, _d, c: string) => c.toUpperCase()),
    shortDescription: { text: short },
    fullDescription: { text: `${why} ${hint}` },
    help: {
      text: `${why}\nWhat to do: ${hint}`,
      markdown: `**${id}** (${f.category})\n\n${why}\n\n**What to do:** ${hint}\n\nFound by \`airlock audit\` in rendered manifests; \`--internal-domain\`/\`--internal-cidr\` declare what is internal.`,
    },
    helpUri: HELP_URI,
    defaultConfiguration: { level: reference ? 'none' : LEVEL[f.severity] },
    properties: {
      category: f.category,
      ...(reference ? {} : { 'security-severity': SECURITY_SEVERITY[f.severity] }),
      tags: [...new Set(['air-gap', reference ? 'reference' : 'egress', f.category])],
    },
  };
}

/** SARIF 2.1.0 for `findings`, and `references` as informational results (pass none to leave them out). */
export function toSarif(findings: readonly AuditFinding[], references: readonly AuditFinding[] = []): Record<string, unknown> {
  const all = [...findings, ...references];
  const summaries = new Map<string, RuleSummary>();
  for (const f of all) {
    const s = summaries.get(f.rule);
    if (s) s.hints.add(f.hint);
    else summaries.set(f.rule, { first: f, hints: new Set([f.hint]) });
  }
  const ids = [...summaries.keys()];
  const index = new Map(ids.map((id, i) => [id, i]));
  const rules = ids.map((id) => ruleDescriptor(id, summaries.get(id)!));
  const results = all.map((f) => {
    const reference = f.category === 'reference';
    const fingerprint = createHash('sha256').update(JSON.stringify([f.rule, f.resource, f.path, f.host])).digest('hex').slice(0, 32);
    const physical =
      f.origin !== undefined
        ? { physicalLocation: { artifactLocation: { uri: encodeURI(f.origin.split('\\').join('/')) }, ...(f.line !== undefined ? { region: { startLine: f.line } } : {}) } }
        : {};
    return {
      ruleId: f.rule,
      ruleIndex: index.get(f.rule)!,
      ...(reference ? { kind: 'informational' } : {}),
      level: reference ? 'none' : LEVEL[f.severity],
      message: { text: `${describe(f)}. ${f.hint}` },
      locations: [{ ...physical, logicalLocations: [{ fullyQualifiedName: `${f.resource}:${f.path}`, kind: 'resource' }] }],
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
        tool: { driver: { name: TOOL_NAME, version: TOOL_VERSION, semanticVersion: TOOL_VERSION, informationUri: INFORMATION_URI, rules } },
        results,
        columnKind: 'unicodeCodePoints',
      },
    ],
  };
}
