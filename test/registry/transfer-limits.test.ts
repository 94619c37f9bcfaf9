// The timeout and minimum-rate settings as users write them (--timeout 30s, --min-rate 10KiB/s)
// and as library callers pass them: parsed to ms and bytes/s, bad values refused naming them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExitCode, UsageError } from '../../src/core/errors.ts';
import { createSession } from '../../src/api/session.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { formatDuration, formatRate, parseDuration, parseRate, transferLimits } from '../../src/registry/transfer-limits.ts';

test('durations: a number with ms, s, m, min or h; a bare number is seconds', () => {
  const cases: Array<[string, number]> = [
    ['30s', 30_000],
    ['300ms', 300],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['2 min', 120_000],
    ['1h', 3_600_000],
    ['45', 45_000],
    [' 10S ', 10_000],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});

test('rates: bytes per second with K/M/G (1024) or KB/MB/GB (1000), /s optional, 0 is off', () => {
  const cases: Array<[string, number]> = [
    ['10KiB/s', 10 * 1024],
    ['10K', 10 * 1024],
    ['1MB/s', 1_000_000],
    ['1 MiB/s', 1024 * 1024],
    ['512B/s', 512],
    ['2048', 2048],
    ['0', 0],
    ['1.5k/s', 1536],
  ];
  for (const [text, rate] of cases) assert.equal(parseRate(text), rate, text);
});

test('values that do not parse, or are out of range, are usage errors naming the value', () => {
  for (const [call, pattern] of [
    [() => parseDuration('soon'), /timeout: "soon" is not a duration/],
    [() => parseDuration('0s'), /timeout must be from 1 ms to 24 h, got 0 ms/],
    [() => parseDuration('-3s'), /"-3s" is not a duration/],
    [() => parseDuration('2d'), /"2d" is not a duration/],
    [() => parseRate('fast'), /minimum rate: "fast" is not a rate/],
    [() => parseRate('10KiB/min'), /"10KiB\/min" is not a rate/],
    [() => transferLimits(-1, undefined), /timeout must be from 1 ms to 24 h/],
    [() => transferLimits(undefined, 1.5), /minimum rate must be a whole number/],
    [() => new RegistryClient({ timeoutMs: 0, credentials: { get: async () => undefined } }), /timeoutMs must be from 1 ms/],
    [() => new RegistryClient({ minRate: -5, credentials: { get: async () => undefined } }), /minRate must be a whole number/],
    [() => createSession({ timeout: 'later', credentials: { get: async () => undefined } }), /"later" is not a duration/],
  ] as const) {
    assert.throws(call, (e: unknown) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.equal(e.exitCode, ExitCode.usage);
      assert.match(e.message, pattern);
      return true;
    });
  }
});

test('defaults: 30 s without a byte, 1 KiB/s at least; a session takes strings or numbers', () => {
  assert.deepEqual(transferLimits(undefined, undefined), { timeoutMs: 30_000, minRate: 1024 });
  assert.deepEqual(createSession({ timeout: '2s', minRate: '10KiB/s', credentials: { get: async () => undefined } }).transferLimits, { timeoutMs: 2000, minRate: 10240 });
  assert.deepEqual(createSession({ timeout: 500, minRate: 0, credentials: { get: async () => undefined } }).transferLimits, { timeoutMs: 500, minRate: 0 });
});

test('durations and rates in messages', () => {
  assert.equal(formatDuration(300), '300 ms');
  assert.equal(formatDuration(30_000), '30 s');
  assert.equal(formatDuration(1500), '1.5 s');
  assert.equal(formatDuration(300_000), '5 min');
  assert.equal(formatRate(1229), '1.2 KiB/s');
  assert.equal(formatRate(12), '12 B/s');
});
