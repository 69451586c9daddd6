import test from 'ava';
import type { LoadTarget, QueryOutcome, ServerCounters } from '../../../src/load/load-target.js';
import { resolveLoadSettings, runLoad } from '../../../src/load/load-runner.js';

/** A target answering after `delayMs(rate)` with the given outcome; counts like a server's /metrics would. */
function fakeTarget(answer: (rate: number) => { delayMs: number; outcome: QueryOutcome }, counters?: () => ServerCounters): LoadTarget & { rate: number } {
  const target = {
    description: 'fake',
    rate: 0,
    send: () => {
      const { delayMs, outcome } = answer(target.rate);
      return new Promise<QueryOutcome>((resolve) => setTimeout(() => resolve(outcome), delayMs));
    },
    ...(counters === undefined ? {} : { counters: async () => counters() }),
    close: async () => {},
  };
  return target;
}

// Short and slow enough for a busy 2-core machine: 0.3 s per rate at a few hundred queries per second.
const quick = { durationS: 0.3, warmupS: 0, sampleIntervalMs: 100, lateThresholdMs: 50, maxLateShare: 0.5 };

/** A server that runs one query at a time, `serviceMs` each: it keeps up below 1000 / serviceMs queries/s, then queues. */
function singleServer(serviceMs: number): LoadTarget {
  let freeAt = 0;
  return {
    description: 'one query at a time',
    send: () => {
      const now = performance.now();
      freeAt = Math.max(now, freeAt) + serviceMs;
      return new Promise<QueryOutcome>((resolve) => setTimeout(() => resolve({ status: 'ok' }), freeAt - now));
    },
    close: async () => {},
  };
}

test('a schedule stops after two rates in a row miss the SLO; the best rate is the highest that met it', async (t) => {
  // Capacity 100/s. At 250/s for 0.3 s the last query waits 0.45 s; at 20 and 40/s there is no queue. The SLO
  // is generous, and a missed rate is measured once more, because a busy machine can stall a timer by a
  // hundred milliseconds.
  const settings = resolveLoadSettings({ ...quick, warmupS: 0.2, rates: [20, 40, 250, 300, 350], sloMs: 250, retries: 1 });
  const reported: number[] = [];
  const outcome = await runLoad(singleServer(10), settings, { onRate: (r) => reported.push(r.offered) });
  const offered = outcome.rates.map((r) => r.offered);
  t.deepEqual(reported, offered);
  t.deepEqual(offered, [20, 40, 250, 300], 'stopped after two misses in a row');
  t.true(outcome.rates[0]?.meetsSlo && outcome.rates[1]?.meetsSlo, `under capacity, the SLO holds: p99 ${outcome.rates.map((r) => r.latency.p99).join(', ')}`);
  t.false(outcome.rates[2]?.meetsSlo);
  t.false(outcome.rates[3]?.meetsSlo);
  t.is(outcome.best?.offered, 40);
  t.true(outcome.timeline.length >= offered.length, 'samples over time');
  t.true(outcome.timeline.every((p, i) => i === 0 || p.t >= (outcome.timeline[i - 1]?.t ?? 0)));
});

test('the warm-up runs at warmupRate and is not measured; without it, at the first rate', async (t) => {
  for (const [warmupRate, expected] of [[50, 50], [undefined, 200]] as const) {
    let sent = 0;
    const target = fakeTarget(() => {
      sent++;
      return { delayMs: 1, outcome: { status: 'ok' } };
    });
    const phases: string[] = [];
    const settings = resolveLoadSettings({ ...quick, warmupS: 0.4, warmupRate, rates: [200], durationS: 0.2 });
    const outcome = await runLoad(target, settings, { onProgress: (p) => phases.push(p.phase) });
    const measured = outcome.rates[0]?.sent ?? 0;
    t.is(measured, 40, 'the measured rate sends 200/s for 0.2 s');
    // The warm-up sent the rest: 50/s or 200/s for 0.4 s.
    t.is(sent - measured, Math.round(expected * 0.4), `warm-up at ${expected}/s`);
    t.true(phases.includes('warmup') && phases.at(-1) === 'measure');
  }
  t.throws(() => resolveLoadSettings({ warmupRate: 0 }), { message: /warmupRate must be a positive rate/ });
});

test('defaults, refusals and errors are counted and count as misses in the percentiles', async (t) => {
  let n = 0;
  const target = fakeTarget(() => {
    n++;
    const status = n % 10 === 0 ? 'refused' : n % 10 === 1 ? 'default' : n % 10 === 2 ? 'error' : 'ok';
    return { delayMs: 1, outcome: status === 'error' ? { status, detail: 'HTTP 500' } : { status } };
  });
  const outcome = await runLoad(target, resolveLoadSettings({ ...quick, rates: [200], durationS: 0.5 }));
  const r = outcome.rates[0];
  t.truthy(r);
  if (r === undefined) return;
  t.is(r.sent, 100);
  t.is(r.refused, 10);
  t.is(r.defaults, 10);
  t.is(r.errors, 10);
  t.is(r.ok, 70);
  t.deepEqual(r.errorKinds, { 'HTTP 500': 10 });
  t.is(r.latency.p99, null, '30% misses: p99 falls among them');
  t.false(r.meetsSlo);
  t.true(r.sloAttainment <= 0.7);
});

