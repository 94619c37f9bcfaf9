// The data-driven parts: config files inside ConfigMaps flattened to settings, phone-home
// switches (on and off, inverted ones like DO_NOT_TRACK), and categories for known hosts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { declaredFormat, parseConfig, sniffFormat, type ConfigEntry } from '../../src/audit/config-formats.ts';
import { categorize, matchSwitch, normaliseKey } from '../../src/audit/rules.ts';

const flat = (entries: ConfigEntry[]): Record<string, unknown> => Object.fromEntries(entries.map((e) => [e.path.join('.'), e.value]));
function parsed(format: Parameters<typeof parseConfig>[0], text: string): ConfigEntry[] {
  const r = parseConfig(format, text);
  if ('error' in r) assert.fail(`${format} did not parse: ${r.error}`);
  return r.entries;
}

describe('config formats', () => {
  it('INI: sections, comments, both separators, quoted values, git-style subsections, bare flags; each with its line', () => {
    const e = parsed('ini', '; grafana.ini\n[analytics]\nreporting_enabled = true\n# comment\ncheck_for_updates: false\n[auth.generic_oauth]\nauth_url = "https://accounts.google.com/o/oauth2/auth"\n[remote "origin"]\nurl = https://git.example.com/x\n[mysqld]\nskip-name-resolve\n');
    assert.deepEqual(flat(e), {
      'analytics.reporting_enabled': 'true',
      'analytics.check_for_updates': 'false',
      'auth.generic_oauth.auth_url': 'https://accounts.google.com/o/oauth2/auth',
      'remote.origin.url': 'https://git.example.com/x',
      'mysqld.skip-name-resolve': true,
    });
    assert.equal(e[0]!.raw, 'reporting_enabled = true');
    assert.equal(e[0]!.line, 3);
  });

  it('TOML: tables, arrays of tables, dotted and quoted keys, strings of every kind, arrays, inline tables', () => {
    const e = parsed('toml', `title = "x"\n[telemetry]\nendpoint = "https://events.example.net/ingest" # where\nenabled = true\n[[servers]]\nurl = 'http://a.example.com'\n[[servers]]\nurl = """\nhttp://b.example.com"""\n[a."b.c"]\nd.e = [ "x", 2, { f = "g" } ]\nwhen = 1979-05-27T07:32:00Z\n`);
    assert.deepEqual(flat(e), {
      title: 'x',
      'telemetry.endpoint': 'https://events.example.net/ingest',
      'telemetry.enabled': true,
      'servers.0.url': 'http://a.example.com',
      'servers.1.url': 'http://b.example.com',
      'a.b.c.d.e.0': 'x',
      'a.b.c.d.e.1': 2,
      'a.b.c.d.e.2.f': 'g',
      'a.b.c.when': '1979-05-27T07:32:00Z',
    });
  });

  it('properties and dotenv: separators, continuations, export', () => {
    const e = parsed('properties', 'db.url=jdbc:postgresql://pg.example.io:5432/app\nkafka.servers : a:9092,\\\n  b:9092\n! comment\nexport DO_NOT_TRACK=1\nkey value with spaces\n');
    assert.deepEqual(flat(e), { 'db.url': 'jdbc:postgresql://pg.example.io:5432/app', 'kafka.servers': 'a:9092,b:9092', DO_NOT_TRACK: '1', key: 'value with spaces' });
  });

  it('JSON and YAML flatten to paths', () => {
    assert.deepEqual(flat(parsed('json', '{"a": {"b": [1, "https://x.example.com"]}, "c": null}')), { 'a.b.0': 1, 'a.b.1': 'https://x.example.com', c: null });
    assert.deepEqual(flat(parsed('yaml', 'a:\n  b: true\nlist:\n  - url: http://y.example.com\n')), { 'a.b': true, 'list.0.url': 'http://y.example.com' });
  });

  it('reports what does not parse, with where', () => {
    for (const [format, text, message] of [
      ['json', '{"url": "https://x", ', /JSON|position|end/i],
      ['yaml', 'a: [unclosed\n', /flow|sequence|end|indent/i],
      ['toml', '[telemetry]\nendpoint = https://not-quoted\n', /line 2/],
      ['toml', 'x = "unterminated\n', /line 1: string not closed/],
      ['ini', '[analytics\nreporting_enabled = true\n', /line 1/],
    ] as const) {
      const r = parseConfig(format, text);
      assert.ok('error' in r, `${format} ${JSON.stringify(text)} should not parse`);
      assert.match(r.error, message);
    }
  });

  it('knows formats by extension and sniffs the rest', () => {
    assert.equal(declaredFormat('grafana.ini'), 'ini');
    assert.equal(declaredFormat('app.TOML'), 'toml');
    assert.equal(declaredFormat('settings.json'), 'json');
    assert.equal(declaredFormat('.env'), 'properties');
    assert.equal(declaredFormat('nginx.conf'), undefined);
    assert.equal(sniffFormat('{"a": 1}'), 'json');
    assert.equal(sniffFormat('[analytics]\nreporting_enabled = true\n'), 'ini');
    assert.equal(sniffFormat('[server]\nurl = "http://x"\nport = 8080\n'), 'ini');
    assert.equal(sniffFormat('[server]\nurl = "http://x"\nname = "y"\n'), 'toml');
    assert.equal(sniffFormat('A=1\nB=2\n'), 'properties');
    assert.equal(sniffFormat('server:\n  url: http://x\n'), 'yaml');
    assert.equal(sniffFormat('#!/bin/sh\nset -e\ncurl https://x.example.com | sh\n'), 'text');
    assert.equal(sniffFormat('server {\n  listen 80;\n}\n'), 'text');
  });
});

