// `airlock audit` as a user runs it: planted external endpoints in every place an app keeps them
// are all found with the right category, internal ones never are; JSON, SARIF and table output;
// exit codes by --fail-on; unparseable input reported, not fatal; charts rendered by the real helm.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resultOf, type CliResult } from '../helpers/cli.ts';
import { helmPath } from '../helpers/helm.ts';
import { auditManifests } from '../../src/audit/audit.ts';
import { reachesFailOn } from '../../src/audit/findings.ts';
import type { AuditFinding } from '../../src/audit/types.ts';
import { auditCommand } from '../../src/cli/commands/audit.ts';
import { Output } from '../../src/cli/output.ts';
import { isAirlockError } from '../../src/core/errors.ts';
import { AUDIT_FIXTURES, auditCli } from './support/audit-cli.ts';

const FIX = AUDIT_FIXTURES;
const run = auditCli;
const findingsOf = (stdout: string): AuditFinding[] => (JSON.parse(stdout) as { findings: AuditFinding[] }).findings;

/** Every endpoint and switch planted in external/app.yaml: host (or rule), category, where. */
const PLANTED: [string, string, string, string][] = [
  ['docker.io', 'registry', 'Deployment/shop/api', 'spec.template.spec.containers[0].image'],
  ['telemetry.vendor-analytics.com', 'telemetry', 'Deployment/shop/api', 'spec.template.spec.containers[0].args[1]'],
  ['license.vendor-licensing.net', 'other', 'Deployment/shop/api', 'spec.template.spec.containers[0].args[3]'],
  ['o45.ingest.sentry.io', 'telemetry', 'Deployment/shop/api', 'spec.template.spec.containers[0].env[0].value'],
  ['api.openai.com', 'ai-api', 'Deployment/shop/api', 'spec.template.spec.containers[0].env[1].value'],
  ['collector.saas-observability.io', 'telemetry', 'Deployment/shop/api', 'spec.template.spec.containers[0].env[2].value'],
  ['db.external-dbaas.com', 'other', 'Deployment/shop/api', 'spec.template.spec.containers[0].env[3].value'],
  ['do-not-track-off', 'telemetry', 'Deployment/shop/api', 'spec.template.spec.containers[0].env[4].value'],
  ['stats.grafana.org', 'telemetry', 'Deployment/shop/api', 'spec.template.spec.containers[0].env[5].value'],
  ['downloads.example-vendor.com', 'download', 'CronJob/shop/feed-sync', 'spec.jobTemplate.spec.template.spec.containers[0].command[2] (line 2)'],
  ['metrics-relay.partner.example.org', 'other', 'CronJob/shop/feed-sync', 'spec.jobTemplate.spec.template.spec.containers[0].command[2] (line 3)'],
  ['login.microsoftonline.com', 'oauth-oidc', 'ConfigMap/shop/app-config', 'data["settings.json"].auth.issuer'],
  ['updates.example-vendor.com', 'update-check', 'ConfigMap/shop/app-config', 'data["settings.json"].updates.url'],
  ['stats.grafana.org', 'telemetry', 'ConfigMap/shop/app-config', 'data["grafana.ini"].analytics.reporting_enabled'],
  ['grafana.com', 'update-check', 'ConfigMap/shop/app-config', 'data["grafana.ini"].analytics.check_for_updates'],
  ['accounts.google.com', 'oauth-oidc', 'ConfigMap/shop/app-config', 'data["grafana.ini"].auth.generic_oauth.auth_url'],
  ['events.example-telemetry.net', 'telemetry', 'ConfigMap/shop/app-config', 'data["app.toml"].telemetry.endpoint'],
  ['pg.managed-postgres.io', 'other', 'ConfigMap/shop/app-config', 'data["db.properties"]["db.url"]'],
  ['acme-v02.api.letsencrypt.org', 'acme', 'ClusterIssuer/letsencrypt', 'spec.acme.server'],
  ['db.partner-cloud.net', 'other', 'Service/shop/legacy-db', 'spec.externalName'],
  ['auth.example-sso.com', 'oauth-oidc', 'Ingress/shop/shop', 'metadata.annotations["nginx.ingress.kubernetes.io/auth-url"]'],
];

