// Grafana installs plugins at start from grafana.com: the settings that list them (GF_INSTALL_PLUGINS,
// GF_PLUGINS_PREINSTALL, grafana.ini [plugins] preinstall) are findings even though they carry no URL,
// also when the env var reads its value from a ConfigMap key (as the grafana chart renders it);
// switches read from a ConfigMap count like switches written in place (test/fixtures/audit/plugins).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { auditManifests } from '../../src/audit/audit.ts';
import { matchInstall } from '../../src/audit/rules.ts';
import { airlock } from '../helpers/cli.ts';

const FIX = fileURLToPath(new URL('../fixtures/audit/plugins/', import.meta.url));
const docs = YAML.parseAllDocuments(readFileSync(`${FIX}dashboards-ui.yaml`, 'utf8')).map((d) => ({ object: d.toJS() as unknown, origin: 'dashboards-ui.yaml' }));
const result = auditManifests(docs, { internalDomains: ['vendor.example'] });
const rows = (): string[] => result.findings.map((f) => `${f.host}|${f.rule}|${f.resource}|${f.path}`).sort();

describe('audit: Grafana plugin installs', () => {
  it('a plugin listed by id is a download from grafana.com, wherever the list stands', () => {
    assert.deepEqual(rows(), [
      'grafana.com|grafana-plugin-install|ConfigMap/obs/dash-ui-env|data.GF_INSTALL_PLUGINS',
      'grafana.com|grafana-plugin-install|ConfigMap/obs/dash-ui|data["grafana.ini"].plugins.preinstall',
      'grafana.com|grafana-plugin-install|Deployment/obs/dash-ui-edge|spec.template.spec.containers[0].env[0].value',
      'grafana.com|grafana-plugin-install|Deployment/obs/dash-ui|spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef',
      // The generic update switch stands in the ConfigMap; the env var reading it adds no second finding.
      '|update-check-enabled|ConfigMap/obs/dash-ui|data.check-updates',
      // A `URL;id` item comes from that URL, not from grafana.com.
      'plugins.vendor-mirror.net|external-download|Deployment/obs/dash-ui-edge|spec.template.spec.containers[0].env[0].value',
      'plugins.vendor-mirror.net|external-download|Deployment/obs/dash-ui-edge|spec.template.spec.containers[0].env[1].value',
    ].sort());
    for (const f of result.findings.filter((x) => x.rule === 'grafana-plugin-install')) {
      assert.equal(f.category, 'download');
      assert.equal(f.severity, 'medium');
      assert.match(f.hint, /grafana\.com/);
    }
  });

  it('an env var filled from a ConfigMap shows the value, the ConfigMap and the key', () => {
    const f = result.findings.find((x) => x.resource === 'Deployment/obs/dash-ui' && x.rule === 'grafana-plugin-install')!;
    assert.equal(f.value, 'GF_INSTALL_PLUGINS=vendor-clock-panel,vendor-pie-panel 2.1.0 (ConfigMap dash-ui, key plugins)');
  });

  it('switches read from a ConfigMap turn the phone-home defaults off like switches written in place', () => {
    // reporting_enabled=false comes through configMapKeyRef; the other two stand in grafana.ini.
    assert.ok(!result.findings.some((f) => f.rule.endsWith('-default')), rows().join('\n'));
  });

  it('the rule: ids (with versions) need grafana.com; URLs, empty lists and look-alike keys do not', () => {
    assert.equal(matchInstall('GF_INSTALL_PLUGINS', 'a-panel,b-panel 1.2.0')?.id, 'grafana-plugin-install');
    assert.equal(matchInstall('GF_PLUGINS_PREINSTALL_SYNC', 'a-panel@1.0.0')?.id, 'grafana-plugin-install');
    assert.equal(matchInstall('plugins.preinstall', 'a-panel', 'data["grafana.ini"].plugins.preinstall')?.id, 'grafana-plugin-install');
    assert.equal(matchInstall('plugins.preinstall', 'a-panel', 'data["app.ini"].plugins.preinstall'), undefined, 'only in grafana.ini');
    assert.equal(matchInstall('GF_INSTALL_PLUGINS', 'https://mirror.vendor.example/a.zip;a-panel'), undefined);
    assert.equal(matchInstall('GF_INSTALL_PLUGINS', ''), undefined);
    assert.equal(matchInstall('installPlugins', 'a-panel'), undefined, 'not Grafana');
    assert.equal(matchInstall('plugins', 'a-panel'), undefined, 'a bare key says nothing');
  });

  it('the table shows it with what to do', async () => {
    const r = await airlock(['audit', 'plugins', '--internal-domain', 'vendor.example'], { cwd: fileURLToPath(new URL('../fixtures/audit/', import.meta.url)), timeoutMs: 60_000 });
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stdout, /^medium\s+download\s+grafana\.com\s+Deployment\/obs\/dash-ui\s/m);
    assert.match(r.stdout, /^ {2}grafana-plugin-install \(4\): Grafana downloads these plugins from grafana\.com/m);
  });
});