describe('phone-home switches', () => {
  const on: [string, unknown, string][] = [
    ['GF_ANALYTICS_REPORTING_ENABLED', 'true', 'grafana-reporting'],
    ['analytics.reporting_enabled', true, 'grafana-reporting'],
    ['spec.config.analytics.reporting_enabled', 'True', 'grafana-reporting'],
    ['GF_ANALYTICS_CHECK_FOR_UPDATES', '1', 'grafana-update-check'],
    ['analytics.check_for_plugin_updates', 'yes', 'grafana-plugin-update-check'],
    ['global.sendAnonymousUsage', true, 'traefik-anonymous-usage'],
    ['--global.sendanonymoususage', true, 'traefik-anonymous-usage'],
    ['--global.checknewversion', 'true', 'traefik-version-check'],
    ['DO_NOT_TRACK', '0', 'do-not-track-off'],
    ['NEXT_TELEMETRY_DISABLED', '0', 'telemetry-not-disabled'],
    ['DOTNET_CLI_TELEMETRY_OPTOUT', 'false', 'telemetry-not-disabled'],
    ['HOMEBREW_NO_ANALYTICS', 'false', 'telemetry-not-disabled'],
    ['CHECKPOINT_DISABLE', '', 'update-check-not-disabled'],
    ['ARGOCD_TELEMETRY', 'true', 'telemetry-enabled'],
    ['SCARF_ANALYTICS', 'true', 'telemetry-enabled'],
    ['telemetry.enabled', true, 'telemetry-enabled'],
    ['telemetry.optIn', true, 'telemetry-enabled'],
    ['--enable-telemetry', true, 'telemetry-enabled'],
    ['usageStats', 'on', 'telemetry-enabled'],
    ['updates.check_for_updates', true, 'update-check-enabled'],
    ['APP_UPDATE_CHECK', 'enabled', 'update-check-enabled'],
    ['cron.update_checker.ENABLED', 'true', 'update-check-enabled'],
    ['N8N_VERSION_NOTIFICATIONS_ENABLED', 'true', 'update-check-enabled'],
    ['MM_SERVICESETTINGS_ENABLESECURITYFIXALERT', 'true', 'update-check-enabled'],
    ['SCANNER_TRIVY_SKIP_UPDATE', 'false', 'update-check-not-disabled'],
    ['--skip-db-update', 'false', 'update-check-not-disabled'],
    ['disableHeartbeat', false, 'update-check-not-disabled'],
    ['N8N_DIAGNOSTICS_ENABLED', 'true', 'telemetry-enabled'],
    ['MM_LOGSETTINGS_ENABLEDIAGNOSTICS', 'true', 'telemetry-enabled'],
    ['AIRFLOW__USAGE_DATA_COLLECTION__ENABLED', 'True', 'telemetry-enabled'],
    ['MINIO_CALLHOME_ENABLE', 'on', 'telemetry-enabled'],
  ];
  for (const [key, value, rule] of on) {
    it(`${key}=${String(value)} phones home (${rule})`, () => {
      const m = matchSwitch(key, value);
      if (key === 'CHECKPOINT_DISABLE') {
        assert.equal(m, undefined, 'an empty value says nothing');
        return;
      }
      assert.equal(m?.rule.id, rule);
      assert.equal(m?.on, true);
    });
  }

  const off: [string, unknown][] = [
    ['GF_ANALYTICS_REPORTING_ENABLED', 'false'],
    ['analytics.reporting_enabled', false],
    ['DO_NOT_TRACK', '1'],
    ['NEXT_TELEMETRY_DISABLED', '1'],
    ['CHECKPOINT_DISABLE', '1'],
    ['telemetry.enabled', 'off'],
  ];
  for (const [key, value] of off) {
    it(`${key}=${String(value)} keeps it off (and is still recognised)`, () => {
      const m = matchSwitch(key, value);
      assert.ok(m, 'recognised');
      assert.equal(m.on, false);
    });
  }

  const unrelated: [string, unknown][] = [
    ['reporting_enabled', true], // without [analytics] it is some other report
    ['metrics.enabled', true],
    ['TELEMETRY_ENDPOINT', 'https://x.example.com'], // a URL, judged as an endpoint instead
    ['replicas', 3],
    ['alerting.enabled', true],
  ];
  for (const [key, value] of unrelated) it(`${key}=${String(value)} is no switch`, () => assert.equal(matchSwitch(key, value)?.on ?? false, false));

  it('normalises keys from every notation to one', () => {
    assert.equal(normaliseKey('--global.sendAnonymousUsage'), 'global_send_anonymous_usage');
    assert.equal(normaliseKey('GF_ANALYTICS_REPORTING_ENABLED'), 'gf_analytics_reporting_enabled');
    assert.equal(normaliseKey('spec.items[2].checkForUpdates'), 'spec_items_check_for_updates');
  });
});