const id = (f: AuditFinding): string => `${f.host === '' ? f.rule : f.host}|${f.category}|${f.resource}|${f.path}`;

describe('airlock audit', { concurrency: true }, () => {
  // One run shared by the tests that read the same report.
  let externalJson: Promise<CliResult> | undefined;
  const external = (): Promise<CliResult> => (externalJson ??= run(['external', '--internal-domain', 'corp.example', '--format', 'json']));

  it('finds every planted external endpoint and phone-home switch, each once, where it stands, and nothing internal', async () => {
    const r = await external();
    assert.equal(r.code, 7, r.stderr);
    const findings = findingsOf(r.stdout);
    assert.deepEqual(findings.map(id).sort(), PLANTED.map((p) => p.join('|')).sort());
    // Cluster-local names and the internal registry beside them are not findings.
    assert.ok(!r.stdout.includes('orders.shop.svc.cluster.local'));
    assert.ok(!r.stdout.includes('registry.corp.example'));
    assert.ok(!r.stdout.includes('admin@example.com'), 'an email address is no endpoint');
  });

  it('shows the one string a finding came from, with passwords redacted, and a hint', async () => {
    const findings = findingsOf((await external()).stdout);
    const by = (host: string, path?: string): AuditFinding => findings.find((f) => (f.host === host || f.rule === host) && (path === undefined || f.path.includes(path)))!;
    assert.equal(by('accounts.google.com').value, 'auth_url = https://accounts.google.com/o/oauth2/auth');
    assert.equal(by('stats.grafana.org', 'grafana.ini').value, 'reporting_enabled = true');
    assert.equal(by('stats.grafana.org', 'env[5]').value, 'GF_ANALYTICS_REPORTING_ENABLED=true');
    assert.equal(by('do-not-track-off').value, 'DO_NOT_TRACK=0');
    assert.equal(by('downloads.example-vendor.com').value, 'curl -fsSL https://downloads.example-vendor.com/feeds/latest.tar.gz | tar xz -C /data');
    assert.equal(by('events.example-telemetry.net').value, 'endpoint = "https://events.example-telemetry.net/ingest"');
    const db = by('db.external-dbaas.com');
    assert.equal(db.value, 'postgres://app:REDACTED@db.external-dbaas.com:5432/app');
    assert.equal(db.port, 5432);
    assert.equal(by('acme-v02.api.letsencrypt.org').url, 'https://acme-v02.api.letsencrypt.org/directory');
    assert.equal(by('acme-v02.api.letsencrypt.org').severity, 'high');
    assert.equal(findings.find((f) => f.host === 'shop.example.com'), undefined, 'an Ingress host on a placeholder domain is no finding');
    for (const f of findings) {
      assert.ok(f.hint.length > 10, `a hint for ${id(f)}`);
      assert.equal(f.origin, 'external/app.yaml');
    }
  });

  it('passes a manifest set full of internal endpoints: cluster-local names, internal domain, private addresses, internal registry', async () => {
    const r = await run(['internal', '--internal-domain', 'corp.example', '--format', 'json', '--show-internal']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const table = await run(['internal', '--internal-domain', 'corp.example']);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /no external endpoints or phone-home settings found \(\d+ internal endpoints?, --show-internal lists them; 1 reference for people hidden \(--show-references\)\)/);
    const out = JSON.parse(r.stdout) as { findings: AuditFinding[]; internal: { host: string; reason: string }[] };
    assert.deepEqual(out.findings, []);
    const seen = new Set(out.internal.map((e) => e.host));
    for (const h of ['postgres.shop.svc.cluster.local', 'search.shop', 'ldap.corp.example', '10.1.2.3', '172.31.255.1', '192.168.10.20', '127.0.0.1', 'localhost', 'fd00:10::5', 'registry.corp.example', '10.20.0.5', 'kafka-1.kafka.shop.svc.cluster.local', 'cache.internal', 'ca.corp.example', 'db.corp.example']) {
      assert.ok(seen.has(h), `${h} seen and judged internal`);
    }
    assert.ok(seen.has('never-shown.corp.example'), 'Secrets are read');
    assert.ok(!r.stdout.includes('hunter2'), 'but no value from a Secret is shown');
    assert.ok(!r.stdout.includes('docs.public-vendor.com'), 'descriptions and comment lines are not settings');
  });

  it('without --internal-domain the internal domain is external, and --internal-cidr makes an address internal', async () => {
    const r = await run(['internal', '--format', 'json', '--internal-cidr', '203.0.113.0/24']);
    assert.equal(r.code, 7);
    const hosts = new Set(findingsOf(r.stdout).map((f) => f.host));
    assert.ok(hosts.has('registry.corp.example') && hosts.has('ldap.corp.example'));
    assert.ok(!hosts.has('10.1.2.3'));
  });

  it('exit code follows --fail-on; a table for people', async () => {
    const high = await run(['external', '--internal-domain', 'corp.example', '--fail-on', 'high']);
    assert.equal(high.code, 7);
    assert.match(high.stdout, /^SEVERITY\s+CATEGORY\s+HOST\s+RESOURCE\s+PATH\s+VALUE$/m);
    assert.match(high.stdout, /^high\s+acme\s+acme-v02\.api\.letsencrypt\.org:443\s+ClusterIssuer\/letsencrypt\s+spec\.acme\.server/m);
    assert.match(high.stdout, /What to do:\n/);
    assert.match(high.stdout, /21 findings: 6 high, 15 medium; .*failing \(--fail-on high\)/);
    const none = await run(['external', '--fail-on', 'none', '-q']);
    assert.equal(none.code, 0);
    // --fail-on compares severities: nothing here is critical.
    const findings = findingsOf((await external()).stdout);
    assert.equal(reachesFailOn(findings, 'critical'), false);
    assert.equal(reachesFailOn(findings, 'info'), true);
  });

  it('SARIF 2.1.0 for CI: one result per finding, rules with levels, file locations', async () => {
    const json = await external();
    const r = await run(['external', '--internal-domain', 'corp.example', '--format', 'sarif']);
    assert.equal(r.code, 7);
    const sarif = JSON.parse(r.stdout) as { version: string; runs: { tool: { driver: { name: string; rules: { id: string; defaultConfiguration: { level: string } }[] } }; results: { ruleId: string; ruleIndex: number; level: string; message: { text: string }; locations: { physicalLocation?: { artifactLocation: { uri: string } }; logicalLocations: { fullyQualifiedName: string }[] }[]; properties: { host: string } }[] }[] };
    assert.equal(sarif.version, '2.1.0');
    const run0 = sarif.runs[0]!;
    assert.equal(run0.tool.driver.name, 'airlock');
    assert.equal(run0.results.length, findingsOf(json.stdout).length);
    for (const res of run0.results) {
      assert.equal(run0.tool.driver.rules[res.ruleIndex]!.id, res.ruleId);
      assert.ok(['error', 'warning', 'note'].includes(res.level));
      assert.equal(res.locations[0]!.physicalLocation!.artifactLocation.uri, 'external/app.yaml');
      assert.ok(res.message.text.length > 20);
    }
    const acme = run0.results.find((x) => x.properties.host === 'acme-v02.api.letsencrypt.org')!;
    assert.equal(acme.level, 'error');
    assert.equal(acme.locations[0]!.logicalLocations[0]!.fullyQualifiedName, 'ClusterIssuer/letsencrypt:spec.acme.server');
  });

  it('--json gives one NDJSON result line with the findings', async () => {
    const r = await run(['external', '--internal-domain', 'corp.example', '--json']);
    assert.equal(r.code, 7);
    const res = resultOf(r.stdout);
    assert.equal(res.findings.length, PLANTED.length);
    assert.deepEqual(res.namespaces, ['shop'], 'the ClusterIssuer is cluster-scoped');
    assert.equal(res.failed, true);
  });

  it('a document that does not parse, and a JSON file inside a ConfigMap that does not, are findings; the rest is still audited', async () => {
    const r = await run(['broken', '--format', 'json']);
    assert.equal(r.code, 7, r.stderr);
    const findings = findingsOf(r.stdout);
    const manifest = findings.find((f) => f.rule === 'unparseable-manifest')!;
    assert.equal(manifest.resource, 'broken/manifests.yaml');
    assert.equal(manifest.path, 'document 2');
    assert.equal(manifest.severity, 'low');
    assert.match(manifest.value, /not valid YAML/);
    const config = findings.find((f) => f.rule === 'unparseable-config')!;
    assert.equal(config.resource, 'ConfigMap/shop/good-after');
    assert.equal(config.path, 'data["settings.json"]');
    assert.equal(config.severity, 'info');
    const hosts = findings.map((f) => f.host);
    assert.ok(hosts.includes('api.good-before.example.com') && hosts.includes('api.good-after.example.com'), 'documents around the broken one are audited');
    // Only unparseable input: --fail-on medium ignores it; an info-only config problem never fails by default.
    assert.equal((await run(['broken', '--fail-on', 'high'])).code, 0);
  });

  it('renders a chart with helm, values and --set decide what is found', async () => {
    const helm = helmPath();
    const plain = await run(['chart', '--helm', helm, '--format', 'json', '-n', 'monitoring']);
    assert.equal(plain.code, 7, plain.stderr);
    const base = findingsOf(plain.stdout);
    assert.deepEqual(base.map((f) => f.rule).sort(), ['external-registry-image', 'grafana-plugin-key-retrieval', 'grafana-plugin-update-check', 'grafana-reporting', 'grafana-update-check']);
    assert.equal(base.find((f) => f.rule === 'grafana-reporting')!.resource, 'ConfigMap/monitoring/release-name-grafana');
    assert.equal(base.find((f) => f.rule === 'grafana-reporting')!.origin, 'chart/templates/configmap.yaml');

    const more = await run(['chart', '--helm', helm, '--format', 'json', '--set', 'oauth.enabled=true', '--set', 'aiAssistant.endpoint=https://api.anthropic.com/v1']);
    const hosts = findingsOf(more.stdout).map((f) => `${f.host} ${f.category}`);
    assert.ok(hosts.includes('github.com oauth-oidc'), hosts.join(', '));
    assert.ok(hosts.includes('api.anthropic.com ai-api'), hosts.join(', '));

    // SARIF points into the template: the line of the setting whose value the template fills in.
    const sarif = JSON.parse((await run(['chart', '--helm', helm, '--format', 'sarif'])).stdout) as { runs: { results: { ruleId: string; locations: { physicalLocation: { artifactLocation: { uri: string }; region?: { startLine: number } } }[] }[] }[] };
    const reporting = sarif.runs[0]!.results.find((x) => x.ruleId === 'grafana-reporting')!.locations[0]!.physicalLocation;
    assert.equal(reporting.artifactLocation.uri, 'chart/templates/configmap.yaml');
    assert.equal(reporting.region?.startLine, 8);

    const airgap = await run(['chart', '--helm', helm, '-f', 'chart/airgap-values.yaml', '--internal-domain', 'corp.example']);
    assert.equal(airgap.code, 0, airgap.stdout + airgap.stderr);
  });

  it('bad flags are usage errors naming the flag', async () => {
    const cli = await run(['external', '--format', 'xml']);
    assert.equal(cli.code, 2);
    assert.match(cli.stderr, /--format must be one of table, json, sarif/);
    for (const [positionals, values, pattern] of [
      [[`${FIX}external`], { 'fail-on': 'severe' }, /--fail-on must be one of info, low, medium, high, critical, none/],
      [[`${FIX}external`], { 'internal-cidr': ['10.0.0.0/40'] }, /--internal-cidr "10\.0\.0\.0\/40" is not a CIDR block/],
      [[], {}, /audit needs at least one chart/],
      [[`${FIX}external`], { values: ['values.yaml'] }, /apply to charts, and no input is a chart/],
    ] as const) {
      await assert.rejects(
        auditCommand.run({ positionals: [...positionals], values: { ...values }, out: new Output({ quiet: true }), signal: new AbortController().signal }),
        (e: unknown) => isAirlockError(e) && e.exitCode === 2 && pattern.test(e.message),
      );
    }
    const missing = await run(['no-such-dir']);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no-such-dir does not exist/);
  });
});

