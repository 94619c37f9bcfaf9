// Which proxy a connection takes, read from the environment as curl and Go read it: the variables
// and their precedence, NO_PROXY's forms (*, domains with and without a leading dot, host:port, IP
// addresses, CIDR ranges), loopback proxied unless named, and a proxy URL that cannot be used
// refused by name without its password.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bypassesProxy, parseNoProxy, proxyConfigFromEnv, proxyFor } from '../../src/registry/proxy.ts';
import { UsageError } from '../../src/core/errors.ts';

const via = (env: NodeJS.ProcessEnv, url: string): string | undefined => {
  const r = proxyFor(new URL(url), proxyConfigFromEnv(env));
  return r === undefined ? undefined : `${r.variable} ${r.shown}`;
};

describe('proxy variables', () => {
  test('https targets take HTTPS_PROXY, http targets HTTP_PROXY; ALL_PROXY fills in; lower case wins; empty is unset', () => {
    const env = { HTTPS_PROXY: 'http://secure:3128', HTTP_PROXY: 'http://plain:3128', ALL_PROXY: 'http://all:8080' };
    assert.equal(via(env, 'https://registry.example/v2/'), 'HTTPS_PROXY http://secure:3128');
    assert.equal(via(env, 'http://registry.example/v2/'), 'HTTP_PROXY http://plain:3128');
    assert.equal(via({ ALL_PROXY: 'http://all:8080' }, 'https://r.example'), 'ALL_PROXY http://all:8080');
    assert.equal(via({ https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' }, 'https://r.example'), 'https_proxy http://lower:1');
    assert.equal(via({ https_proxy: '', HTTPS_PROXY: 'http://upper:2' }, 'https://r.example'), 'HTTPS_PROXY http://upper:2');
    assert.equal(via({ HTTP_PROXY: 'http://plain:3128' }, 'https://r.example'), undefined, 'HTTP_PROXY is not used for https');
    assert.equal(via({}, 'https://r.example'), undefined);
  });

  test('a proxy without a scheme is http://; credentials stay in the URL used and out of the one shown', () => {
    const r = proxyFor(new URL('https://r.example'), proxyConfigFromEnv({ HTTPS_PROXY: 'alice:p%40ss@proxy.corp:3128' }))!;
    assert.equal(r.url.href, 'http://alice:p%40ss@proxy.corp:3128/');
    assert.equal(r.shown, 'http://proxy.corp:3128');
    assert.doesNotMatch(`${r.shown} ${r.variable}`, /p%40ss|alice/);
  });

  test('a proxy that cannot be used is a usage error naming the variable, never its password', () => {
    for (const [value, why] of [
      ['socks5://bob:hunter22@proxy:1080', /HTTP proxies only/],
      ['http://bob:hunter22@proxy:3128/path', /no path/],
      ['http://[bad', /not a URL/],
    ] as const) {
      assert.throws(
        () => proxyFor(new URL('https://r.example'), proxyConfigFromEnv({ HTTPS_PROXY: value })),
        (e: unknown) => {
          assert.ok(e instanceof UsageError);
          assert.equal(e.code, 'PROXY_INVALID');
          assert.match(e.message, /HTTPS_PROXY/);
          assert.match(e.message, why);
          assert.doesNotMatch(e.message, /hunter22/);
          return true;
        },
      );
    }
    // Not used for this target: no error.
    assert.equal(via({ HTTP_PROXY: 'socks5://proxy:1080' }, 'https://r.example'), undefined);
  });
});

describe('NO_PROXY', () => {
  const bypass = (noProxy: string, url: string): boolean => bypassesProxy(new URL(url), { rules: parseNoProxy(noProxy) });
  const table: [string, string, boolean][] = [
    ['*', 'https://anything.example', true],
    ['corp.example', 'https://corp.example', true],
    ['corp.example', 'https://registry.corp.example:5000', true],
    ['corp.example', 'https://notcorp.example', false],
    ['.corp.example', 'https://corp.example', true],
    ['.corp.example', 'https://a.b.corp.example', true],
    ['*.corp.example', 'https://a.corp.example', true],
    ['Corp.Example.', 'https://REGISTRY.corp.example', true],
    ['registry.corp.example:5000', 'https://registry.corp.example:5000', true],
    ['registry.corp.example:5000', 'https://registry.corp.example', false],
    ['registry.corp.example:443', 'https://registry.corp.example', true],
    ['10.1.2.3', 'http://10.1.2.3:5000', true],
    ['10.1.2.3', 'http://10.1.2.4:5000', false],
    ['10.1.2.3:5000', 'http://10.1.2.3:5001', false],
    ['10.0.0.0/8', 'https://10.200.3.4', true],
    ['10.0.0.0/8', 'https://11.0.0.1', false],
    ['10.0.0.0/8', 'https://ten.example', false],
    ['192.168.1.0/24', 'https://192.168.1.77', true],
    ['192.168.1.0/24', 'https://192.168.2.1', false],
    ['::1', 'http://[::1]:5000', true],
    ['[::1]:5000', 'http://[::1]:5000', true],
    ['fd00::/8', 'http://[fd12:3456::1]', true],
    ['fd00::/8', 'http://[fe80::1]', false],
    ['localhost', 'http://localhost:5000', true],
    // Loopback is proxied unless named: the proxy may be where the tunnel to it starts.
    ['', 'http://127.0.0.1:5000', false],
    ['localhost', 'http://127.0.0.1:5000', false],
    ['127.0.0.0/8', 'http://127.0.0.1:5000', true],
    ['internal.example, ,  other.example  build.example', 'https://build.example', true],
  ];
  for (const [noProxy, url, expected] of table) {
    test(`${JSON.stringify(noProxy)} ${expected ? 'bypasses' : 'keeps'} ${url}`, () => assert.equal(bypass(noProxy, url), expected));
  }

  test('NO_PROXY (either case) keeps matching hosts away from the proxy', () => {
    assert.equal(via({ HTTPS_PROXY: 'http://p:1', NO_PROXY: '.corp.example' }, 'https://r.corp.example'), undefined);
    assert.equal(via({ HTTPS_PROXY: 'http://p:1', no_proxy: '127.0.0.1' }, 'https://127.0.0.1:5000'), undefined);
    assert.equal(via({ HTTPS_PROXY: 'http://p:1', no_proxy: '127.0.0.1' }, 'https://r.example'), 'HTTPS_PROXY http://p:1');
  });
});
