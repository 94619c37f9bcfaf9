// `airlock audit` on a monitoring stack as charts render it (test/fixtures/audit/monitoring): what a
// reviewer must read fits on one screen, every real external endpoint is still found (planted in
// env, args, config files, custom resources and bare host names), and links for people (runbooks,
// dashboards, docs, SSH host keys, the app's own address) are references that never fail the audit.
// Also: SARIF that code scanning accepts (schema shape, help, regions on the right lines).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { CliResult } from '../helpers/cli.ts';
import { sarifErrors } from './support/sarif-shape.ts';
import { auditManifests } from '../../src/audit/audit.ts';
import { reachesFailOn } from '../../src/audit/findings.ts';
import type { AuditFinding } from '../../src/audit/types.ts';
import { AUDIT_FIXTURES, auditCli } from './support/audit-cli.ts';

const FIX = AUDIT_FIXTURES;
const run = auditCli;
type Out = { findings: AuditFinding[]; references?: AuditFinding[]; internal?: { host: string; reason: string; value: string }[] };

/** Every endpoint and phone-home setting the stack really has: host, rule, resource. */
const REAL: [string, string, string][] = [
  ['docker.io', 'external-registry-image', 'Deployment/monitoring/kps-grafana'],
  ['docker.io', 'external-registry-image', 'Deployment/monitoring/kps-grafana'],
  ['quay.io', 'external-registry-image', 'Alertmanager/monitoring/kps-alertmanager'],
  ['quay.io', 'external-registry-image', 'DaemonSet/monitoring/kps-node-exporter'],
  ['quay.io', 'external-registry-image', 'Deployment/monitoring/kps-elasticsearch-exporter'],
  ['quay.io', 'external-registry-image', 'Deployment/monitoring/kps-grafana'],
  ['quay.io', 'external-registry-image', 'Deployment/monitoring/kps-operator'],
  ['quay.io', 'external-registry-image', 'Deployment/monitoring/kps-operator'],
  ['quay.io', 'external-registry-image', 'Deployment/monitoring/kps-operator'],
  ['quay.io', 'external-registry-image', 'Prometheus/monitoring/kps-prometheus'],
  ['registry.k8s.io', 'external-registry-image', 'Deployment/monitoring/kps-kube-state-metrics'],
  ['registry.k8s.io', 'external-registry-image', 'Job/monitoring/kps-admission-create'],
  ['grafana.com', 'external-download', 'ConfigMap/monitoring/kps-grafana'],
  // GF_INSTALL_PLUGINS lists grafana-piechart-panel by id: Grafana fetches it from grafana.com.
  ['grafana.com', 'grafana-plugin-install', 'Deployment/monitoring/kps-grafana'],
  ['plugins.example-grafana-plugins.net', 'external-download', 'Deployment/monitoring/kps-grafana'],
  ['alerts.incident-bridge.com', 'external-endpoint', 'AlertmanagerConfig/monitoring/ops'],
  ['api.opsgenie-relay.io', 'external-endpoint', 'ConfigMap/monitoring/alertmanager'],
  ['egress-proxy.proxyvendor.net', 'external-endpoint', 'Deployment/monitoring/kps-elasticsearch-exporter'],
  ['es1.logs-vendor.com', 'external-endpoint', 'ConfigMap/monitoring/exporter-env'],
  ['es2.logs-vendor.com', 'external-endpoint', 'ConfigMap/monitoring/exporter-env'],
  ['grafana.net', 'external-endpoint', 'ConfigMap/monitoring/kps-grafana'],
  ['hooks.example.com', 'external-endpoint', 'ConfigMap/monitoring/exporter-env'],
  ['mail.mailprovider.net', 'external-endpoint', 'ConfigMap/monitoring/exporter-env'],
  ['metrics-ingest.saas-monitoring.com', 'external-endpoint', 'ConfigMap/monitoring/kps-prometheus-server'],
  ['search.hosted-elastic.io', 'external-endpoint', 'Deployment/monitoring/kps-elasticsearch-exporter'],
  ['shop.partner-portal.net', 'external-endpoint', 'ConfigMap/monitoring/kps-prometheus-server'],
  ['smtp.mailgun.org', 'external-endpoint', 'ConfigMap/monitoring/alertmanager'],
  ['smtp.sendgrid.net', 'external-endpoint', 'ConfigMap/monitoring/kps-grafana'],
  ['status.partner-api.com', 'external-endpoint', 'Probe/monitoring/partner-api'],
  ['collect.vendor-software.com', 'external-telemetry', 'ConfigMap/monitoring/argocd-cm'],
  ['hooks.slack.com', 'external-endpoint', 'ConfigMap/monitoring/alertmanager'],
  ['hooks.slack.com', 'external-endpoint', 'Secret/monitoring/alertmanager-kps-alertmanager'],
  ['pager.oncall-vendor.com', 'external-endpoint', 'Secret/monitoring/alertmanager-kps-alertmanager'],
  ['logs.hosted-loki.com', 'external-endpoint', 'Secret/monitoring/kps-grafana'],
  ['logs-prod-012.grafana.net', 'external-telemetry', 'ConfigMap/monitoring/kps-grafana'],
  ['prometheus-prod-24-prod-eu-west-2.grafana.net', 'external-telemetry', 'Prometheus/monitoring/kps-prometheus'],
  ['vendor-software.com', 'external-update-check', 'ConfigMap/monitoring/argocd-cm'],
  ['grafana.com', 'grafana-update-check', 'ConfigMap/monitoring/kps-grafana'],
  ['grafana.com', 'grafana-plugin-update-check-default', 'Deployment/monitoring/kps-grafana'],
  ['grafana.com', 'grafana-plugin-key-retrieval-default', 'Deployment/monitoring/kps-grafana'],
];

