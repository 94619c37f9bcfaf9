// `airlock audit` on the shapes GitOps charts use (test/fixtures/audit/gitops): the app's own
// address set once under a self key (`externalUrl`) and repeated elsewhere under keys no rule knows
// (a notifier's link context, a PUBLIC_HOST env) is a reference everywhere, not egress; login
// connectors (`connectors[].type: github|gitlab|google`) that name no URL still reach a public
// provider and are findings, unless `hostName`/`baseURL` points them at an internal instance.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sarifErrors } from './support/sarif-shape.ts';
import type { AuditFinding } from '../../src/audit/types.ts';
import { auditCli } from './support/audit-cli.ts';

const run = auditCli;
type Out = { findings: AuditFinding[]; references?: AuditFinding[] };

describe('audit: GitOps chart shapes', () => {
  it('treats every occurrence of the own address as a reference and finds connectors that default to public providers', async () => {
    const r = await run(['gitops', '--format', 'json', '--show-references', '--internal-domain', 'corp.internal']);
    assert.equal(r.code, 7, r.stderr);
    const out = JSON.parse(r.stdout) as Out;
    const found = out.findings.map((f) => `${f.host} ${f.rule} ${f.path}`).sort();
    assert.deepEqual(found, [
      'accounts.google.com login-connector-default data["broker.config"].connectors[3].type',
      'github.com login-connector-default data["broker.config"].connectors[0].type',
      'gitlab.com login-connector-default data["broker.config"].connectors[2].type',
      'hooks.partner-alerts.com external-endpoint data["service.webhook"]',
      'vendor.example external-registry-image spec.template.spec.containers[0].image',
    ]);
    for (const f of out.findings.filter((x) => x.rule === 'login-connector-default')) {
      assert.equal(f.category, 'oauth-oidc');
      assert.equal(f.severity, 'high');
    }
    const own = (out.references ?? []).filter((f) => f.host === 'cd.vendor-gitops.com').map((f) => `${f.rule} ${f.resource} ${f.path}`).sort();
    assert.deepEqual(own, [
      'own-address ConfigMap/default/release-name-console data.externalUrl',
      'own-address ConfigMap/default/release-name-notifier data.context',
      'own-address Deployment/default/release-name-console spec.template.spec.containers[0].env[0].value',
    ]);
  });

  it('writes SARIF that code scanning accepts for the connector rule', async () => {
    const r = await run(['gitops', '--format', 'sarif', '--internal-domain', 'corp.internal']);
    assert.deepEqual(sarifErrors(JSON.parse(r.stdout)), []);
    assert.match(r.stdout, /login-connector-default/);
  });
});
