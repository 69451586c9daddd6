import test from 'ava';
import { Replica } from '../../../actors/replica.js';
import type { ReplicaAnswer, ReplicaHost, ReplicaQuery } from '../../../actors/contracts.js';
import type { ModelSpec } from '../../../actors/worker/model-worker.js';
import type { BatchEvent } from '../../../src/api.js';
import { resolveBatchingOptions, type BatchingOptions, type FaultOptions } from '../../../src/config/options.js';
import { BatchTooLargeError, DeadlineExceededError, ModelRuntimeError, OverloadedError, ReplicaFailedError } from '../../../src/errors.js';
import type { ChildFailed } from '../../../src/kernel/actor.js';
import { ManualClock } from '../../../src/kernel/clock.js';
import { FakeModelWorker, settle } from '../../helpers/fake-model-worker.js';

interface Setup {
  batching?: BatchingOptions;
  /** A JS model's worker can be cut off mid-batch; an onnxruntime one cannot. */
  interruptible?: boolean;
  batchTimeoutMs?: number;
  budgetMs?: number;
  faults?: FaultOptions;
  /** Every worker made fails to load with this. */
  loadError?: Error;
}

/** A query that records how it settled. */
interface Probe extends ReplicaQuery {
  readonly value: number;
  answer?: ReplicaAnswer;
  error?: unknown;
  settlements: number;
}

const FAR = 1e9;

function setup(options: Setup = {}) {
  const clock = new ManualClock();
  const workers: FakeModelWorker[] = [];
  const orphaned: { values: number[]; from: string; error: unknown }[] = [];
  const failures: ChildFailed[] = [];
  const batches: BatchEvent[] = [];
  const host: ReplicaHost = {
    latencyBudgetMs: () => options.budgetMs ?? 10,
    orphaned: (queries, from, error) => orphaned.push({ values: queries.map((q) => (q as Probe).value), from, error }),
  };
  const spec: ModelSpec = { key: 'm@1', kind: options.interruptible === true ? 'js' : 'onnx', path: '/models/m/1/model', inputDtype: 'float32', featureShape: [2], intraOpNumThreads: 1 };
  const replica = new Replica({
    name: 'm@1#0',
    spec,
    batching: resolveBatchingOptions({ mode: 'fixed', maxBatchSize: 8, ...options.batching }),
    faults: options.faults,
    clock,
    host,
    supervisor: { tell: (message) => failures.push(message) },
    batchTimeoutMs: options.batchTimeoutMs ?? 1000,
    onBatch: (event) => batches.push(event),
    createWorker: () => {
      const worker = new FakeModelWorker({ interruptible: options.interruptible === true });
      worker.loadError = options.loadError;
      workers.push(worker);
      return worker;
    },
  });
  const worker = (): FakeModelWorker => {
    const w = workers.at(-1);
    if (w === undefined) throw new Error('no worker yet');
    return w;
  };
  /** A query whose one feature row is [value, 0], recording how it settles. */
  const probeOf = (value: number, deadline: number): Probe => {
    const probe: Probe = {
      value,
      input: new Float32Array([value, 0]),
      enqueuedAt: clock.now(),
      deadline,
      settlements: 0,
      resolve(answer) {
        probe.settlements++;
        probe.answer = answer;
      },
      reject(error) {
        probe.settlements++;
        probe.error = error;
      },
    };
    return probe;
  };
  /** Submits a query whose one feature row is [value, 0]. */
  const submit = (value: number, deadline = FAR): Probe => {
    const probe = probeOf(value, deadline);
    replica.submit(probe);
    return probe;
  };
  /** Submits a client batch of queries whose rows are [value, 0], admitted as one unit; `refusals` records its refusal. */
  const submitUnit = (values: number[], deadline = FAR): { probes: Probe[]; refusals: unknown[] } => {
    const refusals: unknown[] = [];
    const probes = values.map((value) => probeOf(value, deadline));
    replica.submitUnit({ queries: probes, deadline, refuse: (error) => refusals.push(error) });
    return { probes, refusals };
  };
  return { clock, replica, workers, worker, orphaned, failures, batches, submit, submitUnit };
}

