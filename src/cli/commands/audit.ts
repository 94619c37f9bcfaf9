import { ExitCode, UsageError } from '../../core/errors.ts';
import { audit, type AuditReport, type Severity } from '../../api/audit.ts';
import { renderOptionsOf, renderOptions, renderUsage, strings } from './render-flags.ts';
import { toSarif } from '../../audit/sarif.ts';
import { CATEGORY_HINT } from '../../audit/rules.ts';
import { SEVERITIES, type AuditFinding } from '../../audit/types.ts';
import { count, table } from '../output.ts';
import { defineCommand } from './types.ts';

const FORMATS = ['table', 'json', 'sarif'] as const;

function hostPort(host: string, port: number | undefined): string {
  if (host === '') return '-';
  return `${host.includes(':') ? `[${host}]` : host}${port !== undefined ? `:${port}` : ''}`;
}

function cut(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** One line per rule: its hint, or the category's when the rule's findings carry different ones (one per image). */
function whatToDo(findings: readonly AuditFinding[]): string[] {
  const byRule = new Map<string, { hints: Set<string>; category: AuditFinding['category']; n: number }>();
  for (const f of findings) {
    const e = byRule.get(f.rule) ?? { hints: new Set<string>(), category: f.category, n: 0 };
    e.hints.add(f.hint);
    e.n++;
    byRule.set(f.rule, e);
  }
  return [...byRule].map(([rule, e]) => `  ${rule}${e.n > 1 ? ` (${e.n})` : ''}: ${e.hints.size === 1 ? [...e.hints][0]! : CATEGORY_HINT[e.category]}`);
}

function humanReport(r: AuditReport, show: { internal: boolean; references: boolean }, failed: boolean, failOn: string): string {
  const lines: string[] = [];
  if (r.findings.length > 0) {
    const rows = [['SEVERITY', 'CATEGORY', 'HOST', 'RESOURCE', 'PATH', 'VALUE']];
    for (const f of r.findings) rows.push([f.severity, f.category, hostPort(f.host, f.port), f.resource, cut(f.path, 70), cut(f.value, 80)]);
    lines.push(table(rows), '');
    lines.push('What to do:', ...whatToDo(r.findings), '');
  }
  if (show.references && r.references.length > 0) {
    const rows = [['REFERENCE (for people, not egress)', 'RULE', 'RESOURCE', 'PATH', 'VALUE']];
    for (const f of r.references) rows.push([hostPort(f.host, f.port), f.rule, f.resource, cut(f.path, 70), cut(f.value, 80)]);
    lines.push(table(rows), '');
  }
  if (show.internal && r.internal.length > 0) {
    const rows = [['INTERNAL HOST', 'RESOURCE', 'PATH', 'WHY']];
    for (const e of r.internal) rows.push([hostPort(e.host, e.port), e.resource, cut(e.path, 70), e.reason]);
    lines.push(table(rows), '');
  }
  const counts = new Map<string, number>();
  for (const f of r.findings) counts.set(f.severity, (counts.get(f.severity) ?? 0) + 1);
  const bySeverity = [...SEVERITIES].reverse().filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${s}`).join(', ');
  const refs = r.references.length === 0 ? '' : show.references ? `; ${count(r.references.length, 'reference')} for people` : `; ${count(r.references.length, 'reference')} for people hidden (--show-references)`;
  lines.push(
    r.findings.length === 0
      ? `no external endpoints or phone-home settings found (${count(r.internal.length, 'internal endpoint')}${show.internal ? '' : ', --show-internal lists them'}${refs})`
      : `${count(r.findings.length, 'finding')}: ${bySeverity}; ${count(r.internal.length, 'internal endpoint')}${show.internal ? '' : ' not listed (--show-internal)'}${refs}${failed ? `; failing (--fail-on ${failOn})` : ''}`,
  );
  return lines.join('\n');
}

export const auditCommand = defineCommand({
  name: 'audit',
  summary: 'find every external endpoint and phone-home setting in charts and manifests',
  usage: `Usage: airlock audit CHART|DIR|FILE... [-f values.yaml]... [--set k=v]... [--internal-domain D]...
                     [--internal-cidr C]... [--format table|json|sarif] [--fail-on SEVERITY]
                     [--show-internal] [--show-references]

Renders charts (helm), kustomize directories (kubectl kustomize) and reads manifests, then lists
every endpoint the app will talk to that is not internal: URLs, DSNs and host:port in container
args, commands (shell scripts too) and env; ConfigMaps and the config files inside them (INI, YAML,
JSON, TOML, properties); annotations; Service externalName; cert-manager Issuers with a public ACME
server; images from registries outside; and phone-home settings that carry no URL (Grafana
reporting_enabled/check_for_updates, *_TELEMETRY, *_ANALYTICS, DO_NOT_TRACK=0, update checks).
Secrets are read (text values; TLS, token and registry-login Secrets are skipped) but no value from
them is shown: only the host, the setting's name and where. Documents and embedded files that do not
parse are findings of their own.

Links and names meant for people are not egress and are hidden: alert runbook_url and other rule
annotations, Grafana dashboards (links, titles, text panels), descriptions and help text, doc
annotations (a8r.io/*, link.argocd.argoproj.io/*, .../docs), the app's own external URL and Ingress
hosts, SSH known_hosts entries. --show-references lists them (category reference); they never
count for --fail-on. Kubernetes API group names (discovery.k8s.io, cert-manager.io, CRD names) and
placeholder Ingress hosts (chart-example.local, *.example.com) are not endpoints at all.

Internal: bare service names, *.svc, *.cluster.local, svc.namespace, localhost, *.local, *.internal,
*.home.arpa, private/loopback/link-local/ULA addresses, and what --internal-domain/--internal-cidr add.

Options:
      --internal-domain D   names under D are internal (repeatable), e.g. corp.example
      --internal-cidr C     addresses in C are internal (repeatable), e.g. 203.0.113.0/24
      --format F            table (default), json ({"findings":[...]}, external findings only) or
                            sarif (SARIF 2.1.0 for CI code scanning)
      --fail-on SEVERITY    exit ${ExitCode.findings} when a finding is this severe or worse: info, low (default:
                            every external endpoint and phone-home setting), medium, high, critical, none
      --show-internal       also list the endpoints judged internal, with the reason
      --show-references     also list links and names for people (category reference): in the
                            table, in json ("references":[...]) and in sarif (results of kind
                            "informational", level "none")
      --json                NDJSON: a result line {"type":"result","findings":[...],"internal":[...]}
${renderUsage}

Exit codes: 0 nothing reached --fail-on, ${ExitCode.findings} findings reached it, others from the error table.`,
  options: {
    ...renderOptions,
    'internal-domain': { type: 'string', multiple: true },
    'internal-cidr': { type: 'string', multiple: true },
    format: { type: 'string' },
    'fail-on': { type: 'string' },
    'show-internal': { type: 'boolean', default: false },
    'show-references': { type: 'boolean', default: false },
  },
  async run({ values, positionals, out, signal }) {
    if (positionals.length === 0) {
      throw new UsageError('audit needs at least one chart, kustomize directory or manifest file', { hint: 'e.g. airlock audit ./charts/shop -f values-airgap.yaml --internal-domain corp.example' });
    }
    const format = typeof values.format === 'string' ? values.format : 'table';
    if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got "${format}"`);
    const failOnText = typeof values['fail-on'] === 'string' ? values['fail-on'].toLowerCase() : 'low';
    const result = await audit(positionals, {
      ...renderOptionsOf(values),
      internalDomains: strings(values['internal-domain']),
      internalCidrs: strings(values['internal-cidr']),
      failOn: failOnText as Severity | 'none',
      signal,
    });
    for (const w of result.warnings) out.info(`warning: ${w}`);
    const { failed, failOn } = result;
    const showInternal = values['show-internal'] === true;
    const showReferences = values['show-references'] === true;
    const extra = { ...(showInternal ? { internal: result.internal } : {}), ...(showReferences ? { references: result.references } : {}) };
    if (out.mode === 'json') {
      out.result({ findings: result.findings, ...extra, namespaces: result.namespaces, failOn, failed }, '');
    } else if (format === 'json') {
      process.stdout.write(`${JSON.stringify({ findings: result.findings, ...extra }, null, 2)}\n`);
    } else if (format === 'sarif') {
      process.stdout.write(`${JSON.stringify(toSarif(result.findings, showReferences ? result.references : []), null, 2)}\n`);
    } else {
      out.result({}, humanReport(result, { internal: showInternal, references: showReferences }, failed, failOnText));
    }
    return failed ? ExitCode.findings : ExitCode.ok;
  },
});