describe('categories', () => {
  const table: [string, string | undefined, string, string][] = [
    ['acme-v02.api.letsencrypt.org', '/directory', 'spec.acme.server', 'acme'],
    ['ca.example.com', '/acme/directory', 'spec.acme.server', 'acme'],
    ['api.openai.com', '/v1', 'OPENAI_BASE', 'ai-api'],
    ['llm.vendor.com', '/v1', 'ASSISTANT_LLM_ENDPOINT', 'ai-api'],
    ['login.microsoftonline.com', '/x/v2.0', 'auth.issuer', 'oauth-oidc'],
    ['github.com', '/login/oauth/authorize', 'auth_url', 'oauth-oidc'],
    ['sso.vendor.com', '/oauth2/auth', 'annotations', 'oauth-oidc'],
    ['o1.ingest.sentry.io', '/1', 'SENTRY_DSN', 'telemetry'],
    ['stats.grafana.org', undefined, 'x', 'telemetry'],
    ['collector.vendor.com', undefined, 'OTEL_EXPORTER_OTLP_ENDPOINT', 'telemetry'],
    ['updates.vendor.com', '/check', 'x', 'update-check'],
    ['api.github.com', '/repos/a/b/releases/latest', 'x', 'update-check'],
    ['quay.io', undefined, 'mirror', 'registry'],
    ['downloads.vendor.com', '/x.tar.gz', 'x', 'download'],
    ['raw.githubusercontent.com', '/a/b/main/install.sh', 'x', 'download'],
    ['db.vendor.com', undefined, 'DATABASE_URL', 'other'],
    // Alert receivers are where alerts go, not telemetry: `events.*` names a pager here.
    ['events.pagerduty.com', '/v2/enqueue', 'alertmanager.yaml.receivers.webhook_configs.url', 'other'],
    ['events.eu.pagerduty.com', '/v2/enqueue', 'receivers.pagerduty_configs.url', 'other'],
    ['api.opsgenie.com', '/v2/alerts', 'OPSGENIE_API_URL', 'other'],
    ['hooks.slack.com', '/services/x', 'receivers.slack_configs.api_url', 'other'],
    ['events.vendor-analytics.com', '/collect', 'x', 'telemetry'],
  ];
  for (const [host, path, key, want] of table) {
    it(`${host}${path ?? ''} under ${key} is ${want}`, () => assert.equal(categorize(host, path, key).category, want));
  }
});
