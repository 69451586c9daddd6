import test from 'ava';
import { degradation, stationary } from '../../bench/eval-selection.js';
import { runStragglers } from '../../bench/stragglers.js';

// A small, fast run of `npm run eval:selection` and `npm run bench:stragglers`: the same code on few digits,
// asserting the effects the full runs measure. Latency bounds are liveness bounds, far from the effect sizes.

test('Exp4 on 300 digits with feedback is no worse than the mean single model; all members agreeing means fewer errors', async (t) => {
  const r = await stationary({ digits: 300 });
  const singles = Object.values(r.single);
  const mean = singles.reduce((a, b) => a + b, 0) / singles.length;
  const exp4 = r.exp4.exp4?.error as number;
  t.true(exp4 <= mean, `Exp4 error ${exp4}, single models ${JSON.stringify(r.single)}`);
  t.is(r.defaults, 0);
  t.true(r.confidence.confident.share > 0.8, JSON.stringify(r.confidence));
  t.true(r.confidence.confident.error < r.confidence.unsure.error, JSON.stringify(r.confidence));
});

test('after the best model is switched to a broken version, Exp3 moves its choices elsewhere', async (t) => {
  const r = await degradation({ digits: 300, switchAt: 150, before: 150, window: 50 });
  t.true(Number.isInteger(r.exp3EventsToTenPercent) && r.exp3EventsToTenPercent <= 100, JSON.stringify(r));
  t.true(Number.isInteger(r.exp3EventsToWindow), JSON.stringify(r));
  t.true(Number.isInteger(r.exp4EventsToWeightBelow1Percent), JSON.stringify(r));
});

test.serial('answering at the deadline keeps p99 near the SLO when a member stalls; waiting for all does not', async (t) => {
  // Two members whose replicas hold 15% of their batches for 500 ms: unmistakable next to a 20 ms SLO.
  const common = { members: 2, replicas: 1, stall: { probability: 0.15, ms: 500 }, hedging: { enabled: false }, rate: 50, count: 30, warmup: 3 };
  const deadline = await runStragglers({ ...common, mode: 'deadline', sloMs: 20 });
  const waitForAll = await runStragglers({ ...common, mode: 'wait-for-all', sloMs: 10_000 });
  t.true(deadline.latency.p99 < 20 + 150, `deadline p99 ${deadline.latency.p99} ms`);
  t.true(waitForAll.latency.p99 >= 400, `wait-for-all p99 ${waitForAll.latency.p99} ms`);
  t.true(deadline.incomplete > 0, 'some answers came without the stalled member');
  t.is(waitForAll.incomplete, 0, 'waiting for all, every answer has both members');
});
