// The one redactor: secrets in the shapes they turn up in logs, errors and reports, and text it
// must leave alone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { REDACTED, redactHeaders, redactSecrets, redactText, redactUrl } from '../../src/core/redact.ts';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';

const REDACT: [name: string, input: string, expected: string][] = [
  ['Authorization header line', 'Authorization: Bearer abc.def-ghi', 'Authorization: Bearer REDACTED'],
  ['lower-case header, Basic', 'authorization: Basic dXNlcjpwYXNz', 'authorization: Basic REDACTED'],
  ['header in JSON', '{"Authorization":"Bearer tok123456789"}', '{"Authorization":"Bearer REDACTED"}'],
  ['proxy header', 'Proxy-Authorization: Basic Zm9vOmJhcg==', 'Proxy-Authorization: Basic REDACTED'],
  ['bare Bearer credential in prose', 'retrying with Bearer tok_ABC123def456', 'retrying with Bearer REDACTED'],
  ['access_token in a URL', 'GET https://r.example/v2/x/blobs/sha256:ab?access_token=s3cr3t&n=1', 'GET https://r.example/v2/x/blobs/sha256:ab?access_token=REDACTED&n=1'],
  ['several secret query parameters', 'https://s3.example/b?X-Amz-Signature=abcd&X-Amz-Security-Token=efgh&ok=1', 'https://s3.example/b?X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&ok=1'],
  ['form body', 'grant_type=refresh_token&refresh_token=rt-9&service=s&password=pw', 'grant_type=refresh_token&refresh_token=REDACTED&service=s&password=REDACTED'],
  ['token JSON', '{"token":"t0k","access_token":"a\\"b","expires_in":60}', '{"token":"REDACTED","access_token":"REDACTED","expires_in":60}'],
  ['docker config JSON', '{"auths":{"h":{"auth":"dXNlcjpwYXNz","identitytoken":"it"}}}', '{"auths":{"h":{"auth":"REDACTED","identitytoken":"REDACTED"}}}'],
  ['credential helper JSON', '{"ServerURL":"h","Username":"u","Secret":"shh"}', '{"ServerURL":"h","Username":"u","Secret":"REDACTED"}'],
  ['password in URL userinfo', 'https://alice:pa55@registry.example/v2/', 'https://alice:REDACTED@registry.example/v2/'],
  ['bare JWT', `token is ${JWT} ok`, 'token is REDACTED ok'],
];

const KEEP = [
  'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a:pull"',
  'Basic realm="airlock-test"',
  'registry requires Basic credentials',
  'the token server refused the credentials of user "alice"',
  '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
  'GET https://r.example/v2/library/nginx/manifests/sha256:0123456789abcdef',
  'https://r.example/token?service=s&scope=repository:a:pull&account=alice',
];

describe('redactSecrets', () => {
  for (const [name, input, expected] of REDACT) {
    it(`redacts: ${name}`, () => assert.equal(redactSecrets(input), expected));
  }
  for (const text of KEEP) {
    it(`keeps: ${text}`, () => assert.equal(redactSecrets(text), text));
  }

  it('is idempotent and never lets a Basic credential or JWT through', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 }), (user, pass, around) => {
        const cred = Buffer.from(`${user}:${pass}`).toString('base64');
        const text = `${around} Authorization: Basic ${cred} ${around} ${JWT}`;
        const once = redactSecrets(text);
        assert.equal(redactSecrets(once), once);
        assert.ok(!once.includes(`Basic ${cred}`));
        assert.ok(!once.includes(JWT));
      }),
      { numRuns: 500 },
    );
  });
});

describe('redactUrl', () => {
  it('drops credentials and hides query values, keeping protocol parameters', () => {
    assert.equal(
      redactUrl('https://user:pw@s3.example.com/bucket/blob?X-Amz-Credential=AKIA123&X-Amz-Signature=deadbeef&digest=sha256%3Aab'),
      'https://s3.example.com/bucket/blob?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&digest=sha256%3Aab',
    );
    assert.equal(redactUrl('http://127.0.0.1:5000/v2/a/blobs/uploads/u1?_state=abc%3D&digest=sha256:1'), 'http://127.0.0.1:5000/v2/a/blobs/uploads/u1?_state=REDACTED&digest=sha256:1');
    assert.equal(redactUrl('https://auth.example.com/token?service=reg&scope=repository:a:pull&access_token=xyz'), 'https://auth.example.com/token?service=reg&scope=repository:a:pull&access_token=REDACTED');
    assert.equal(redactUrl(new URL('https://charts.example.com/stable/app-1.0.tgz?sig=abc')), 'https://charts.example.com/stable/app-1.0.tgz?sig=REDACTED');
  });

  it('shows a repository origin as written, and never echoes what does not parse', () => {
    assert.equal(redactUrl('https://bob:hunter2@charts.example.com'), 'https://charts.example.com');
    assert.equal(redactUrl('https://charts.example.com/'), 'https://charts.example.com');
    assert.equal(redactUrl('https://charts.example.com/stable/'), 'https://charts.example.com/stable/');
    assert.equal(redactUrl('not a url with password=hunter2'), '<unparseable URL>');
  });
});

describe('redactHeaders and redactText', () => {
  it('headers lose credential-bearing values, whatever their case', () => {
    assert.deepEqual(redactHeaders({ Authorization: 'Bearer abc.def.ghi', Cookie: 'session=1', 'X-Registry-Auth': 'e30=', accept: 'x' }), {
      Authorization: REDACTED,
      Cookie: REDACTED,
      'X-Registry-Auth': REDACTED,
      accept: 'x',
    });
  });

  it('free text loses tokens, URL credentials (user too) and the secrets the caller names', () => {
    const text = redactText('sent Bearer eyJhbGciOi.J9.sig and {"token":"t0k3n-value"} to https://bob:hunter2@host/x; pw was hunter2', ['hunter2']);
    assert.doesNotMatch(text, /eyJhbGciOi|t0k3n-value|hunter2|bob:/);
    assert.match(text, /https:\/\/host\/x/);
  });
});