describe('auditManifests (pure)', () => {
  const grafana = (env: { name: string; value: string }[]) => ({
    object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'g', namespace: 'mon' }, spec: { template: { spec: { containers: [{ name: 'g', image: 'registry.corp.example/grafana/grafana:10.4.1', env }] } } } },
  });
  const rules = (docs: { object: unknown }[]) => auditManifests(docs, { internalDomains: ['corp.example'] }).findings.map((f) => f.rule).sort();

  const allDefaults = ['grafana-plugin-key-retrieval-default', 'grafana-plugin-update-check-default', 'grafana-reporting-default', 'grafana-update-check-default'];
  const allOff = [
    { name: 'GF_ANALYTICS_REPORTING_ENABLED', value: 'false' },
    { name: 'GF_ANALYTICS_CHECK_FOR_UPDATES', value: 'false' },
    { name: 'GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES', value: 'false' },
    { name: 'GF_PLUGINS_PUBLIC_KEY_RETRIEVAL_DISABLED', value: 'true' },
  ];

  it('Grafana phones home by default: every switch left unset is flagged, each one until it is switched off', () => {
    assert.deepEqual(rules([grafana([])]), allDefaults);
    assert.deepEqual(rules([grafana(allOff)]), []);
    // Turning one off leaves its siblings flagged: the usage report off does not stop the update checks.
    const ini = { object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ini', namespace: 'mon' }, data: { 'grafana.ini': '[analytics]\nreporting_enabled = false\n' } } };
    assert.deepEqual(rules([grafana([]), ini]), allDefaults.filter((r) => r !== 'grafana-reporting-default'));
    // Switched on explicitly: the switch is the finding, not the default.
    assert.deepEqual(rules([grafana(allOff.slice(1)), { object: { ...ini.object, data: { 'grafana.ini': '[analytics]\nreporting_enabled = true\n' } } }]), ['grafana-reporting']);
    // The grafana-operator runs Grafana from a custom resource: same defaults.
    const cr = { object: { apiVersion: 'grafana.integreatly.org/v1beta1', kind: 'Grafana', metadata: { name: 'g', namespace: 'mon' }, spec: { config: { analytics: { reporting_enabled: 'false' } } } } };
    assert.deepEqual(rules([cr]), allDefaults.filter((r) => r !== 'grafana-reporting-default'));
  });

  it('implicit endpoints: a DNS-01 solver through a public DNS API', () => {
    const issuer = { object: { apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name: 'le', namespace: 'a' }, spec: { acme: { server: 'https://ca.corp.example/acme', solvers: [{ dns01: { cloudflare: { apiTokenSecretRef: { name: 'cf', key: 'token' } } } }] } } } };
    const f = auditManifests([issuer], { internalDomains: ['corp.example'] }).findings;
    assert.deepEqual(f.map((x) => [x.host, x.category, x.path]), [['api.cloudflare.com', 'acme', 'spec.acme.solvers[0].dns01.cloudflare']]);
  });

  it('custom resources, List kinds and webhook URLs are read too', () => {
    const list = {
      object: {
        apiVersion: 'v1',
        kind: 'List',
        items: [
          { apiVersion: 'example.com/v1', kind: 'Exporter', metadata: { name: 'e', namespace: 'a' }, spec: { sink: { url: 'https://ingest.vendor.example.com/v1' }, sendUsageStats: true } },
          { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'w' }, webhooks: [{ name: 'w.example.com', clientConfig: { url: 'https://hooks.vendor.example.com/validate' } }] },
        ],
      },
    };
    const f = auditManifests([list]).findings.map((x) => `${x.resource} ${x.path} ${x.host || x.rule}`);
    assert.deepEqual(f.sort(), [
      'Exporter/a/e spec.sendUsageStats telemetry-enabled',
      'Exporter/a/e spec.sink.url ingest.vendor.example.com',
      'ValidatingWebhookConfiguration/w webhooks[0].clientConfig.url hooks.vendor.example.com',
    ]);
  });
});