const rowsOf = (run: { input: Float32Array | Int32Array; rows: number }): number[] => Array.from({ length: run.rows }, (_, r) => run.input[r * 2] as number);

test('queries that arrive while a batch runs form the next batch, in order, each answered with its own row', async (t) => {
  const { replica, worker, submit } = setup();
  await replica.start();
  const first = submit(1);
  t.deepEqual(rowsOf(worker().lastRun), [1], 'an idle replica runs a query at once');
  const queued = [2, 3, 4, 5].map((v) => submit(v));
  t.is(worker().runs.length, 1, 'one batch at a time');
  t.is(replica.outstanding, 5);
  worker().lastRun.answer({ outputOf: (row) => [row[0] ?? 0, 10 * (row[0] ?? 0)] });
  await settle();
  t.deepEqual(Array.from(first.answer?.scores ?? []), [1, 10]);
  t.deepEqual(rowsOf(worker().lastRun), [2, 3, 4, 5], 'the queue became one batch');
  worker().lastRun.answer();
  await settle();
  t.deepEqual(
    queued.map((q) => [q.answer?.scores[0], q.answer?.batchSize]),
    [2, 3, 4, 5].map((v) => [v, 4]),
  );
  t.like(replica.counters, { batches: 2, rows: 5, refused: 0, expired: 0 });
  t.is(replica.outstanding, 0);
});

test('batches never exceed the limit: the rest waits for the next batch', async (t) => {
  const { replica, worker, submit } = setup({ batching: { mode: 'fixed', maxBatchSize: 3 } });
  await replica.start();
  submit(0);
  for (let v = 1; v <= 7; v++) submit(v);
  const sizes: number[] = [];
  while (worker().runs.some((r) => !r.settled)) {
    sizes.push(worker().lastRun.rows);
    worker().lastRun.answer();
    await settle();
  }
  t.deepEqual(sizes, [1, 3, 3, 1]);
});

test('queueing delay does not shrink the AIMD limit: it reads the batch compute time, not how long queries waited', async (t) => {
  const { clock, replica, worker, submit } = setup({ batching: { mode: 'aimd', initialBatchSize: 1, additiveStep: 2, backoffFactor: 0.5, maxBatchSize: 64 }, budgetMs: 10 });
  await replica.start();
  submit(1);
  const waiting = [2, 3, 4, 5, 6, 7, 8, 9].map((v) => submit(v));
  // The first batch comes back 40 ms later (the main thread was slow to hear it): the queued queries waited 40 ms,
  // four budgets, but the model computed for 2 ms.
  clock.advance(40);
  worker().lastRun.answer({ computeMs: 2 });
  await settle();
  t.is(replica.batchLimit, 3, 'grown, not shrunk');
  clock.advance(40);
  worker().lastRun.answer({ computeMs: 3 });
  await settle();
  t.is(replica.batchLimit, 5, 'a batch of queries that each waited 80 ms still grows the limit');
  t.true(waiting.slice(0, 3).every((q) => q.answer !== undefined && q.answer.queueMs >= 40), 'they did wait');
});

test('the AIMD limit grows after full batches within budget and backs off after one over it', async (t) => {
  const { replica, worker, submit, batches } = setup({ batching: { mode: 'aimd', initialBatchSize: 1, additiveStep: 2, backoffFactor: 0.5, maxBatchSize: 64 }, budgetMs: 10 });
  await replica.start();
  t.is(replica.batchLimit, 1);
  submit(1);
  for (let v = 2; v <= 10; v++) submit(v);
  worker().lastRun.answer({ computeMs: 2 });
  await settle();
  t.is(replica.batchLimit, 3, 'a full batch of 1 within budget: +2');
  t.is(worker().lastRun.rows, 3);
  worker().lastRun.answer({ computeMs: 5, stalledMs: 4 });
  await settle();
  t.is(replica.batchLimit, 5, 'compute plus stall (9 ms) is within the 10 ms budget');
  t.is(worker().lastRun.rows, 5);
  worker().lastRun.answer({ computeMs: 25 });
  await settle();
  t.is(replica.batchLimit, 2, 'over budget: floor(0.5 x 5)');
  t.deepEqual(
    batches.map((b) => [b.size, b.limit]),
    [
      [1, 3],
      [3, 5],
      [5, 2],
    ],
  );
});