/** Names that must never be findings: API groups, doc sites, runbooks, dashboards' links, pinned SSH hosts, the app's own names. */
const NEVER = [
  'discovery.k8s.io', 'cert-manager.io', 'monitoring.coreos.com', 'cilium.io', 'kyverno.io', 'reports.kyverno.io', 'prometheus.io',
  'kubernetes.io', 'runbooks.prometheus-operator.dev', 'grafana.example.com', 'github.com', 'gitlab.com', 'bitbucket.org',
  'ssh.github.com', 'ssh.dev.azure.com', 'vs-ssh.visualstudio.com', 'samber.github.io', 'status.grafana.com', 'kubernetes.slack.com',
  'prometheus.example.com', 'alertmanager.example.com', 'chart-example.local', 'slack.link', 'logs-vendor.com', 'wiki.example-corp.com',
];

describe('audit precision on a monitoring stack', { concurrency: true }, () => {
  let json: Promise<CliResult> | undefined;
  const report = (): Promise<CliResult> => (json ??= run(['monitoring', '--format', 'json', '--show-references', '--show-internal']));

  it('finds every real endpoint and phone-home default, and nothing else', async () => {
    const r = await report();
    assert.equal(r.code, 7, r.stderr);
    const out = JSON.parse(r.stdout) as Out;
    const got = out.findings.map((f) => [f.host, f.rule, f.resource].join('|')).sort();
    assert.deepEqual(got, REAL.map((x) => x.join('|')).sort());
    for (const f of out.findings) assert.ok(!NEVER.includes(f.host), `${f.host} is no finding (${f.resource} ${f.path})`);
  });

  it('reads Secrets (Alertmanager keeps its config there) and shows no value from them', async () => {
    const r = await report();
    const out = JSON.parse(r.stdout) as Out;
    // A Slack webhook is where alerts go, not telemetry: the generic advice fits.
    const slack = out.findings.find((f) => f.resource === 'Secret/monitoring/alertmanager-kps-alertmanager' && f.host === 'hooks.slack.com')!;
    assert.equal(slack.path, 'data["alertmanager.yaml"].global.slack_api_url');
    assert.equal(slack.value, 'slack_api_url: (value of a Secret, not shown)');
    assert.equal(slack.url, undefined, 'a webhook URL carries its secret in the path');
    assert.ok(out.internal!.some((e) => e.host === 'kps-postgres.monitoring.svc' && !e.value.includes('db-pw')));
    const sarif = await run(['monitoring', '--format', 'sarif', '--show-references']);
    const table = await run(['monitoring', '--show-internal', '--show-references']);
    for (const text of [r.stdout, sarif.stdout, table.stdout]) {
      for (const secret of ['SECRETTOKEN', 'SECRETKEY', 's3cr3t-admin-pw', 'db-pw', 'T111', 'BEGIN CERTIFICATE']) assert.ok(!text.includes(secret), `${secret} never shown`);
    }
  });

  it('keeps links for people as references, each with why', async () => {
    const out = JSON.parse((await report()).stdout) as Out;
    const refs = out.references!;
    const rules = (host: string): Set<string> => new Set(refs.filter((f) => f.host === host).map((f) => f.rule));
    assert.ok(rules('runbooks.prometheus-operator.dev').has('alert-rule-text'), 'PrometheusRule runbook_url');
    assert.ok(rules('runbooks.prometheus-operator.dev').has('dashboard-text'), 'dashboard panel links');
    assert.ok(rules('runbooks.prometheus-operator.dev').has('notification-template'), 'Alertmanager template');
    assert.ok(rules('github.com').has('ssh-known-host') && rules('ssh.github.com').has('ssh-known-host'), 'known_hosts entries');
    assert.ok(rules('github.com').has('doc-annotation'), 'a8r.io/repository');
    assert.ok(rules('grafana.example.com').has('doc-annotation'), 'link.argocd.argoproj.io/external-link');
    assert.ok(rules('grafana.example.com').has('own-address'), 'grafana.ini root_url');
    assert.ok(rules('alertmanager.example.com').has('own-address'), 'Alertmanager externalUrl');
    assert.ok(rules('logs-vendor.com').has('prose'), 'a name in a sentence');
    assert.ok(rules('status.partner-api.com').has('alert-rule-text'), 'a host in a PromQL label matcher is matched, not connected to');
    for (const f of refs) {
      assert.equal(f.category, 'reference');
      assert.equal(f.severity, 'info');
      assert.ok(f.hint.length > 20);
    }
    assert.ok(refs.length > 100, `the stack is full of links (${refs.length})`);
    // API group names and template names are not even references.
    for (const h of ['discovery.k8s.io', 'cert-manager.io', 'monitoring.coreos.com', 'cilium.io', 'slack.link']) assert.ok(!refs.some((f) => f.host === h), h);
    // Placeholder Ingress hosts are the chart's defaults, listed as internal with the reason.
    const placeholder = out.internal!.find((e) => e.host === 'prometheus.example.com')!;
    assert.match(placeholder.reason, /placeholder/);
  });

  it('what a reviewer must read fits on one screen; references are hidden and counted', async () => {
    const r = await run(['monitoring']);
    assert.equal(r.code, 7);
    const lines = r.stdout.trimEnd().split('\n');
    assert.ok(lines.length <= 60, `${lines.length} lines`);
    assert.doesNotMatch(r.stdout, /runbooks\.prometheus-operator\.dev|discovery\.k8s\.io/);
    assert.match(lines.at(-1)!, /^\d+ findings?: .*; \d{3} references? for people hidden \(--show-references\); failing/);
    assert.match(r.stdout, /^ {2}external-registry-image \(12\): mirror the image into the internal registry/m, 'one line of advice per rule');
    const shown = await run(['monitoring', '--show-references', '--fail-on', 'high']);
    assert.match(shown.stdout, /^REFERENCE \(for people, not egress\)\s+RULE/m);
    assert.match(shown.stdout, /^runbooks\.prometheus-operator\.dev:443\s+alert-rule-text\s+PrometheusRule\/monitoring\/kps-kubernetes-apps/m);
  });

  it('references never fail an audit, at any --fail-on', () => {
    const only = auditManifests([
      { object: { apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { name: 'r', namespace: 'm' }, spec: { groups: [{ name: 'g', rules: [{ alert: 'A', expr: 'up == 0', annotations: { runbook_url: 'https://runbooks.example.org/a' } }] }] } } },
    ]);
    assert.deepEqual(only.findings, []);
    assert.equal(only.references.length, 1);
    assert.equal(reachesFailOn(only.references, 'info'), false);
    assert.equal(reachesFailOn([...only.findings, ...only.references], 'info'), false);
  });

  it('SARIF 2.1.0 that code scanning accepts: schema shape, rule help, regions on the lines the values stand on', async () => {
    const r = await run(['monitoring', '--format', 'sarif', '--show-references']);
    assert.equal(r.code, 7);
    const log = JSON.parse(r.stdout) as {
      runs: {
        tool: { driver: { informationUri: string; rules: { id: string; help: { text: string; markdown: string }; helpUri: string; defaultConfiguration: { level: string } }[] } };
        results: { ruleId: string; kind?: string; level: string; locations: { physicalLocation: { artifactLocation: { uri: string }; region?: { startLine: number } } }[]; properties: { host: string; category: string; resource: string } }[];
      }[];
    };
    assert.deepEqual(sarifErrors(log), []);
    const run0 = log.runs[0]!;
    assert.match(run0.tool.driver.informationUri, /^https:\/\//);
    for (const rule of run0.tool.driver.rules) {
      assert.ok(rule.help.text.length > 20 && rule.help.markdown.includes(`**${rule.id}**`), rule.id);
      assert.match(rule.helpUri, /^https:\/\/.+#what-audit-reports$/);
    }
    const findings = run0.results.filter((x) => x.kind !== 'informational');
    const refs = run0.results.filter((x) => x.kind === 'informational');
    assert.equal(findings.length, REAL.length);
    assert.ok(refs.length > 100 && refs.every((x) => x.level === 'none' && x.properties.category === 'reference'));
    assert.ok(findings.every((x) => x.level !== 'none'));
    // Every finding has a region, and the line it names holds what was found.
    const files = new Map<string, string[]>();
    for (const x of findings) {
      const loc = x.locations[0]!.physicalLocation;
      assert.ok(loc.region, `${x.ruleId} ${x.properties.host} has a region`);
      const uri = loc.artifactLocation.uri;
      if (!files.has(uri)) files.set(uri, readFileSync(`${FIX}${uri}`, 'utf8').split('\n'));
      const line = files.get(uri)![loc.region.startLine - 1]!;
      // Base64 in a Secret hides the value: the line of its file key (`alertmanager.yaml:`) stands for it.
      const inBase64 = x.properties.resource === 'Secret/monitoring/alertmanager-kps-alertmanager';
      const key = x.ruleId === 'grafana-plugin-install' ? 'GF_INSTALL_PLUGINS' : x.ruleId.startsWith('grafana-plugin') ? 'grafana/grafana' : x.ruleId === 'grafana-update-check' ? 'check_for_updates' : inBase64 ? 'alertmanager.yaml:' : x.properties.host;
      assert.ok(line.includes(key), `${uri}:${loc.region.startLine} holds ${key}: ${line}`);
    }
    // Without --show-references the references stay out.
    const plain = JSON.parse((await run(['monitoring', '--format', 'sarif'])).stdout) as typeof log;
    assert.equal(plain.runs[0]!.results.length, REAL.length);
    assert.deepEqual(sarifErrors(plain), []);
  });

  it('the SARIF shape check catches what the schema forbids', () => {
    const bad = { version: '2.1.0', runs: [{ tool: { driver: { name: 'x', rules: [{ id: 'r', help: { markdown: 'no text' } }] } }, results: [{ ruleId: 'r', level: 'fatal', message: {}, locations: [{ physicalLocation: { region: { startLine: 0 } } }], extra: 1 }] }] };
    const errors = sarifErrors(bad).join('\n');
    assert.match(errors, /multiformatMessageString lacks required "text"/);
    assert.match(errors, /level: expected none\|note\|warning\|error/);
    assert.match(errors, /message needs one of text, id/);
    assert.match(errors, /physicalLocation needs one of address, artifactLocation/);
    assert.match(errors, /startLine: expected an integer >= 1/);
    assert.match(errors, /result does not allow "extra"/);
  });
});
