import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { UsageError } from '../../src/core/errors.ts';
import { type Platform, formatPlatform, parsePlatform, platformMatches } from '../../src/core/platform.ts';

describe('parsePlatform', () => {
  const good: [string, Platform][] = [
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/ppc64le', { os: 'linux', architecture: 'ppc64le' }],
    ['linux/s390x', { os: 'linux', architecture: 's390x' }],
    ['windows/amd64', { os: 'windows', architecture: 'amd64' }],
    ['linux/riscv64', { os: 'linux', architecture: 'riscv64' }],
    ['unknown/unknown', { os: 'unknown', architecture: 'unknown' }],
  ];
  for (const [input, expected] of good) {
    test(`parses ${input}`, () => {
      assert.deepEqual(parsePlatform(input), expected);
      assert.equal(formatPlatform(parsePlatform(input)), input);
    });
  }

  for (const input of ['', 'linux', 'linux/', '/amd64', 'linux//v8', 'linux/arm64/v8/extra', 'Linux/AMD64', 'linux amd64', 'linux/amd64 ', 'linux/am*d64']) {
    test(`refuses ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parsePlatform(input),
        (e: unknown) =>
          e instanceof UsageError &&
          e.code === 'PLATFORM_INVALID' &&
          e.message.includes(`"${input}"`) &&
          e.message.includes('os/architecture[/variant]'),
      );
    });
  }

  test('property: format(parse(s)) === s for well-formed platforms', () => {
    const part = fc.stringMatching(/^[a-z0-9_.-]{1,10}$/);
    fc.assert(
      fc.property(part, part, fc.option(part, { nil: undefined }), (os, arch, variant) => {
        const s = variant === undefined ? `${os}/${arch}` : `${os}/${arch}/${variant}`;
        assert.equal(formatPlatform(parsePlatform(s)), s);
      }),
    );
  });
});

describe('platformMatches', () => {
  const p = parsePlatform;
  const cases: [string, string, boolean][] = [
    // have, want, matches?
    ['linux/amd64', 'linux/amd64', true],
    ['linux/amd64', 'linux/arm64', false],
    ['windows/amd64', 'linux/amd64', false],
    ['linux/arm64/v8', 'linux/arm64', true],
    ['linux/arm64', 'linux/arm64/v8', true],
    ['linux/arm64/v8', 'linux/arm64/v8', true],
    ['linux/arm', 'linux/arm/v7', true],
    ['linux/arm/v6', 'linux/arm', true],
    ['linux/arm/v6', 'linux/arm/v7', false],
    ['linux/arm/v7', 'linux/arm/v6', false],
    ['linux/amd64', 'linux/amd64/v2', false],
    ['linux/amd64/v3', 'linux/amd64', true],
  ];
  for (const [have, want, expected] of cases) {
    test(`${have} ${expected ? 'satisfies' : 'does not satisfy'} ${want}`, () => {
      assert.equal(platformMatches(p(have), p(want)), expected);
    });
  }
});
