import test from 'ava';
import { LatencyWindow } from '../../../src/routing/latency-window.js';
import { mulberry32 } from '../../../src/kernel/random.js';

/** The p95 the window promises, computed the slow way from the last `size` samples. */
function referenceP95(samples: readonly number[], size: number): number {
  const window = samples.slice(-size).sort((a, b) => a - b);
  return window[Math.min(window.length - 1, Math.floor(0.95 * window.length))] as number;
}

test('the latency window reports the 95th percentile of its recent samples', (t) => {
  const w = new LatencyWindow(100);
  t.true(Number.isNaN(w.p95));
  for (let i = 1; i <= 100; i++) w.observe(i);
  t.is(w.p95, 96);
  // The window forgets: 100 fast samples push the slow ones out.
  for (let i = 0; i < 100; i++) w.observe(1);
  t.is(w.p95, 1);
  t.is(w.count, 100);
});

test('the p95 is current from the first sample on, not frozen at the first response time (issue 14, bug 5)', (t) => {
  // The reproducer: a slow first query (a cold cache, a JIT warm-up), then fast ones. Hedging reads the p95 from
  // the 20th sample on; a percentile recomputed only every 64 samples still said 100 ms here.
  const w = new LatencyWindow();
  w.observe(100);
  for (let i = 1; i < 40; i++) w.observe(0.2);
  t.is(w.count, 40);
  t.is(w.p95, 0.2);
  // And the other way round: a fast start, then a slow spell is seen at once.
  const v = new LatencyWindow();
  for (let i = 0; i < 20; i++) v.observe(0.2);
  for (let i = 0; i < 10; i++) v.observe(100);
  t.is(v.p95, 100);
});

test('after every sample the p95 equals a full sort of the window, including ties and wrap-around', (t) => {
  const random = mulberry32(7);
  for (const size of [1, 2, 5, 20, 64, 512]) {
    const w = new LatencyWindow(size);
    const seen: number[] = [];
    for (let i = 0; i < 3 * size + 50; i++) {
      // Coarse values give many ties, which is where a sorted-insert/remove is easiest to get wrong.
      const ms = Math.floor(random() * 20) / 2;
      w.observe(ms);
      seen.push(ms);
      if (w.p95 !== referenceP95(seen, size)) return t.fail(`size ${size}, sample ${i}: ${w.p95} vs ${referenceP95(seen, size)}`);
    }
    t.is(w.count, size);
  }
  t.pass();
});

test('a window size that is not a positive integer is refused', (t) => {
  t.throws(() => new LatencyWindow(0), { instanceOf: RangeError, message: /positive integer; got 0/ });
  t.throws(() => new LatencyWindow(2.5), { instanceOf: RangeError });
});

test('with a horizon, samples older than it leave the window however few come after them', (t) => {
  const w = new LatencyWindow(256, 500);
  // A stall: ten queries late by 40 ms at t = 0, then a quiet spell with a fast one every 100 ms.
  for (let i = 0; i < 10; i++) w.observe(40, 0);
  for (let at = 100; at <= 1_000; at += 100) w.observe(1, at);
  w.expire(400);
  t.is(w.count, 20, 'at 400 nothing is older than 500 ms yet');
  t.is(w.quantile(0.99), 40);
  w.expire(501);
  t.is(w.count, 10, 'at 501 the stall (at 0) has left; the ten at 100-1,000 stay');
  t.is(w.quantile(0.99), 1);
  t.is(w.quantile(0), 1);
  w.expire(1_200);
  t.is(w.count, 4, 'at 1,200: those at 700 (exactly 500 ms old stays), 800, 900 and 1,000');
  w.expire(10_000);
  t.is(w.count, 0);
  t.true(Number.isNaN(w.p95), 'empty again');
  w.observe(7, 10_000);
  t.is(w.p95, 7, 'and it fills again after emptying');
});

test('with a horizon, expiry and a full ring together still match a full sort of what is in the window', (t) => {
  const random = mulberry32(11);
  const size = 32;
  const horizon = 50;
  const w = new LatencyWindow(size, horizon);
  const seen: [at: number, ms: number][] = [];
  let at = 0;
  for (let i = 0; i < 2_000; i++) {
    at += Math.floor(random() * 4);
    const ms = Math.floor(random() * 20) / 2;
    w.observe(ms, at);
    seen.push([at, ms]);
    w.expire(at);
    const live = seen.slice(-size).filter(([when]) => when >= at - horizon).map(([, v]) => v);
    if (w.count !== live.length) return t.fail(`sample ${i}: count ${w.count} vs ${live.length}`);
    const sorted = live.sort((a, b) => a - b);
    const expected = sorted[Math.min(sorted.length - 1, Math.floor(0.95 * sorted.length))] as number;
    if (w.p95 !== expected) return t.fail(`sample ${i}: p95 ${w.p95} vs ${expected}`);
  }
  t.pass();
});

test('a horizon that is not positive is refused; without one, expire keeps everything', (t) => {
  t.throws(() => new LatencyWindow(8, 0), { instanceOf: RangeError, message: /horizonMs must be positive; got 0/ });
  t.throws(() => new LatencyWindow(8, Number.NaN), { instanceOf: RangeError });
  const w = new LatencyWindow(8);
  w.observe(3, 0);
  w.expire(1e12);
  t.is(w.count, 1);
});

test('nth reads the window in ascending order, NaN outside it', (t) => {
  const w = new LatencyWindow(3);
  t.true(Number.isNaN(w.nth(0)));
  for (const ms of [5, 1, 3, 4]) w.observe(ms);
  t.deepEqual([w.nth(0), w.nth(1), w.nth(2)], [1, 3, 4], 'the 5 left when the 4 came');
  t.true(Number.isNaN(w.nth(3)));
  t.true(Number.isNaN(w.nth(-1)));
});
