// What `airlock audit` reports: every place a rendered app would talk to the outside world, or is
// switched to, each with where it stands and what to do about it.

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * `reference` is the one category that is not egress: a link or name meant for people (a runbook
 * URL, a dashboard link, a pinned SSH host key, the app's own address). It is kept apart from the
 * findings, shown only when asked for, and never fails an audit. `object-storage` is a storage
 * client (a registry's storage driver, a Velero backup location, a Loki/Thanos object store) whose
 * settings name no endpoint, so it reaches a public cloud's object store by default.
 */
export const CATEGORIES = ['registry', 'acme', 'oauth-oidc', 'object-storage', 'telemetry', 'ai-api', 'download', 'update-check', 'other', 'reference'] as const;
export type Category = (typeof CATEGORIES)[number];

export interface AuditFinding {
  /** The external host (no port), or the host a phone-home switch talks to; '' when unknown. */
  host: string;
  /** The URL when the value carried one (credentials redacted). */
  url?: string;
  port?: number;
  category: Category;
  severity: Severity;
  /** Stable id of the rule that produced the finding (SARIF ruleId). */
  rule: string;
  /** `Kind/namespace/name` (`Kind/name` for cluster-scoped kinds), or the file for unparseable input. */
  resource: string;
  /** Where inside the resource: `spec.template.spec.containers[0].env[2].value`, `data["grafana.ini"].analytics.reporting_enabled`. */
  path: string;
  /** The one string the finding came from (secrets redacted), not its neighbours. */
  value: string;
  hint: string;
  /** Template (`shop/templates/cm.yaml`) or manifest file the resource came from. */
  origin?: string;
  /** 1-based line in `origin` where the value stands, when the file could be read and the value found in it. */
  line?: number;
}

/** An endpoint the audit judged internal: kept for `--show-internal` and for tests. */
export interface InternalEndpoint {
  host: string;
  port?: number;
  resource: string;
  path: string;
  value: string;
  /** Why it is internal: `cluster-local name`, `private address 10.0.0.0/8`, `internal domain corp.example`… */
  reason: string;
}

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

export function isSeverity(s: string): s is Severity {
  return (SEVERITIES as readonly string[]).includes(s);
}
