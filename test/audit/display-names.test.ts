// `airlock audit` on names for people (test/fixtures/audit/labels): a login connector's
// `name: GitLab.com`, an item's `label`, `displayName` or `title` with a bare host-like value is a
// label shown to people, not an endpoint: at most a `display-name` (or `prose`) reference. Under the
// same keys a value with a port, a scheme or a path is still an address, and the connector that
// really reaches gitlab.com is still found by its `type`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sarifErrors } from './support/sarif-shape.ts';
import { auditManifests } from '../../src/audit/audit.ts';
import type { AuditFinding } from '../../src/audit/types.ts';
import { auditCli } from './support/audit-cli.ts';

const run = auditCli;
type Out = { findings: AuditFinding[]; references?: AuditFinding[] };

describe('audit: display names are not endpoints', () => {
  it('reports connector and item names as references, and the real endpoints beside them as findings', async () => {
    const r = await run(['labels', '--format', 'json', '--show-references', '--internal-domain', 'corp.internal']);
    assert.equal(r.code, 7, r.stderr);
    const out = JSON.parse(r.stdout) as Out;
    assert.deepEqual(out.findings.map((f) => `${f.host} ${f.rule} ${f.path}`).sort(), [
      'gitlab.com external-download data["catalogue.yaml"][3].name',
      'gitlab.com login-connector-default data["config.yaml"].connectors[0].type',
      'hooks.vendor-chat.com external-endpoint data["catalogue.yaml"][2].name',
      'login.partner-idp.com external-oauth-oidc data["config.yaml"].connectors[1].config.issuer',
      'nats.vendor-bus.com external-endpoint data["catalogue.yaml"][1].name',
      'status.vendor-status.io external-endpoint data["catalogue.yaml"][0].url',
      'vendor.example external-registry-image spec.template.spec.containers[0].image',
    ]);
    const refs = (out.references ?? []).map((f) => `${f.host} ${f.rule} ${f.path}`).sort();
    assert.deepEqual(refs, [
      'console.vendor-apps.io prose data["catalogue.yaml"][0].displayName',
      'github.com display-name data["config.yaml"].connectors[2].name',
      'gitlab.com display-name data["config.yaml"].connectors[0].name',
      'login.partner-idp.com display-name data["config.yaml"].connectors[1].name',
      'partner-billing.com prose data["catalogue.yaml"][0].title',
      'portal.vendor-apps.io display-name data["config.yaml"].staticClients[0].name',
      'status.vendor-status.io display-name data["catalogue.yaml"][0].label',
    ]);
  });

  it('keys that only end in "name" (hostName, server_name, nameserver) keep their meaning', () => {
    const cm = (data: Record<string, string>) => ({ object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'a' }, data } });
    const res = auditManifests([cm({ 'a.yaml': 'connectors:\n  - type: github\n    name: GitHub\n    config:\n      hostName: ghe.vendor-scm.com\n', 'resolv.conf': 'nameserver 9.9.9.9\nsearch svc.cluster.local\n', 'nginx.conf': 'server {\n  server_name shop.vendor-apps.io;\n}\n' })]);
    assert.deepEqual(res.findings.map((f) => `${f.host} ${f.path}`).sort(), ['9.9.9.9 data["resolv.conf"] (line 1)', 'ghe.vendor-scm.com data["a.yaml"].connectors[0].config.hostName']);
    assert.deepEqual(res.references.map((f) => `${f.host} ${f.rule}`), ['shop.vendor-apps.io own-address']);
    // A name in a plain argument or env value is judged as before: only the key `name` is a label.
    const env = auditManifests([{ object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'a' }, spec: { containers: [{ name: 'c', image: 'reg.corp.example/c:1', env: [{ name: 'UPSTREAM_NAME', value: 'mirror.vendor-pkgs.com' }] }] } } }], { internalDomains: ['corp.example'] });
    assert.deepEqual(env.findings.map((f) => f.host), ['mirror.vendor-pkgs.com']);
  });

  it('writes SARIF that code scanning accepts with the display-name references', async () => {
    const r = await run(['labels', '--format', 'sarif', '--show-references', '--internal-domain', 'corp.internal']);
    assert.deepEqual(sarifErrors(JSON.parse(r.stdout)), []);
    assert.match(r.stdout, /"display-name"/);
  });
});
