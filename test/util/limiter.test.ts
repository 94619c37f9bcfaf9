// The one limiter: FIFO slots, aborted waiters leave the queue at once, slots are never lost or
// freed twice, and mapLimit settles in-flight work before it reports the first error.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Limiter, mapLimit } from '../../src/util/limiter.ts';
import { ExitCode } from '../../src/core/errors.ts';

/** What an abort rejects with. */
const ABORTED = { name: 'AbortedError', code: 'ABORTED', exitCode: ExitCode.interrupted };

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Let every queued microtask and promise continuation run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Limiter.acquire', () => {
  test('at most `limit` holders; waiters are served in order; an aborted wait leaves the queue', async () => {
    const s = new Limiter(2);
    const r1 = await s.acquire();
    const r2 = await s.acquire();
    const order: string[] = [];
    const ac = new AbortController();
    const third = s.acquire().then((r) => (order.push('third'), r));
    const aborted = s.acquire(ac.signal);
    const fourth = s.acquire().then((r) => (order.push('fourth'), r));
    assert.equal(s.queued, 3);
    ac.abort();
    await assert.rejects(aborted, ABORTED);
    assert.equal(s.queued, 2, 'the aborted waiter left the queue at once');
    r1();
    r1(); // a second release of the same slot is harmless
    const r3 = await third;
    assert.equal(s.active, 2);
    r2();
    const r4 = await fourth;
    assert.deepEqual(order, ['third', 'fourth']);
    r3();
    r4();
    assert.equal(s.active, 0);
    assert.equal(s.queued, 0);
  });

  test('an already aborted signal is refused without taking a slot', async () => {
    const s = new Limiter(1);
    await assert.rejects(s.acquire(AbortSignal.abort()), ABORTED);
    assert.equal(s.active, 0);
  });

  test('a limit that is not a positive integer is refused', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new Limiter(bad), /concurrency must be a positive integer/);
  });

  test('tryAcquire sheds load past maxQueued waiters; idle() waits for the last holder', async () => {
    const s = new Limiter(1);
    const r1 = await s.tryAcquire(1);
    assert.ok(r1);
    const waiting = s.tryAcquire(1);
    assert.equal(await s.tryAcquire(1), undefined, 'the queue is full');
    let idle = false;
    const idleP = s.idle().then(() => (idle = true));
    r1();
    const r2 = await waiting;
    assert.ok(r2);
    await settle();
    assert.equal(idle, false, 'a slot is still held');
    r2();
    await idleP;
    assert.equal(s.active, 0);
  });
});

describe('Limiter.run', () => {
  test('a task aborted while queued leaves the queue at once and never runs; the next task gets the slot', async () => {
    const s = new Limiter(1);
    const gate = deferred();
    const first = s.run(() => gate.promise);
    const ac = new AbortController();
    let abortedRan = false;
    const aborted = s.run(async () => {
      abortedRan = true;
    }, ac.signal);
    let nextRan = false;
    const next = s.run(async () => {
      nextRan = true;
      return 'next';
    });
    assert.equal(s.queued, 2);
    ac.abort();
    // Rejects while the first task still holds the only slot: it does not wait for a slot first.
    await assert.rejects(aborted, ABORTED);
    assert.equal(s.active, 1);
    assert.equal(s.queued, 1);
    gate.resolve();
    await first;
    assert.equal(await next, 'next');
    assert.equal(nextRan, true);
    assert.equal(abortedRan, false);
    assert.equal(s.active, 0);
    assert.equal(s.queued, 0);
  });

  test('queued tasks start in FIFO order', async () => {
    const s = new Limiter(1);
    const started: number[] = [];
    const gates = Array.from({ length: 6 }, () => deferred());
    const runs = gates.map((g, i) =>
      s.run(async () => {
        started.push(i);
        await g.promise;
      }),
    );
    for (let i = 0; i < gates.length; i++) {
      await settle();
      gates[i]!.resolve();
    }
    await Promise.all(runs);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
  });

  test('a failing task gives its slot back', async () => {
    const s = new Limiter(2);
    const boom = new Error('boom');
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => s.run(async () => {
      if (n % 2 === 1) throw boom;
      return n;
    })));
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'fulfilled', 'rejected', 'fulfilled', 'rejected']);
    assert.equal(s.active, 0);
    assert.equal(await s.run(async () => 'still usable'), 'still usable');
  });

  test('no slot is lost or freed twice under random aborts, failures and finishes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.record({ abortAfter: fc.option(fc.integer({ min: 0, max: 3 })), fail: fc.boolean() }), { minLength: 1, maxLength: 20 }),
        async (limit, tasks) => {
          const s = new Limiter(limit);
          let running = 0;
          let peak = 0;
          const controllers = tasks.map(() => new AbortController());
          const runs = tasks.map((t, i) =>
            s.run(async () => {
              running++;
              peak = Math.max(peak, running);
              await settle();
              running--;
              if (t.fail) throw new Error('task failed');
            }, controllers[i]!.signal),
          );
          const all = Promise.allSettled(runs);
          for (let tick = 0; tick < 4; tick++) {
            tasks.forEach((t, i) => {
              if (t.abortAfter === tick) controllers[i]!.abort();
            });
            await settle();
          }
          const results = await all;
          assert.equal(results.length, tasks.length);
          assert.ok(peak <= limit, `peak ${peak} > limit ${limit}`);
          assert.equal(s.active, 0);
          assert.equal(s.queued, 0);
          // Every slot came back: `limit` holders fit at once again.
          const again = await Promise.all(Array.from({ length: limit }, () => s.acquire()));
          assert.equal(s.active, limit);
          for (const r of again) r();
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('mapLimit', () => {
  test('results in input order, never more than `limit` at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 4, 3, 2, 1, 0], 2, async (n, i) => {
      running++;
      peak = Math.max(peak, running);
      await settle();
      running--;
      return n * 10 + i;
    });
    assert.deepEqual(out, [50, 41, 32, 23, 14, 5]);
    assert.equal(peak, 2);
  });

  test('rejects with the first error only after in-flight work has settled', async () => {
    const slow = deferred();
    let slowDone = false;
    let settledBeforeReject = false;
    const p = mapLimit([0, 1, 2], 2, async (i) => {
      if (i === 0) throw new Error('first failure');
      if (i === 1) {
        await slow.promise;
        slowDone = true;
        return i;
      }
      throw new Error('second failure');
    });
    const watched = p.catch((e: unknown) => {
      settledBeforeReject = slowDone;
      throw e;
    });
    await settle();
    slow.resolve();
    await assert.rejects(watched, /first failure/);
    assert.equal(settledBeforeReject, true, 'the in-flight task finished before mapLimit rejected');
  });

  test('an abort rejects the queued items at once with AbortedError', async () => {
    const ac = new AbortController();
    const gate = deferred();
    const started: number[] = [];
    const p = mapLimit([0, 1, 2, 3], 1, async (i) => {
      started.push(i);
      await gate.promise;
      return i;
    }, ac.signal);
    await settle();
    ac.abort();
    gate.resolve();
    await assert.rejects(p, ABORTED);
    assert.deepEqual(started, [0], 'no queued item ran after the abort');
  });
});