/**
 * A replica whose one batch of one row took 1000 ms, now running one (ends in ~1000 ms) while one waits with a
 * far deadline: a query due sooner goes ahead of it (earliest deadline first) and would answer in ~2000 ms.
 */
async function oneRunningOneQueued(batching: Setup['batching'] = {}) {
  const s = setup({ batching: { mode: 'fixed', maxBatchSize: 1, ...batching }, batchTimeoutMs: 10_000 });
  await s.replica.start();
  s.submit(0);
  s.clock.advance(1000);
  s.worker().lastRun.answer();
  await settle();
  s.submit(1);
  return { ...s, queued: s.submit(2) };
}

test('admission refuses a query the queue ahead makes late, with 503 and a Retry-After from the queue', async (t) => {
  const { clock, replica, submit, orphaned, queued } = await oneRunningOneQueued();
  const late = submit(3, clock.now() + 1500);
  t.true(late.error instanceof OverloadedError);
  const error = late.error as OverloadedError;
  t.is(error.status, 503);
  t.is(error.retryAfterSeconds, 2, 'what is promised drains in ~2000 ms (the running batch, then the queued one)');
  t.regex(error.message, /replica m@1#0 would answer in ~2000\.0 ms \(1 queued, 1 running.*the deadline is in 1500\.0 ms/);
  t.is(replica.counters.refused, 1);
  // Its batch would end in 2000 ms, and an answer needs 0.5 ms to leave.
  const inTime = submit(4, clock.now() + 2000.5);
  t.is(inTime.error, undefined, 'a deadline the predicted finish meets is admitted');
  t.is(queued.error, undefined);
  t.is(replica.counters.admitted, 4);
  t.deepEqual(orphaned, [], 'no batch overran its timeout here');
});

test('a query not yet read is refused unread as submit would refuse it, counted once; one with room is neither counted nor queued', async (t) => {
  const { clock, replica, submit } = await oneRunningOneQueued({ maxQueueSize: 3 });
  const before = { ...replica.counters };
  const refusal = replica.refuseUnread(clock.now() + 1500);
  t.true(refusal instanceof OverloadedError);
  t.is(refusal?.retryAfterSeconds, 2);
  t.regex(refusal?.message ?? '', /replica m@1#0 would answer in ~2000\.0 ms \(1 queued, 1 running.*the deadline is in 1500\.0 ms/);
  t.is(replica.counters.refused, before.refused + 1);
  t.is(replica.counters.admitted, before.admitted);
  t.is(replica.outstanding, 2, 'nothing was queued');
  // Room for it: undefined, and nothing counted (the query is counted when it is submitted).
  t.is(replica.refuseUnread(clock.now() + 2000.5), undefined);
  t.deepEqual(replica.counters, { ...before, refused: before.refused + 1 });
  t.is(replica.outstanding, 2);
  // The same query submitted gets the same refusal.
  t.is((submit(3, clock.now() + 1500).error as Error).message, refusal?.message ?? '');
  // A full queue refuses unread too, counted by its reason.
  submit(4);
  submit(5);
  const full = replica.counters.refusedQueueFull;
  t.regex(replica.refuseUnread(FAR)?.message ?? '', /has 3 queries queued \(maxQueueSize 3\)/);
  t.is(replica.counters.refusedQueueFull, full + 1);
});

test('maxQueueSize refuses queries beyond the queue, not the one running', async (t) => {
  const { replica, submit } = setup({ batching: { maxQueueSize: 2 } });
  await replica.start();
  const probes = [1, 2, 3, 4].map((v) => submit(v));
  t.deepEqual(
    probes.map((p) => p.error instanceof OverloadedError),
    [false, false, false, true],
  );
  t.regex((probes[3]?.error as Error).message, /has 2 queries queued \(maxQueueSize 2\)/);
  t.is((probes[3]?.error as OverloadedError).retryAfterSeconds, 1);
});

test('a failed batch rejects only its members, with the model error and its cause; the replica carries on', async (t) => {
  const { replica, worker, submit, failures } = setup();
  await replica.start();
  const member = submit(1);
  const next = [submit(2), submit(3)];
  worker().lastRun.fail({
    name: 'ModelRuntimeError',
    code: 'MODEL_RUNTIME_ERROR',
    message: 'model m@1 failed on a batch of 1: row 0 is out of range',
    cause: { name: 'RangeError', code: 'E_RANGE', message: 'row 0 is out of range' },
  });
  await settle();
  t.true(member.error instanceof ModelRuntimeError);
  t.is((member.error as ModelRuntimeError).code, 'MODEL_RUNTIME_ERROR');
  t.is((member.error as Error).message, 'model m@1 failed on a batch of 1: row 0 is out of range');
  t.is(((member.error as Error).cause as Error).name, 'RangeError');
  t.is(((member.error as Error).cause as { code?: string }).code, 'E_RANGE');
  t.true(next.every((q) => q.settlements === 0), 'queued queries are not touched');
  worker().lastRun.answer();
  await settle();
  t.deepEqual(
    next.map((q) => q.answer?.scores[0]),
    [2, 3],
  );
  t.like(replica.counters, { failedBatches: 1, batches: 1 });
  t.is(replica.status, 'running');
  t.deepEqual(failures, []);
});

for (const order of ['listeners-first', 'run-first'] as const) {
  test(`a worker that dies mid-batch hands the batch and the queue back once, and fails to its supervisor (${order})`, async (t) => {
    const { replica, worker, workers, submit, orphaned, failures } = setup();
    await replica.start();
    const probes = [submit(1), submit(2), submit(3)];
    worker().die(new Error('thread exited with code 1'), order);
    await settle();
    t.deepEqual(
      orphaned.map((o) => o.values),
      [[1, 2, 3]],
    );
    t.is(orphaned[0]?.from, 'm@1#0');
    t.true(probes.every((p) => p.settlements === 0), 'the host answers them, not the replica');
    t.is(replica.status, 'failed');
    t.false(replica.ready);
    t.is(replica.counters.workerDeaths, 1);
    t.is(failures.length, 1);
    t.true(failures[0]?.error instanceof ReplicaFailedError);
    t.regex((failures[0]?.error as Error).message, /worker died: thread exited with code 1/);
    const refused = submit(4);
    t.true(refused.error instanceof ReplicaFailedError, 'a failed replica takes no queries');

    await replica.restart();
    t.is(workers.length, 2, 'a fresh worker');
    t.deepEqual(workers[0]?.closed, { abandon: true }, 'the dead one is closed');
    t.is(worker().warmups, 6, 'and warmed up (three sizes, twice each)');
    t.true(replica.ready);
    t.is(replica.restarts, 1);
    const after = submit(5);
    worker().lastRun.answer();
    await settle();
    t.is(after.answer?.scores[0], 5);
  });
}

test('a worker that dies between batches is detected: the replica fails and hands back nothing', async (t) => {
  const { replica, worker, submit, orphaned, failures } = setup();
  await replica.start();
  submit(1);
  worker().lastRun.answer();
  await settle();
  worker().die(new Error('idle crash'));
  await settle();
  t.is(replica.status, 'failed');
  t.is(replica.counters.workerDeaths, 1);
  t.is(failures.length, 1);
  t.deepEqual(
    orphaned.map((o) => o.values),
    [[]],
  );
});

test('an onnxruntime batch past the timeout: its queries are handed back and the replica takes none until the run returns', async (t) => {
  const { clock, replica, worker, submit, orphaned, failures } = setup({ interruptible: false, batchTimeoutMs: 500 });
  await replica.start();
  const stuck = submit(1);
  submit(2);
  clock.advance(499);
  t.deepEqual(orphaned, []);
  clock.advance(1);
  await settle();
  t.deepEqual(
    orphaned.map((o) => o.values),
    [[1, 2]],
  );
  t.regex((orphaned[0]?.error as Error).message, /ran past the 500 ms batch timeout/);
  t.is(replica.counters.timeouts, 1);
  t.false(replica.ready, 'not ready: the set routes elsewhere');
  t.is(replica.status, 'running', 'not failed: the run cannot be cut off, so there is nothing to restart');
  t.deepEqual(failures, []);
  t.is(worker().closed, undefined, 'the worker is never closed under a native run');
  const meanwhile = submit(3);
  t.is(worker().runs.length, 1, 'no batch starts while the stuck one runs');
  worker().runs[0]?.answer();
  await settle();
  t.true(replica.ready, 'ready again once the run returned');
  t.is(stuck.answer?.scores[0], 1, 'a late answer still counts (the first copy to answer wins)');
  t.deepEqual(rowsOf(worker().lastRun), [3]);
  worker().lastRun.answer();
  await settle();
  t.is(meanwhile.answer?.scores[0], 3);
});

test('a stuck onnxruntime batch that later fails, or whose worker then dies, is not handed back or rejected again', async (t) => {
  const { clock, replica, worker, submit, orphaned } = setup({ interruptible: false, batchTimeoutMs: 500 });
  await replica.start();
  const stuck = submit(1);
  clock.advance(500);
  await settle();
  worker().die(new Error('crash under the stuck run'));
  await settle();
  t.deepEqual(
    orphaned.map((o) => o.values),
    [[1], []],
    'handed back at the timeout only',
  );
  t.is(stuck.settlements, 0, 'its retry elsewhere decides');
});

test('a JS batch past the timeout recycles the worker: the batch and queue are handed back and the hung worker is abandoned', async (t) => {
  const { clock, replica, workers, submit, orphaned, failures } = setup({ interruptible: true, batchTimeoutMs: 500 });
  await replica.start();
  submit(1);
  submit(2);
  clock.advance(500);
  await settle();
  t.deepEqual(
    orphaned.map((o) => o.values),
    [[1, 2]],
  );
  t.is(replica.counters.timeouts, 1);
  t.is(replica.status, 'failed');
  t.is(failures.length, 1);
  await replica.restart();
  t.deepEqual(workers[0]?.closed, { abandon: true });
  t.is(workers.length, 2);
  t.true(replica.ready);
});

test('cancel: a queued copy stops counting at once and is never run; a running one stops counting as outstanding', async (t) => {
  const { replica, worker, submit } = setup();
  await replica.start();
  const running = submit(1);
  const loser = submit(2);
  submit(3);
  t.is(replica.outstanding, 3);
  replica.cancel(loser);
  t.is(replica.outstanding, 2, 'at once, before any take');
  replica.cancel(running);
  t.is(replica.outstanding, 1);
  replica.cancel(running);
  t.is(replica.outstanding, 1, 'cancelling twice counts once');
  worker().lastRun.answer();
  await settle();
  t.deepEqual(rowsOf(worker().lastRun), [3], 'the cancelled copy is dropped unrun');
  t.is(loser.settlements, 0);
});

test('regression (issue 14, bug 8): cancelled copies no longer count toward maxQueueSize', async (t) => {
  const { replica, submit } = setup({ batching: { maxQueueSize: 2 } });
  await replica.start();
  submit(1);
  const losers = [submit(2), submit(3)];
  for (const loser of losers) replica.cancel(loser);
  const admitted = submit(4);
  t.is(admitted.error, undefined, 'two queued copies lost their race: the queue has room');
});

test("regression (issue 14, bug 8): cancelled copies no longer inflate admission's expected wait", async (t) => {
  const { clock, replica, worker, submit } = setup({ batching: { mode: 'fixed', maxBatchSize: 1 } });
  await replica.start();
  submit(0);
  clock.advance(100);
  worker().lastRun.answer();
  await settle();
  submit(1);
  const losers = Array.from({ length: 10 }, (_, i) => submit(10 + i));
  for (const loser of losers) replica.cancel(loser);
  // Counting the ten losers, the wait would be ~1200 ms; without them it is ~200 ms (the running batch, then its own).
  const query = submit(2, clock.now() + 250);
  t.is(query.error, undefined);
});

test('expired queries are answered with DeadlineExceededError when their turn comes', async (t) => {
  const { clock, replica, worker, submit } = setup();
  await replica.start();
  submit(1);
  const late = submit(2, clock.now() + 50);
  clock.advance(60);
  worker().lastRun.answer();
  await settle();
  t.true(late.error instanceof DeadlineExceededError);
  t.is(replica.counters.expired, 1);
});

test('stop drains: it answers what is running and queued, refuses new queries, then closes the worker', async (t) => {
  const { replica, worker, submit } = setup({ batching: { mode: 'fixed', maxBatchSize: 1 } });
  await replica.start();
  const probes = [submit(1), submit(2)];
  let stopped = false;
  const stopping = replica.stop().then(() => {
    stopped = true;
  });
  await settle();
  t.false(stopped);
  const refused = submit(3);
  t.true(refused.error instanceof ReplicaFailedError);
  worker().lastRun.answer();
  await settle();
  t.false(stopped, 'the queued query still runs');
  t.is(worker().closed, undefined);
  worker().lastRun.answer();
  await stopping;
  t.deepEqual(
    probes.map((p) => p.answer?.scores[0]),
    [1, 2],
  );
  t.not(worker().closed, undefined);
});

test('configured stalls reach the worker through its fault part; injectFault goes the same way', async (t) => {
  const { replica, worker } = setup({ faults: { stallProbability: 0.25, stallMs: 40, seed: 7 } });
  await replica.start();
  await replica.injectFault({ kind: 'exit' });
  t.deepEqual(worker().injected, [{ kind: 'stall', ms: 40, probability: 0.25, seed: 7 }, { kind: 'exit' }]);
});

test('a worker that cannot load fails the start with ModelLoadError, keeping the cause', async (t) => {
  const { replica } = setup({ loadError: new Error('not an ONNX file') });
  const error = await t.throwsAsync(replica.start());
  t.is((error as { code?: string }).code, 'MODEL_LOAD_FAILED');
  t.regex(error?.message ?? '', /could not load \/models\/m\/1\/model: not an ONNX file/);
  t.is((error?.cause as Error).message, 'not an ONNX file');
});

test('a client batch is admitted once and runs as its own batch past the AIMD limit, each row answered once, in order', async (t) => {
  const { replica, worker, submit, submitUnit } = setup({ batching: { mode: 'aimd', initialBatchSize: 1, additiveStep: 1, maxBatchSize: 64 } });
  await replica.start();
  const first = submit(100);
  const values = Array.from({ length: 20 }, (_, i) => i + 1);
  const { probes, refusals } = submitUnit(values);
  t.deepEqual(refusals, []);
  t.like(replica.counters, { admitted: 21, units: 1, refused: 0 });
  worker().lastRun.answer({ computeMs: 1, outputOf: (row) => [row[0] ?? 0, 0] });
  await settle();
  t.deepEqual(rowsOf(worker().lastRun), values, 'the unit is one batch of 20, though the AIMD limit is 2');
  t.is(replica.batchLimit, 2);
  worker().lastRun.answer({ computeMs: 1, outputOf: (row) => [row[0] ?? 0, 0] });
  await settle();
  t.deepEqual(probes.map((p) => p.answer?.scores[0]), values, 'each row its own answer');
  t.true(probes.every((p) => p.settlements === 1));
  t.is(first.settlements, 1);
  t.like(replica.counters, { batches: 2, rows: 21 });
  t.is(replica.batchLimit, 2, 'the 20-row batch was the client\'s size, not AIMD\'s: the limit did not move');
});

test('a client batch that cannot fit even on an idle replica is refused whole with BatchTooLargeError and the largest N; a busy one with 503', async (t) => {
  const { clock, replica, worker, submit, submitUnit } = setup({ batching: { mode: 'fixed', maxBatchSize: 1 }, batchTimeoutMs: 100_000 });
  await replica.start();
  // Batches of one row take 1000 ms here (one at a time: maxBatchSize 1).
  for (let i = 0; i < 3; i++) {
    submit(i);
    clock.advance(1000);
    worker().lastRun.answer();
    await settle();
  }
  const runs = worker().runs.length;
  const tooMany = submitUnit([1, 2, 3, 4, 5], clock.now() + 3500);
  t.is(tooMany.refusals.length, 1, 'refused once, as a unit');
  const error = tooMany.refusals[0] as BatchTooLargeError;
  t.true(error instanceof BatchTooLargeError);
  t.is(error.status, 400);
  t.true(error.largestRows >= 2 && error.largestRows <= 3, `${error.largestRows} rows fit 3500 ms at ~1000 ms a row`);
  t.regex(error.message, /cannot answer 5 rows within 3500\.0 ms even when idle.*at most \d rows fit/);
  t.deepEqual(error.toJSON().largest_rows, error.largestRows);
  t.true(tooMany.probes.every((p) => p.settlements === 0), 'no row answered on its own');
  t.is(worker().runs.length, runs, 'nothing ran');
  t.like(replica.counters, { refused: 5, refusedTooLarge: 5, units: 0 });
  // Busy: one row running (ends in ~1000 ms); two rows fit 2500 ms idle, not behind it.
  submit(9);
  const busy = submitUnit([1, 2], clock.now() + 2500);
  t.true(busy.refusals[0] instanceof OverloadedError, String(busy.refusals[0]));
  t.like(replica.counters, { refused: 7, refusedTooLarge: 5 });
});

test('cancel of an aborted query: dropped unrun if queued and counted; a running batch is never cut off or counted', async (t) => {
  const { replica, worker, submit, submitUnit } = setup();
  await replica.start();
  const running = submit(1);
  const { probes } = submitUnit([2, 3, 4]);
  for (const q of [running, ...probes.slice(0, 2)]) {
    q.aborted = true;
    replica.cancel(q);
  }
  t.is(replica.counters.cancelled, 2, 'the two queued rows, not the running one');
  t.is(worker().runs.length, 1);
  worker().lastRun.answer();
  await settle();
  t.is(running.settlements, 1, 'the running batch finished and answered');
  t.deepEqual(rowsOf(worker().lastRun), [4], 'the cancelled rows never ran');
  t.true(probes.slice(0, 2).every((p) => p.settlements === 0));
});

test("a stall's late finishes stop counting toward admission's margin 500 ms after it, however few queries came since", async (t) => {
  const { clock, replica, worker, submit } = setup({ batching: { mode: 'fixed', maxBatchSize: 1 }, batchTimeoutMs: 10_000 });
  await replica.start();
  const finish = async (ms: number): Promise<void> => {
    clock.advance(ms);
    worker().lastRun.answer();
    await settle();
  };
  // 25 lone batches of 10 ms: each finishes when promised.
  for (let i = 0; i < 25; i++) {
    submit(i);
    await finish(10);
  }
  // A stall: 21 queries queue behind a batch that takes 100 ms, so every one of them finishes ~90 ms late.
  for (let i = 0; i < 21; i++) submit(100 + i);
  await finish(100);
  for (let i = 1; i < 21; i++) await finish(10);
  /** Whether a query due in 25 ms is admitted behind a running 10 ms batch (it would finish at 20). */
  const admitsTight = async (): Promise<boolean> => {
    submit(200);
    const tight = submit(201, clock.now() + 25);
    await finish(10);
    if (tight.error === undefined) await finish(10);
    return tight.error === undefined;
  };
  t.false(await admitsTight(), 'just after the stall, its 90 ms errors are the margin');
  // Half a second later, and 20 queries on time since: the stall has left the margin.
  clock.advance(500);
  for (let i = 0; i < 20; i++) {
    submit(300 + i);
    await finish(10);
  }
  t.true(await admitsTight(), 'the margin is what the last 500 ms measured');
});
