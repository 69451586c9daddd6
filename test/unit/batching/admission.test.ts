import test from 'ava';
import { decideAdmission, expectedWaitMs, type AdmissionSettings, type AdmissionState } from '../../../src/batching/admission.js';
import { BatchLatencyModel } from '../../../src/batching/batch-latency-model.js';
import { ManualClock } from '../../../src/kernel/clock.js';

/** A latency model that has seen batches of `rows` rows taking `ms` each (none when omitted). */
function latency(...samples: [rows: number, ms: number][]): BatchLatencyModel {
  const m = new BatchLatencyModel();
  for (const [rows, ms] of samples) m.observe(rows, ms);
  return m;
}

const fixed: AdmissionSettings = { mode: 'fixed', maxBatchSize: 8, additiveStep: 2, maxQueueSize: 1024 };
const aimd: AdmissionSettings = { ...fixed, mode: 'aimd', maxBatchSize: 64 };

const state = (s: Partial<AdmissionState> = {}): AdmissionState => ({ queued: 0, runningRows: 0, limit: 1, budgetMs: 10, latency: latency([1, 10]), ...s });

test('expected wait: the running batch, the batches queued ahead, and the query own batch', (t) => {
  // Batches of one row take 10 ms, with no slope to fit: k rows are predicted to take 10k ms.
  const cases: [what: string, s: Partial<AdmissionState>, settings: AdmissionSettings, waitMs: number][] = [
    ['no queue: 0, however busy the worker', { queued: 0, runningRows: 8 }, fixed, 0],
    ['no measurement yet: 0, so a fresh replica never refuses', { queued: 50, latency: latency() }, fixed, 0],
    ['one queued, nothing running, limit 1: two batches of one', { queued: 1 }, fixed, 20],
    ['one queued behind a running batch of 3', { queued: 1, runningRows: 3 }, fixed, 30 + 20],
    ['three queued, limit 4: one batch of four', { queued: 3, limit: 4 }, fixed, 40],
    ['nine queued, limit 4: 4 + 4 + 2', { queued: 9, limit: 4 }, fixed, 40 + 40 + 20],
    // AIMD grows each full batch by 2 up to what fits the budget (30 ms = 3 rows): batches 1, 3, 3, 3.
    ['AIMD: batches grow toward the budget', { queued: 9, limit: 1, budgetMs: 30 }, aimd, 10 + 30 + 30 + 30],
    // With fixed batching the limit stays: ten batches of one.
    ['fixed: the limit stays', { queued: 9, limit: 1, budgetMs: 30 }, fixed, 100],
  ];
  for (const [what, s, settings, waitMs] of cases) t.is(expectedWaitMs(state(s), settings), waitMs, what);
});

test('expected wait: a long queue is simulated 64 batches deep, then counted at the last batch size', (t) => {
  // 200 queued + this one, limit 1 fixed: 64 batches one by one, then 137 more of one row: 201 x 10 ms.
  t.is(expectedWaitMs(state({ queued: 200 }), fixed), 2010);
});

test('admission on a ManualClock: admit while the expected wait meets the deadline, else refuse with Retry-After', (t) => {
  const clock = new ManualClock(5_000);
  const slow = latency([1, 1_000]);
  // [queued, deadline in ms from now, admitted, Retry-After seconds when refused]
  const cases: [queued: number, deadlineIn: number, admit: boolean, retryAfter?: number][] = [
    [0, 0, true],
    [1, 2_000, true],
    [1, 1_999, false, 2],
    [2, 2_999, false, 3],
    [3, 3_500, false, 4],
    [3, 4_000, true],
  ];
  for (const [queued, deadlineIn, admit, retryAfter] of cases) {
    const decision = decideAdmission(clock.now(), clock.now() + deadlineIn, state({ queued, latency: slow }), fixed);
    t.is(decision.admit, admit, `${queued} queued, deadline in ${deadlineIn} ms`);
    if (!decision.admit) {
      t.is(decision.reason, 'too-late');
      t.is(decision.retryAfterSeconds as number | undefined, retryAfter);
      t.is(decision.expectedWaitMs, (queued + 1) * 1_000);
    }
    clock.advance(1);
  }
});

test('a refusal explains itself: the wait, the queue, the batch time and the time left', (t) => {
  const decision = decideAdmission(100, 150, state({ queued: 4, limit: 2, latency: latency([2, 30]) }), fixed);
  if (decision.admit) return t.fail('expected a refusal');
  t.is(decision.explanation, 'would answer in ~90.0 ms (4 queued, batches of 2 take ~30.0 ms); the deadline is in 50.0 ms');
  t.is(decision.retryAfterSeconds, 1, 'never less than a second');
});

test('a full queue refuses whatever the deadline, before any estimate', (t) => {
  const settings: AdmissionSettings = { ...fixed, maxQueueSize: 3 };
  const cases: [queued: number, admit: boolean][] = [
    [0, true],
    [2, true],
    [3, false],
    [4, false],
  ];
  for (const [queued, admit] of cases) {
    const decision = decideAdmission(0, Number.POSITIVE_INFINITY, state({ queued, latency: latency() }), settings);
    t.is(decision.admit, admit, `${queued} queued`);
    if (!decision.admit) {
      t.is(decision.reason, 'queue-full');
      t.is(decision.retryAfterSeconds, 1);
      t.is(decision.explanation, `has ${queued} queries queued (maxQueueSize 3)`);
    }
  }
});
