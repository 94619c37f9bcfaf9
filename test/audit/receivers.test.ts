// Alertmanager receivers that name no URL still post to the service's public default (PagerDuty,
// Opsgenie, VictorOps, Telegram, ...): each is an endpoint unless the entry or the config's global
// section names another URL (test/fixtures/audit/receivers).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { auditManifests } from '../../src/audit/audit.ts';
import { withLines } from '../../src/audit/locate.ts';

const FIX = fileURLToPath(new URL('../fixtures/audit/', import.meta.url));
const FILE = 'receivers/alerting.yaml';
const docs = YAML.parseAllDocuments(readFileSync(`${FIX}${FILE}`, 'utf8')).map((d) => ({ object: d.toJS() as unknown, origin: FILE }));
const result = auditManifests(docs, { internalDomains: ['vendor.example'] });

describe('audit: Alertmanager receivers without a URL', () => {
  it('each goes to its default host; entries and configs that name their own URL do not', () => {
    assert.deepEqual(result.findings.map((f) => `${f.host}|${f.rule}|${f.resource}|${f.path}`).sort(), [
      'alert.victorops.com|alertmanager-receiver-default|ConfigMap/obs/alertmanager-edge|data["alertmanager.yml"].receivers[0].victorops_configs[0]',
      'api.telegram.org|alertmanager-receiver-default|Secret/obs/alertmanager-main|stringData["alertmanager.yaml"].receivers[3].telegram_configs[0]',
      'events.pagerduty.com|alertmanager-receiver-default|AlertmanagerConfig/obs/team-a|spec.receivers[0].pagerdutyConfigs[0]',
      'events.pagerduty.com|alertmanager-receiver-default|Secret/obs/alertmanager-main|stringData["alertmanager.yaml"].receivers[0].pagerduty_configs[0]',
      // A Slack receiver names its URL: found by it, as before.
      'hooks.slack.com|external-endpoint|Secret/obs/alertmanager-main|stringData["alertmanager.yaml"].receivers[3].slack_configs[0].api_url',
    ]);
    for (const f of result.findings.filter((x) => x.rule === 'alertmanager-receiver-default')) {
      assert.equal(f.category, 'other', 'where alerts go, not telemetry');
      assert.equal(f.severity, 'medium');
      assert.match(f.hint, new RegExp(`${f.host.replace(/\./g, '\\.')} unless the entry`));
    }
    // The Opsgenie entry sends to global.opsgenie_api_url (internal); pager-relay names its own.
    assert.ok(!result.findings.some((f) => f.host === 'api.opsgenie.com'));
    assert.ok(result.internal.some((e) => e.host === 'pager-relay.obs.svc'));
  });

  it('shows no value from a Secret, and lands on the line of the receiver list', async () => {
    const pd = result.findings.find((f) => f.resource === 'Secret/obs/alertmanager-main' && f.host === 'events.pagerduty.com')!;
    assert.equal(pd.value, "pagerduty_configs: no url, Alertmanager's default events.pagerduty.com");
    assert.ok(!JSON.stringify(result).includes('R0UT1NGK3Y'));
    const lines = readFileSync(`${FIX}${FILE}`, 'utf8').split('\n');
    for (const f of await withLines(result.findings, FIX)) {
      const key = f.rule === 'alertmanager-receiver-default' ? f.path.slice(f.path.lastIndexOf('.') + 1).replace(/\[[0-9]+\]$/, ':') : f.host;
      assert.ok(f.line !== undefined && lines[f.line - 1]!.includes(key), `${f.host} at line ${f.line}: ${lines[(f.line ?? 1) - 1]}`);
    }
  });
});