test('mean batch size and cache hit ratio come from per-query reports, or from server counters when there are any', async (t) => {
  let n = 0;
  const fromAnswers = fakeTarget(() => {
    n++;
    // Queries in batches of 4 and of 1, half and half by batch count: 4 rows per 5 queries... mean 2.5 rows per batch.
    return { delayMs: 1, outcome: n % 5 === 0 ? { status: 'ok', batchSize: 1, cached: true } : { status: 'ok', batchSize: 4, cached: false } };
  });
  const a = await runLoad(fromAnswers, resolveLoadSettings({ ...quick, rates: [200], durationS: 0.5 }));
  t.true(Math.abs((a.rates[0]?.meanBatch ?? 0) - 2.5) < 1e-9, `mean batch ${a.rates[0]?.meanBatch}`);
  t.true(Math.abs((a.rates[0]?.cacheHitRatio ?? 0) - 0.2) < 1e-9);

  let batches = 0;
  const fromServer = fakeTarget(
    () => ({ delayMs: 1, outcome: { status: 'ok' } }),
    () => ({ batches: (batches += 2), batchRows: batches * 8, cacheHits: 0, cacheLookups: 0 }),
  );
  const b = await runLoad(fromServer, resolveLoadSettings({ ...quick, rates: [200] }));
  t.is(b.rates[0]?.meanBatch, 8);
  t.is(b.rates[0]?.cacheHitRatio, null, 'no lookups: no ratio');
});

test('a rate whose sends went out late is marked invalid and is never the best', async (t) => {
  const target = fakeTarget(() => ({ delayMs: 1, outcome: { status: 'ok' } }));
  const original = target.send;
  let calls = 0;
  target.send = (i) => {
    // Block the generator's thread for 60 ms every 20 sends: it falls behind its own schedule.
    if (++calls % 20 === 0) {
      const until = performance.now() + 60;
      while (performance.now() < until);
    }
    return original(i);
  };
  const outcome = await runLoad(target, resolveLoadSettings({ ...quick, rates: [400], lateThresholdMs: 10, maxLateShare: 0.01, sloMs: 1000 }));
  t.false(outcome.rates[0]?.valid);
  t.true((outcome.rates[0]?.late ?? 0) > 0);
  t.is(outcome.best, null);
});

test('a missed rate is measured again when retries allow, and the second measurement stands', async (t) => {
  let sends = 0;
  // The first 30 queries (the whole first attempt: 100/s for 0.3 s) are slow, the rest fast. Slow and fast sit
  // far on either side of the SLO, so timer lateness on a loaded machine (tens of ms) cannot flip a verdict:
  // what is tested is the retry, not the timers.
  const target = fakeTarget(() => ({ delayMs: ++sends <= 30 ? 400 : 1, outcome: { status: 'ok' } }));
  const outcome = await runLoad(target, resolveLoadSettings({ ...quick, rates: [100], retries: 1, sloMs: 200 }));
  t.is(outcome.rates.length, 1);
  t.is(outcome.rates[0]?.attempts, 2);
  t.true(outcome.rates[0]?.meetsSlo);
  const once = await runLoad(
    fakeTarget(() => ({ delayMs: 400, outcome: { status: 'ok' } })),
    resolveLoadSettings({ ...quick, rates: [100], retries: 0, sloMs: 200 }),
  );
  t.is(once.rates[0]?.attempts, 1);
  t.false(once.rates[0]?.meetsSlo);
});

test('settings are validated once, naming the bad one', (t) => {
  t.throws(() => resolveLoadSettings({ rates: [] }), { message: /rates must be a non-empty list/ });
  t.throws(() => resolveLoadSettings({ durationS: 0 }), { message: /durationS must be a positive number/ });
  t.throws(() => resolveLoadSettings({ arrivals: 'bursty' as 'fixed' }), { message: /arrivals must be fixed or poisson/ });
  t.throws(() => resolveLoadSettings({ maxLateShare: 2 }), { message: /maxLateShare must be in \[0, 1\]/ });
  t.deepEqual(resolveLoadSettings({ durationS: undefined }).durationS, 5, 'undefined takes the default');
  t.is(resolveLoadSettings({ sloMs: 50 }).lateThresholdMs, 25, 'late means half the SLO unless given');
  t.is(resolveLoadSettings({ sloMs: 50, lateThresholdMs: 3 }).lateThresholdMs, 3);
});
