// WWW-Authenticate parsing: what real registries send, RFC 7235 corner cases, and garbage.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseWwwAuthenticate, type Challenge } from '../../src/registry/auth/index.ts';

const bearer = (params: Record<string, string>): Challenge => ({ scheme: 'bearer', params });
const basic = (params: Record<string, string>): Challenge => ({ scheme: 'basic', params });

const CASES: [name: string, header: string, expected: Challenge[]][] = [
  [
    'Docker Hub',
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
    [bearer({ realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' })],
  ],
  [
    'comma inside a quoted scope',
    'Bearer realm="http://127.0.0.1:5001/token",service="reg",scope="repository:a/b:pull,push"',
    [bearer({ realm: 'http://127.0.0.1:5001/token', service: 'reg', scope: 'repository:a/b:pull,push' })],
  ],
  [
    'several scopes separated by spaces, and an error',
    'Bearer realm="r",scope="repository:a:pull repository:b:pull,push",error="insufficient_scope"',
    [bearer({ realm: 'r', scope: 'repository:a:pull repository:b:pull,push', error: 'insufficient_scope' })],
  ],
  ['distribution htpasswd', 'Basic realm="airlock-test"', [basic({ realm: 'airlock-test' })]],
  [
    'two challenges in one header',
    'Basic realm="x", Bearer realm="y",scope="repository:a:pull,push"',
    [basic({ realm: 'x' }), bearer({ realm: 'y', scope: 'repository:a:pull,push' })],
  ],
  [
    'two challenges joined the way fetch joins repeated headers',
    'Bearer realm="https://a/token",service="s", Basic realm="b"',
    [bearer({ realm: 'https://a/token', service: 's' }), basic({ realm: 'b' })],
  ],
  ['scheme is case-insensitive, so are parameter names', 'BEARER Realm="R",SERVICE="S"', [bearer({ realm: 'R', service: 'S' })]],
  ['mixed-case scheme', 'bAsIc realm="x"', [basic({ realm: 'x' })]],
  ['unquoted tokens', 'Bearer realm=r1,service=registry.example.com', [bearer({ realm: 'r1', service: 'registry.example.com' })]],
  ['unquoted URL (lenient)', 'Bearer realm=https://a.example/token?x=1,service=s', [bearer({ realm: 'https://a.example/token?x=1', service: 's' })]],
  ['escapes in quoted strings', 'Basic realm="a \\"quoted\\" \\\\ realm"', [basic({ realm: 'a "quoted" \\ realm' })]],
  ['spaces around = and commas (BWS)', 'Bearer  realm = "r" ,  service = "s"  ', [bearer({ realm: 'r', service: 's' })]],
  ['tabs as whitespace', 'Bearer\trealm="r",\tservice="s"', [bearer({ realm: 'r', service: 's' })]],
  ['empty quoted value', 'Bearer realm="",service="s"', [bearer({ realm: '', service: 's' })]],
  ['empty list items are ignored', ', ,Bearer realm="r",,, service="s",', [bearer({ realm: 'r', service: 's' })]],
  ['scheme without parameters', 'Negotiate', [{ scheme: 'negotiate', params: {} }]],
  ['two bare schemes', 'Basic, Bearer', [basic({}), bearer({})]],
  ['token68 is skipped, the next challenge still parses', 'Negotiate dGVzdA==, Basic realm="x"', [{ scheme: 'negotiate', params: {} }, basic({ realm: 'x' })]],
  ['first duplicate parameter wins', 'Bearer realm="a",realm="b"', [bearer({ realm: 'a' })]],
  ['unknown parameters are kept', 'Bearer realm="r",charset="UTF-8"', [bearer({ realm: 'r', charset: 'UTF-8' })]],
  // malformed input: never throws, keeps what can be read
  ['empty header', '', []],
  ['only whitespace', '   \t ', []],
  ['only commas', ',,,', []],
  ['a lone quoted string', '"Bearer realm=x, y"', []],
  ['unterminated quoted string runs to the end', 'Bearer realm="unterminated, service="s"', [bearer({ realm: 'unterminated, service=' })]],
  ['junk after a quoted value is dropped', 'Bearer realm="a"junk,service="s"', [bearer({ realm: 'a', service: 's' })]],
  ['parameter without a value', 'Bearer realm', [bearer({})]],
  ['parameter with nothing after =', 'Bearer realm=', [bearer({ realm: '' })]],
  ['= with no name', 'Bearer =x, realm="y"', [bearer({ realm: 'y' })]],
  ['scheme glued to = is not a challenge', 'Bearer="x", Basic realm="b"', [basic({ realm: 'b' })]],
  ['__proto__ is not a parameter', 'Bearer __proto__="x",realm="r"', [bearer({ realm: 'r' })]],
  ['non-ASCII inside a quoted value', 'Basic realm="Zürich ✓"', [basic({ realm: 'Zürich ✓' })]],
  ['control characters between challenges', '\u0000\u0001Basic realm="x"', [basic({ realm: 'x' })]],
];

describe('parseWwwAuthenticate', () => {
  for (const [name, header, expected] of CASES) {
    it(name, () => {
      assert.deepEqual(parseWwwAuthenticate(header), expected);
    });
  }

  it('never throws and always returns lower-case schemes, whatever the input', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'Bearer realm="a\\,b" =,\t Basic'.split('')), maxLength: 60 }), (s) => {
        const got = parseWwwAuthenticate(s);
        assert.ok(Array.isArray(got));
        for (const c of got) {
          assert.equal(c.scheme, c.scheme.toLowerCase());
          assert.ok(c.scheme.length > 0);
          for (const v of Object.values(c.params)) assert.equal(typeof v, 'string');
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => void parseWwwAuthenticate(s)), { numRuns: 2000 });
  });

  it('reads back any list of challenges it is given, values quoted with escapes', () => {
    const tokenArb = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,10}$/);
    const challengeArb = fc.record({
      scheme: tokenArb,
      params: fc.dictionary(tokenArb.map((t) => t.toLowerCase()).filter((t) => t !== '__proto__'), fc.string({ maxLength: 30 }), { maxKeys: 4 }),
    });
    fc.assert(
      fc.property(fc.array(challengeArb, { minLength: 1, maxLength: 4 }), (challenges) => {
        const header = challenges
          .map((c) => {
            const ps = Object.entries(c.params).map(([k, v]) => `${k}="${v.replace(/[\\"]/g, (m) => `\\${m}`)}"`);
            return ps.length > 0 ? `${c.scheme} ${ps.join(', ')}` : c.scheme;
          })
          .join(', ');
        const expected = challenges.map((c) => ({ scheme: c.scheme.toLowerCase(), params: { ...c.params } }));
        assert.deepEqual(parseWwwAuthenticate(header), expected);
      }),
      { numRuns: 1000 },
    );
  });
});
