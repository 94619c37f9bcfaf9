// What is not egress, piece by piece: API group names, links for people by key and structure, SSH
// known_hosts lines, prose, placeholder hosts, XML namespaces, license headers, Go template names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiGroupsOf, isApiGroupName } from '../../src/audit/api-groups.ts';
import { auditManifests } from '../../src/audit/audit.ts';
import { extractEndpoints } from '../../src/audit/endpoints.ts';
import { lineOf } from '../../src/audit/locate.ts';
import { isPlaceholderHost, knownHostsHosts, looksLikeProse, referenceByKey } from '../../src/audit/references.ts';
import { categorize } from '../../src/audit/rules.ts';
import type { AuditFinding } from '../../src/audit/types.ts';

const cm = (data: Record<string, string>, name = 'c') => ({ object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'a' }, data } });
const hostsOf = (docs: { object: unknown }[]) => {
  const r = auditManifests(docs);
  return { findings: r.findings.map((f) => f.host).sort(), references: r.references.map((f) => `${f.host} ${f.rule}`).sort() };
};

describe('not endpoints, or links for people', () => {
  it('API group names: from the input, as <plural>.<group>, under well-known group domains; real hosts there stay hosts', () => {
    const groups = apiGroupsOf([
      { object: { apiVersion: 'widgets.acme-corp.com/v1', kind: 'Widget', metadata: { name: 'w' } } },
      { object: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', rules: [{ apiGroups: ['gadgets.vendor.io'] }] } },
      { object: { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', spec: { group: 'things.partner.net' } } },
    ]);
    for (const g of ['widgets.acme-corp.com', 'gadgets.vendor.io', 'things.partner.net']) assert.ok(groups.has(g), g);
    for (const h of ['widgets.acme-corp.com', 'things.things.partner.net', 'discovery.k8s.io', 'cert-manager.io', 'acme.cert-manager.io', 'monitoring.coreos.com', 'gateway.networking.k8s.io', 'kyverno.io']) {
      assert.equal(isApiGroupName(h, groups), true, h);
    }
    for (const h of ['registry.k8s.io', 'dl.k8s.io', 'get.helm.sh', 'collect.traefik.io', 'charts.longhorn.io', 'acme-corp.com', 'api.vendor.io']) {
      assert.equal(isApiGroupName(h, groups), false, h);
    }
  });

  it('group names in config files are dropped; a URL on a group domain still counts', () => {
    const r = hostsOf([
      cm({
        'exclusions.yaml': 'resource.exclusions:\n  - apiGroups: [cilium.io, "*.crossplane.io"]\n    kinds: [CiliumIdentity]\n',
        'ksm.yaml': 'spec:\n  resources:\n    - groupVersionKind: {group: cert-manager.io, kind: Certificate}\n',
        'kinds.txt': 'watch cert-manager.io/v1/Certificate and endpointslices.discovery.k8s.io now\n',
        'install.sh': 'set -e\ncurl -fsSLO https://dl.k8s.io/release/v1.30.0/bin/linux/amd64/kubectl\n',
      }),
    ]);
    assert.deepEqual(r.findings, ['dl.k8s.io']);
  });

  it('keys decide: runbooks, docs, links, prose, own address, browser origins', () => {
    for (const [keyPath, rule] of [
      ['runbook_url', 'reference-link'], ['groups.rules.annotations.dashboard', 'reference-link'], ['links.0.url', 'reference-link'], ['title_link', 'reference-link'],
      ['description', 'prose'], ['help', 'reference-link'], ['summary', 'prose'], ['message', 'prose'],
      ['spec.externalUrl', 'own-address'], ['server.root_url', 'own-address'], ['--web.external-url', 'own-address'], ['server.domain', 'own-address'], ['GF_SERVER_ROOT_URL', 'own-address'], ['oauth.redirect_uri', 'own-address'],
      ['cors.allowed_origins', 'ingress-host'], ['--cookie-domain', 'own-address'], ['--whitelist-domain', 'own-address'], ['EXT_ENDPOINT', 'own-address'],
    ] as const) {
      assert.equal(referenceByKey(keyPath, undefined)?.id, rule, keyPath);
    }
    for (const keyPath of ['url', 'api_url', 'webhook_url', 'server', 'endpoint', 'remote_write.0.url', 'smtp_smarthost', 'issuer']) assert.equal(referenceByKey(keyPath, undefined), undefined, keyPath);
  });

  it('server directives: CoreDNS forward, resolv.conf nameserver, nginx server and proxy_pass', () => {
    const r = hostsOf([cm({ Corefile: '.:53 {\n    errors\n    forward . 8.8.8.8 1.1.1.1\n    cache 30\n}\n', 'resolv.conf': 'nameserver 9.9.9.9\nsearch svc.cluster.local\n', 'nginx.conf': 'upstream app {\n  server 10.0.0.5:8080;\n  server 203.0.113.9:8080;\n}\n' })]);
    assert.deepEqual(r.findings, ['1.1.1.1', '203.0.113.9', '8.8.8.8', '9.9.9.9']);
  });

  it('a bare name under any country code counts, unless the label is a file extension', () => {
    assert.deepEqual(['api.vendor.ws', 'relay.partner.to', 'cdn.vendor.fm', 'main.go', 'Makefile.am', 'lib.rs', 'run.sh'].flatMap((t) => extractEndpoints(`connect ${t} now`).map((h) => h.host)), ['api.vendor.ws', 'relay.partner.to', 'cdn.vendor.fm']);
  });

  it('DNS zone filters name zones, not servers', () => {
    assert.deepEqual(extractEndpoints('--domain-filter=shop.io'), []);
    assert.deepEqual(extractEndpoints('shop.io', { key: '--exclude-domains' }), []);
    assert.deepEqual(extractEndpoints('--server=dns.shop.io').map((h) => h.host), ['dns.shop.io']);
  });

  it('SSH known_hosts lines pin keys; they name hosts without connecting', () => {
    assert.deepEqual(knownHostsHosts('github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'), ['github.com']);
    assert.deepEqual(knownHostsHosts('[ssh.github.com]:443,gh.example.org ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY='), ['ssh.github.com', 'gh.example.org']);
    assert.deepEqual(knownHostsHosts('@cert-authority *.corp.example ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7'), []);
    assert.equal(knownHostsHosts('ssh git@github.com'), undefined);
    const r = hostsOf([cm({ ssh_known_hosts: 'gitlab.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAI\nbitbucket.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89\n' })]);
    assert.deepEqual(r.findings, []);
    assert.deepEqual(r.references, ['bitbucket.org ssh-known-host', 'gitlab.com ssh-known-host']);
  });

  it('prose mentions names; commands and settings use them', () => {
    assert.equal(looksLikeProse('Ships logs to the hosted cluster; see logs-vendor.com for details.'), true);
    assert.equal(looksLikeProse('curl -fsSL downloads.vendor.com/x.tar.gz | tar xz'), false);
    assert.equal(looksLikeProse('server=db.vendor.com port=5432'), false);
    assert.equal(looksLikeProse('db.vendor.com'), false);
  });

  it('placeholder hosts are the example and test names', () => {
    for (const h of ['chart-example.local', 'example.com', 'grafana.example.com', 'x.example.org', 'app.test', 'a.example', 'foo.invalid']) assert.equal(isPlaceholderHost(h), true, h);
    for (const h of ['example-vendor.com', 'grafana.com', 'myexample.com']) assert.equal(isPlaceholderHost(h), false, h);
  });

  it('Ingress hosts are inbound: placeholders are internal, real names are references, and links to them are the app’s own address', () => {
    const ing = { object: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'i', namespace: 'a' }, spec: { rules: [{ host: 'grafana.shop.io' }, { host: 'chart-example.local' }] } } };
    const r = auditManifests([ing, cm({ 'grafana.ini': '[auth.generic_oauth]\nsignout_redirect_url = https://grafana.shop.io/login\n[smtp]\nhost = smtp.shop.io:25\n' })]);
    assert.deepEqual(r.findings.map((f) => f.host), ['smtp.shop.io']);
    assert.deepEqual(r.references.map((f) => `${f.host} ${f.rule}`).sort(), ['grafana.shop.io ingress-host', 'grafana.shop.io own-address']);
    assert.ok(r.internal.some((e) => e.host === 'chart-example.local'));
  });

  it('Grafana dashboards, rule files and notification templates are for people; the same URL in a setting is egress', () => {
    const dashboard = JSON.stringify({ title: 'D', uid: 'd', schemaVersion: 39, links: [{ url: 'https://vendor-docs.io/x' }], panels: [{ type: 'text', options: { content: 'see https://status.vendor.io' } }] });
    const falco = '- list: miner_domains\n  items: [pool.minexmr.com, xmr.pool-vendor.net]\n- rule: Detect outbound to miners\n  condition: fd.sip.name in (miner_domains)\n';
    const r = hostsOf([cm({ 'd.json': dashboard, 'falco_rules.yaml': falco, 'n.tmpl': '{{ define "msg.link" }}https://runbooks.vendor.io/{{ .Alert }}{{ end }}', 'app.yaml': 'status_url: https://status.vendor.io\n' })]);
    assert.deepEqual(r.findings, ['status.vendor.io']);
    for (const ref of ['pool.minexmr.com detection-rule', 'runbooks.vendor.io notification-template', 'status.vendor.io dashboard-text', 'vendor-docs.io dashboard-text', 'xmr.pool-vendor.net detection-rule']) {
      assert.ok(r.references.includes(ref), `${ref} in ${r.references.join(', ')}`);
    }
  });

  it('XML namespaces, DTDs and license headers in block comments are not endpoints; the real URL beside them is', () => {
    const xml = `<?xml version="1.0"?>\n<!--\n  Licensed under the Apache License, Version 2.0\n  http://www.apache.org/licenses/LICENSE-2.0\n-->\n<!DOCTYPE configuration PUBLIC "-//X//DTD//EN" "http://logging.vendor.org/dtd/config.dtd">\n<configuration xmlns="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://ns.vendor.org/cfg http://ns.vendor.org/cfg.xsd">\n  <appender url="https://logs.saas-vendor.com/in"/>\n</configuration>\n`;
    assert.deepEqual(hostsOf([cm({ 'logback.xml': xml })]).findings, ['logs.saas-vendor.com']);
  });

  it('a script line that prints a message mentions URLs; one that writes or pipes them uses them', () => {
    const r = hostsOf([cm({ 'run.sh': '#!/bin/sh\necho "Setup done, docs at https://github.com/org/app#readme"\necho "server https://sync.vendor.io" > /etc/app.conf\ncurl -s https://api.vendor.io/ping\n' })]);
    assert.deepEqual(r.findings, ['api.vendor.io', 'sync.vendor.io']);
    assert.deepEqual(r.references, ['github.com prose']);
  });

  it('Grafana and Loki share the reporting key: each product’s switch turns off its own report only', () => {
    const deploy = (name: string, image: string, env: { name: string; value: string }[] = []) => ({ object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'a' }, spec: { template: { spec: { containers: [{ name, image, env }] } } } } });
    const grafanaOff = [
      { name: 'GF_ANALYTICS_REPORTING_ENABLED', value: 'false' }, { name: 'GF_ANALYTICS_CHECK_FOR_UPDATES', value: 'false' },
      { name: 'GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES', value: 'false' }, { name: 'GF_PLUGINS_PUBLIC_KEY_RETRIEVAL_DISABLED', value: 'true' },
    ];
    const rules = (docs: { object: unknown }[]) => auditManifests(docs).findings.filter((f) => f.rule.endsWith('-default') || f.rule.startsWith('grafana-')).map((f) => f.rule);
    assert.deepEqual(rules([deploy('g', 'grafana/grafana:11.1.0', grafanaOff), deploy('l', 'grafana/loki:3.1.0')]), ['loki-reporting-default']);
    assert.deepEqual(rules([deploy('g', 'grafana/grafana:11.1.0', grafanaOff), deploy('l', 'grafana/loki:3.1.0'), cm({ 'config.yaml': 'analytics:\n  reporting_enabled: false\n' })]), []);
  });

  it('a broken file in a Secret is reported without quoting it', () => {
    const secret = { object: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'a' }, stringData: { 'app.ini': '[db\npassword = hunter2-very-secret\n', 'DB_URL': 'https://u:hunter2@db.vendor.io/x' } } };
    const r = auditManifests([secret]);
    const shown = JSON.stringify(r);
    assert.ok(!shown.includes('hunter2'), shown);
    assert.deepEqual(r.findings.map((f) => [f.rule, f.host, f.value]).sort(), [
      ['external-endpoint', 'db.vendor.io', 'DB_URL: (value of a Secret, not shown)'],
      ['unparseable-config', '', 'INI does not parse: (details not shown: the file is in a Secret)'],
    ]);
  });

  it('a grafana-operator dashboard: its JSON is for people, a grafana.com id is a download', () => {
    const json = JSON.stringify({ title: 'N', uid: 'n', panels: [{ links: [{ url: 'https://docs.vendor.io/p' }] }] });
    const r = auditManifests([
      { object: { apiVersion: 'grafana.integreatly.org/v1beta1', kind: 'GrafanaDashboard', metadata: { name: 'a', namespace: 'm' }, spec: { json } } },
      { object: { apiVersion: 'grafana.integreatly.org/v1beta1', kind: 'GrafanaDashboard', metadata: { name: 'b', namespace: 'm' }, spec: { grafanaCom: { id: 1860, revision: 37 } } } },
    ]);
    assert.deepEqual(r.findings.map((f) => `${f.resource} ${f.host} ${f.category}`), ['GrafanaDashboard/m/b grafana.com download']);
    assert.deepEqual(r.references.map((f) => `${f.resource} ${f.host} ${f.rule}`), ['GrafanaDashboard/m/a docs.vendor.io dashboard-text']);
  });

  it('Go template actions name templates, not hosts', () => {
    assert.deepEqual(extractEndpoints('{{ define "slack.link" }}{{ template "email.subject" . }}{{ end }}'), []);
    assert.deepEqual(extractEndpoints('{{ define "x" }}sent to alerts.vendor.io{{ end }}').map((h) => h.host), ['alerts.vendor.io']);
  });

  it('categories follow the key where the host only looks like a download: update.url is an update check', () => {
    assert.equal(categorize('downloads.vendor.com', '/updates.xml', 'update.url').category, 'update-check');
    assert.equal(categorize('vendor-software.com', '/api/check', 'update.url').category, 'update-check');
    assert.equal(categorize('downloads.vendor.com', '/feed.tar.gz', 'feed.url').category, 'download');
    assert.equal(categorize('registry-1.docker.io', undefined, 'update.url').category, 'registry');
  });

  it('a finding is placed on the line holding its value, after the line naming its resource', () => {
    const lines = ['kind: ConfigMap', 'metadata:', '  name: a', 'data:', '  url: https://x.vendor.io', '---', 'metadata:', '  name: b', 'data:', '  url: https://x.vendor.io'];
    const f = (resource: string, value: string): AuditFinding => ({ host: 'x.vendor.io', category: 'other', severity: 'medium', rule: 'external-endpoint', resource, path: 'data.url', value, hint: '' });
    assert.equal(lineOf(lines, f('ConfigMap/ns/b', 'https://x.vendor.io')), 10);
    assert.equal(lineOf(lines, f('ConfigMap/ns/a', 'https://x.vendor.io')), 5);
    assert.equal(lineOf(lines, f('ConfigMap/ns/b', 'cut to fit…')), 10, 'a cut value falls back to the host');
    assert.equal(lineOf(lines, { ...f('ConfigMap/ns/b', 'nothing like it'), host: 'y.vendor.io' }), 9 + 1, 'not found: the line of the embedded file key');
    assert.equal(lineOf(lines, { ...f('ConfigMap/ns/b', 'nothing like it'), host: 'y.vendor.io', path: 'spec.url' }), undefined, 'not found anywhere: no line');
  });
});
