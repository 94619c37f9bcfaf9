// Endpoints in one string: what counts (URLs of any scheme, DSNs, host:port, keyed host names)
// and what must never count (files, label keys, emails, versions, proxy bypass lists).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { extractEndpoints } from '../../src/audit/endpoints.ts';

const hosts = (text: string, key?: string): string[] => extractEndpoints(text, key === undefined ? {} : { key }).map((h) => (h.port === undefined ? h.host : `${h.host}:${h.port}`));

describe('extractEndpoints', () => {
  const found: [string, string | undefined, string[]][] = [
    ['https://api.openai.com/v1', undefined, ['api.openai.com:443']],
    ['http://Example.COM./path?q=1', undefined, ['example.com:80']],
    ['postgres://app:s3cret@db.example.com:5432/app', undefined, ['db.example.com:5432']],
    ['jdbc:postgresql://pg.example.io:5433/app?ssl=true', undefined, ['pg.example.io:5433']],
    ['mongodb://m1.example.net:27017,m2.example.net:27018/db?replicaSet=rs0', undefined, ['m1.example.net:27017', 'm2.example.net:27018']],
    ['https://f00d@o45.ingest.sentry.io/12', 'SENTRY_DSN', ['o45.ingest.sentry.io:443']],
    ['redis://:pw@[fd00::5]:6380/0', undefined, ['fd00::5:6380']],
    ['collector.saas.io:4317', 'OTEL_EXPORTER_OTLP_ENDPOINT', ['collector.saas.io:4317']],
    ['broker-1.kafka.example.com:9092,broker-2.kafka.example.com:9092', 'bootstrap.servers', ['broker-1.kafka.example.com:9092', 'broker-2.kafka.example.com:9092']],
    ['collector.corp.example', 'OTEL_HOST', ['collector.corp.example']],
    ['10.1.2.3', 'DB_HOST', ['10.1.2.3']],
    ['--server=api.vendor.com --verbose', undefined, ['api.vendor.com']],
    ['curl -fsSL https://get.example.com/install.sh | sh', undefined, ['get.example.com:443']],
    ['nc -z metrics.example.org 8125', undefined, ['metrics.example.org']],
    ['host=db.example.com port=5432 dbname=app', undefined, ['db.example.com']],
    ['Server=tcp:sql.example.net,1433;Database=app', undefined, ['sql.example.net']],
    ['"url": "https://hooks.slack.com/services/T0/B0/x"', undefined, ['hooks.slack.com:443']],
    ['-Dhttp.proxyHost=proxy.example.com -Dhttp.proxyPort=3128', 'JAVA_OPTS', ['proxy.example.com']],
    ['ldaps://ldap.example.com', undefined, ['ldap.example.com:636']],
    ['ws://localhost:9000/socket', undefined, ['localhost:9000']],
  ];
  for (const [text, key, want] of found) {
    it(`finds ${want.join(', ')} in ${JSON.stringify(text)}${key ? ` under ${key}` : ''}`, () => {
      assert.deepEqual(hosts(text, key), want);
    });
  }

  const none: [string, string | undefined][] = [
    ['/etc/app/config.yaml', undefined],
    ['config.yaml', 'CONFIG_URL'],
    ['app.kubernetes.io/name=api', undefined],
    ['--selector=app.kubernetes.io/instance=shop', undefined],
    ['ops@example.com', 'ADMIN_EMAIL'],
    ['10.4.1.0', 'APP_VERSION'],
    ['1.2.3.4', undefined],
    ['nginx:1.27', undefined],
    ['file:///var/run/app.sock', undefined],
    ['unix:///var/run/docker.sock', 'DOCKER_HOST'],
    ['localhost,127.0.0.1,.svc,example.com', 'NO_PROXY'],
    ['${API_HOST}:8080', undefined],
    ['https://{{ .Values.host }}/x', undefined],
    ['install.sh', undefined],
    ['true', 'TELEMETRY_ENABLED'],
    ['v1.2.3', 'IMAGE_TAG'],
    ['e.g. this, i.e. that', undefined],
    ['', undefined],
  ];
  for (const [text, key] of none) {
    it(`finds nothing in ${JSON.stringify(text)}${key ? ` under ${key}` : ''}`, () => {
      assert.deepEqual(hosts(text, key), []);
    });
  }

  it('keeps the URL as written and the scheme', () => {
    const [h] = extractEndpoints('see https://acme-v02.api.letsencrypt.org/directory.');
    assert.equal(h?.url, 'https://acme-v02.api.letsencrypt.org/directory');
    assert.equal(h?.scheme, 'https');
    assert.equal(h?.how, 'url');
  });

  it('a host in a URL is found in any text around it (property)', () => {
    const label = fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('com', 'net', 'io', 'org'), fc.string({ maxLength: 20 }), (labels, tld, noise) => {
        const host = [...labels, tld].join('.');
        const text = `${noise.replace(/[a-z0-9:/.\-@]/gi, ' ')} https://${host}/x ${noise.replace(/[a-z0-9:/.\-@]/gi, ' ')}`;
        assert.ok(hosts(text).includes(`${host}:443`), `${host} in ${JSON.stringify(text)}`);
      }),
      { numRuns: 200 },
    );
  });

  it('never throws and stays fast on arbitrary and hostile input (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), fc.option(fc.string({ maxLength: 20 }), { nil: undefined }), (text, key) => {
        extractEndpoints(text, key === undefined ? {} : { key });
      }),
      { numRuns: 500 },
    );
    const started = Date.now();
    extractEndpoints(`${'a.'.repeat(50_000)}com:${'9'.repeat(10)} https://${'b'.repeat(100_000)}`, { key: 'host' });
    extractEndpoints(`${'x-'.repeat(100_000)}`);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  });
});
