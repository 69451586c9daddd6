import test from 'ava';
import { simulateOverload } from '../../helpers/overload-sim.js';

/**
 * One replica (the real actor: admission, batch queue, latency model, AIMD) at 3x its capacity, simulated on a
 * ManualClock (test/helpers/overload-sim.ts): the time-bound model of issue 13 (4 ms + 0.5 ms a row), 18 ms
 * deadlines (a 20 ms SLO less the router's 2 ms), 2,400 queries/s for 3 s after a second not counted.
 *
 * The most it can answer in time: a query may wait for the running batch and then run in its own, so each batch
 * gets half of the 17.5 ms (18 less 0.5 ms for the answer to leave): 8.75 ms batches of 9.5 rows, 1,086/s.
 *
 * Measured with each of admission's two overload rules taken out (src/batching/admission.ts), exact / with noise:
 * both in, 1,069 / 1,032 per second (mean batch 9.2 / 9.7); without the saturation rule (a query that would lead
 * a batch its deadline cuts short while more arrive), 1,076 / 897; without promises at the expected batch size,
 * 1,086 / 918 (the noise then reaches the margin: queries that joined a batch after one was promised made it
 * late); without both, 856 / 731 (batches of 6 and 5). Noise-free, either rule alone nearly reaches the bound;
 * with noise each is needed, and the second test fails when either is taken out. Since 2026-11-30 evening
 * (a run of late batches counts once in the margin; the latency model's cut follows its residuals) the noisy
 * case is the mean over eight noise sequences: 1,012/s with both rules, 997 without the saturation rule, 940
 * without expected-size promises, against a bound of 999 (92% of 1,086). Over 16 sequences the same code
 * answers 961-1,065/s, so a bound on one sequence says more about the seed than the code.
 */
const THEORETICAL = 1086;

/** Deterministic "noise": a linear congruential generator in [0, 1). */
function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const base = { rate: 2400, seconds: 3, warmupSeconds: 1, fixedMs: 4, perRowMs: 0.5, deadlineMs: 18, budgetMs: 10 };

test('at 3x, with batches exactly as long as the model says, the replica answers in time at 95% of the theoretical capacity', async (t) => {
  const r = await simulateOverload(base);
  t.log(`${Math.round(r.onTimePerSecond)}/s in time (${r.onTime} of ${r.offered} offered), ${r.late} late, ${r.refused} refused, mean batch ${r.meanBatch.toFixed(2)}`);
  t.true(r.onTimePerSecond >= 0.95 * THEORETICAL, `${Math.round(r.onTimePerSecond)}/s in time, theoretical ${THEORETICAL}/s`);
  t.is(r.late, 0, 'nothing admitted is late');
  t.is(r.onTime + r.late + r.refused, r.offered, 'one outcome per query');
});

test('at 3x, with up to 1 ms of lateness a batch (timers, thread hops), it answers in time at 92% of the theoretical capacity on average over eight noise sequences, under 1% late', async (t) => {
  // One noise sequence decides little: over 16 seeds the same code answers 961-1,065/s in time (mean 1,013), so
  // the bound is on the mean of eight, with a floor for each.
  const runs = [];
  for (let seed = 1; seed <= 8; seed++) runs.push(await simulateOverload({ ...base, extraMs: uniform(seed) }));
  const onTime = runs.map((r) => r.onTimePerSecond);
  const mean = onTime.reduce((a, b) => a + b, 0) / runs.length;
  const lateShare = runs.reduce((a, r) => a + r.late, 0) / runs.reduce((a, r) => a + r.admitted, 0);
  t.log(`in time per s: ${onTime.map(Math.round).join(', ')} (mean ${Math.round(mean)}); ${(lateShare * 100).toFixed(2)}% of admitted late; mean batch ${(runs.reduce((a, r) => a + r.meanBatch, 0) / runs.length).toFixed(2)}`);
  t.true(mean >= 0.92 * THEORETICAL, `mean ${Math.round(mean)}/s in time, theoretical ${THEORETICAL}/s`);
  t.true(Math.min(...onTime) >= 0.87 * THEORETICAL, `worst ${Math.round(Math.min(...onTime))}/s in time`);
  t.true(lateShare <= 0.01, `${(lateShare * 100).toFixed(2)}% of admitted were late`);
});

test('a one-off burst is not mistaken for saturation: 256 queries at once that all fit are all admitted and answered in time', async (t) => {
  // 1.2 ms a batch whatever its size (a fast model behind a slow hop), a 100 ms deadline: the whole burst fits.
  // The burst lifts the arrival rate as a sustained 2.56 queries/ms would, but nothing follows it: without the
  // saturation gate (a query refused as late lately), queries leading batches behind the first were refused.
  const r = await simulateOverload({ rate: 256_000, seconds: 0.001, fixedMs: 1.2, perRowMs: 0.001, deadlineMs: 100, budgetMs: 50 });
  t.log(`${r.onTime} in time, ${r.late} late, ${r.refused} refused, mean batch ${r.meanBatch.toFixed(1)}`);
  t.is(r.offered, 256);
  t.is(r.refused, 0);
  t.is(r.onTime, 256);
});

/**
 * Below capacity, as over HTTP on a shared 2-core machine: most batches come back 0-0.5 ms after the model's
 * time, 3% of them 1-6 ms late (the main thread busy with requests), and with `stallEvery`, every that many
 * batches a 40 ms stall (a collection, the machine taking the core).
 */
function lightLoad(stallEvery: number) {
  const u = uniform(1);
  let batches = 0;
  return simulateOverload({
    ...base,
    rate: 600,
    extraMs: () => {
      batches++;
      if (stallEvery > 0 && batches % stallEvery === 0) return 40;
      return u() < 0.03 ? 1 + 5 * u() : 0.5 * u();
    },
  });
}

test('at 55% of capacity, late answers from a busy main thread do not make the replica refuse', async (t) => {
  // Before (a stall's samples learnt whole by the latency model, and each batch counted on its own by the margin): 20 refused.
  const r = await lightLoad(0);
  t.log(`${r.refused} refused, ${r.late} late of ${r.offered}`);
  t.true(r.refused <= 0.005 * r.offered, `${r.refused} of ${r.offered} refused`);
});

test('at 55% of capacity, a 40 ms stall every ~half second costs the queries it holds up, not hundreds of refusals after it', async (t) => {
  // Before: 112 refused (6%), each stall's few late batches the top 5% of the margin's window for 500 ms, and
  // its 40 ms learnt into the batch estimate. The stall's own victims (late) are the same either way, ~110.
  const r = await lightLoad(100);
  t.log(`${r.refused} refused, ${r.late} late of ${r.offered}`);
  t.true(r.refused <= 0.03 * r.offered, `${r.refused} of ${r.offered} refused`);
  t.true(r.late <= 0.08 * r.offered, `${r.late} of ${r.offered} late`);
});
