// The pure decisions of the registry client: where plain HTTP may be used, how Location/Link/
// Retry-After are read. (What is redacted: test/core/redact.test.ts.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { apiHost, isInsecureRegistry, isPlainHttpAnswer, plainHttpAllowed } from '../../src/registry/endpoint.ts';
import { nextLink } from '../../src/registry/repository.ts';
import { uploadLocation, withDigestParam } from '../../src/registry/blob-upload.ts';
import { backoffDelay, parseRetryAfter } from '../../src/registry/retry.ts';

describe('plain HTTP decision', () => {
  test('loopback registries may fall back to plain HTTP', () => {
    for (const r of ['127.0.0.1:5000', '127.1.2.3', 'localhost:5000', 'localhost', '[::1]:5000']) assert.equal(plainHttpAllowed(r), true, r);
  });

  test('any other registry is HTTPS only unless the user marked it insecure', () => {
    for (const r of ['registry.example.com', 'registry.example.com:5000', '10.0.0.5:5000', '192.168.1.10', 'docker.io', 'localhost.example.com']) {
      assert.equal(plainHttpAllowed(r), false, r);
    }
    assert.equal(plainHttpAllowed('registry.lab:5000', ['registry.lab:5000']), true);
    assert.equal(plainHttpAllowed('registry.lab:5000', ['registry.lab']), true, 'an entry without port covers every port');
    assert.equal(plainHttpAllowed('registry.lab:5000', ['registry.lab:6000']), false, 'another port is another registry');
    assert.equal(plainHttpAllowed('registry.lab', ['other.lab']), false);
    assert.equal(isInsecureRegistry('Registry.Lab:5000', ['http://registry.lab:5000/']), true, 'scheme, case and slash are tolerated');
  });

  test('only a plain-HTTP answer counts as a reason to fall back, never a certificate problem', () => {
    assert.equal(isPlainHttpAnswer(Object.assign(new Error('wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' })), true);
    assert.equal(isPlainHttpAnswer(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })), false);
    assert.equal(isPlainHttpAnswer(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), false);
  });

  test('docker.io is served by registry-1.docker.io', () => {
    assert.equal(apiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(apiHost('quay.io'), 'quay.io');
    assert.equal(apiHost('127.0.0.1:5000'), '127.0.0.1:5000');
  });
});

describe('protocol details', () => {
  test('upload Locations may be relative or absolute, and their query state is kept byte for byte', () => {
    const base = new URL('https://reg.example.com/v2/a/blobs/uploads/');
    const rel = uploadLocation('/v2/a/blobs/uploads/u1?_state=A%2Bb%3D%3D', base, 'x');
    assert.equal(rel.href, 'https://reg.example.com/v2/a/blobs/uploads/u1?_state=A%2Bb%3D%3D');
    assert.equal(withDigestParam(rel, 'sha256:ab').href, 'https://reg.example.com/v2/a/blobs/uploads/u1?_state=A%2Bb%3D%3D&digest=sha256%3Aab');
    const abs = uploadLocation('https://uploads.example.com/s/u2', base, 'x');
    assert.equal(withDigestParam(abs, 'sha256:cd').href, 'https://uploads.example.com/s/u2?digest=sha256%3Acd');
    assert.throws(() => uploadLocation(undefined, base, 'upload of blob x'), /without a Location/);
  });

  test('Link pagination: the rel="next" target is found among others', () => {
    assert.equal(nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"'), '/v2/a/tags/list?n=2&last=b');
    assert.equal(nextLink('<https://x/prev>; rel="prev", <https://x/next?a=1,2>; rel=next'), 'https://x/next?a=1,2');
    assert.equal(nextLink(undefined), undefined);
    assert.equal(nextLink('<https://x/prev>; rel="prev"'), undefined);
  });

  test('Retry-After in seconds or as a date, capped; backoff grows and stays bounded', () => {
    assert.equal(parseRetryAfter('3'), 3000);
    assert.equal(parseRetryAfter('100000'), 60_000);
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
    for (let a = 0; a < 20; a++) {
      const d = backoffDelay(a, 100, 5000);
      assert.ok(d >= Math.min(5000, 100 * 2 ** a) / 2 && d <= 5000, `attempt ${a}: ${d}`);
    }
  });
});
