import test from 'ava';
import { ReplicaSet } from '../../../actors/replica-set.js';
import type { ReplicaAnswer } from '../../../actors/contracts.js';
import type { ModelSpec } from '../../../actors/worker/protocol.js';
import { ManualClock } from '../../../src/kernel/clock.js';
import { Supervisor } from '../../../src/kernel/supervisor.js';
import { resolveDeployModelOptions, supervisionDefaults, type DeployModelOptions } from '../../../src/config/options.js';
import { BatchTooLargeError, CancelledError, DeadlineExceededError, NoReplicaAvailableError, OverloadedError, ReplicaFailedError } from '../../../src/errors.js';
import { MultiplexPool } from '../../../src/routing/multiplex-pool.js';
import { fakeReplicaFactory, type FakeReplica } from '../../helpers/fake-replica.js';

const input = Float32Array.of(1, 2, 3);

/**
 * Lets promise chains run to the end (scaling steps, wake-ups) without advancing any clock: the set's async
 * steps wait only on fake replicas, which settle in microtasks.
 */
async function drainMicrotasks(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

interface Setup {
  set: ReplicaSet<FakeReplica>;
  made: FakeReplica[];
  clock: ManualClock;
}

/** A model version `name@1` on fake replicas and a ManualClock, its replicas started. */
async function deploy(
  options: Partial<DeployModelOptions> = {},
  extra: { clock?: ManualClock; pool?: MultiplexPool; holdLoads?: boolean; start?: boolean } = {},
): Promise<Setup> {
  const clock = extra.clock ?? new ManualClock(1000);
  const resolved = resolveDeployModelOptions({ name: 'm', version: '1', path: 'm.js', ...options });
  const spec: ModelSpec = { key: `${resolved.name}@1`, kind: 'js', path: 'm.js', inputDtype: 'float32', featureShape: [3], intraOpNumThreads: 1 };
  const supervisor = new Supervisor('supervisor', supervisionDefaults, { clock });
  const { factory, made } = fakeReplicaFactory(`${resolved.name}@1`, { holdLoads: extra.holdLoads ?? false });
  const set = new ReplicaSet(resolved, spec, clock, supervisor, undefined, extra.pool, factory);
  if (extra.start !== false) await set.setReplicas(resolved.replicas);
  return { set, made, clock };
}

/** A query's promise, with its outcome readable synchronously once settled. */
function track(promise: Promise<ReplicaAnswer>): { promise: Promise<ReplicaAnswer>; answer?: ReplicaAnswer; error?: unknown } {
  const out: { promise: Promise<ReplicaAnswer>; answer?: ReplicaAnswer; error?: unknown } = { promise };
  promise.then(
    (answer) => (out.answer = answer),
    (error: unknown) => (out.error = error),
  );
  return out;
}

const hedged = { replicas: 2, hedging: { delayMs: 5, maxExtraLoad: 1 } };

test('a query goes to the replica with the least outstanding work and resolves with its answer', async (t) => {
  const { set, made } = await deploy({ replicas: 2, hedging: { enabled: false } });
  const [r0, r1] = made as [FakeReplica, FakeReplica];
  const first = set.predict(input, 2000);
  const second = set.predict(input, 2000);
  t.is(r0.held.length, 1);
  t.is(r1.held.length, 1, 'the idle replica takes the second query');
  r1.answer(undefined, [7]);
  r0.answer(undefined, [3]);
  t.deepEqual([...(await first).scores], [3]);
  t.deepEqual([...(await second).scores], [7]);
  t.is((await second).replica, 'm@1#1');
});

test('a hedge that answers first wins: counted in hedges.won, and the losing copy is cancelled on its replica', async (t) => {
  const { set, made, clock } = await deploy(hedged);
  const [r0, r1] = made as [FakeReplica, FakeReplica];
  const query = set.predict(input, clock.now() + 100);
  t.is(r0.held.length, 1);
  clock.advance(4);
  t.is(r1.submitted.length, 0, 'no hedge before the delay');
  clock.advance(1);
  t.is(r1.held.length, 1, 'hedged after 5 ms');
  t.deepEqual(set.hedges, { sent: 1, won: 0, denied: 0 });
  const loser = r0.held[0];
  r1.answer(undefined, [9]);
  t.is((await query).replica, 'm@1#1');
  t.deepEqual(set.hedges, { sent: 1, won: 1, denied: 0 });
  t.deepEqual(r0.cancelled, [loser], 'the loser is cancelled through its replica');
  t.true(loser?.cancelled);
  t.is(r0.outstanding, 0);
  t.deepEqual(r1.cancelled, [], 'the winner is not cancelled');
  t.is(clock.pendingTimers, 0);
});

test('when the first copy answers after a hedge was sent, the hedge is cancelled and no win is counted', async (t) => {
  const { set, made, clock } = await deploy(hedged);
  const [r0, r1] = made as [FakeReplica, FakeReplica];
  const query = set.predict(input, clock.now() + 100);
  clock.advance(5);
  const hedge = r1.held[0];
  r0.answer();
  t.is((await query).replica, 'm@1#0');
  t.deepEqual(set.hedges, { sent: 1, won: 0, denied: 0 });
  t.deepEqual(r1.cancelled, [hedge]);
  t.deepEqual(r0.cancelled, []);
});

test('a query answered before the hedge delay sends no hedge and leaves no timer', async (t) => {
  const { set, made, clock } = await deploy(hedged);
  const query = set.predict(input, clock.now() + 100);
  (made[0] as FakeReplica).answer();
  await query;
  t.is(clock.pendingTimers, 0);
  clock.advance(50);
  t.is((made[1] as FakeReplica).submitted.length, 0);
  t.deepEqual(set.hedges, { sent: 0, won: 0, denied: 0 });
});

test('a hedge denied by the budget is counted in hedges.denied and sends no copy', async (t) => {
  // 5% budget: the first query has earned 0.05 of a token, not enough for a hedge.
  const { set, made, clock } = await deploy({ replicas: 2, hedging: { delayMs: 5, maxExtraLoad: 0.05 } });
  const [r0, r1] = made as [FakeReplica, FakeReplica];
  const query = set.predict(input, clock.now() + 100);
  clock.advance(5);
  t.is(r1.submitted.length, 0);
  t.deepEqual(set.hedges, { sent: 0, won: 0, denied: 1 });
  r0.answer();
  t.is((await query).replica, 'm@1#0');
  t.deepEqual(set.hedges, { sent: 0, won: 0, denied: 1 });
});

test('the default hedge delay is the p95 of recent response times, current from the 20th query on', async (t) => {
  const { set, made, clock } = await deploy({ replicas: 2, hedging: { maxExtraLoad: 1 } });
  const [r0, r1] = made as [FakeReplica, FakeReplica];
  t.is(set.hedgeDelayMs, undefined, 'not calibrated: no hedging');
  // One slow query (100 ms), then fast ones (2 ms): the delay must follow the fast majority at once (issue 14, bug 5).
  const answerAfter = async (ms: number): Promise<void> => {
    const query = set.predict(input, clock.now() + 1000);
    clock.advance(ms);
    const holder = r0.held.length > 0 ? r0 : r1;
    holder.answer();
    await query;
  };
  await answerAfter(100);
  for (let i = 1; i < 19; i++) await answerAfter(2);
  t.is(set.hedgeDelayMs, undefined, '19 samples: still not calibrated');
  await answerAfter(2);
  t.is(set.hedgeDelayMs, 100, '20 samples, 1 slow: the p95 is the slow one');
  await answerAfter(2);
  t.is(set.hedgeDelayMs, 2, '21 samples: the p95 follows the fast majority');
});

test('a retry after a worker death: the query held by the dead replica is answered by another', async (t) => {
  const { set, made } = await deploy({ replicas: 2, hedging: { enabled: false } });
  const [r0, r1] = made as [FakeReplica, FakeReplica];
  const query = track(set.predict(input, 5000));
  const copy = r0.held[0];
  r0.die();
  t.deepEqual(r1.held, [copy], 'retried on the other replica');
  t.deepEqual(copy?.failedOn, ['m@1#0']);
  r1.answer();
  t.is((await query.promise).replica, 'm@1#1');
});

test('a query retried after a worker death fails with ReplicaFailedError when its second replica dies too', async (t) => {
  const { set, made } = await deploy({ replicas: 3, hedging: { enabled: false } });
  const [r0, r1, r2] = made as [FakeReplica, FakeReplica, FakeReplica];
  const query = set.predict(input, 5000);
  r0.die();
  const holder = r1.held.length > 0 ? r1 : r2;
  holder.die();
  const error = await t.throwsAsync(query, { instanceOf: ReplicaFailedError });
  t.regex(error?.message ?? '', /after 2 attempts/);
  t.is(r1.submitted.length + r2.submitted.length, 1, 'one retry, not two');
});

test('a worker death with no other ready replica fails the query with ReplicaFailedError', async (t) => {
  const { set, made } = await deploy({ replicas: 1 });
  const query = set.predict(input, 5000);
  (made[0] as FakeReplica).die(new Error('worker thread exited with code 1'));
  const error = await t.throwsAsync(query, { instanceOf: ReplicaFailedError });
  t.regex(error?.message ?? '', /replica m@1#0 of model m@1 failed while holding the query \(worker thread exited with code 1\) and no other replica was ready to retry it/);
});

test('a hedged copy moved by a worker death is cancelled on the replica now holding it', async (t) => {
  const { set, made, clock } = await deploy(hedged);
  const [r0, r1] = made as [FakeReplica, FakeReplica];
  const query = set.predict(input, clock.now() + 100);
  const first = r0.held[0];
  clock.advance(5);
  const hedge = r1.held[0];
  r0.die(); // the first copy moves to r1, beside the hedge
  t.deepEqual(r1.held, [hedge, first]);
  r1.answer(hedge);
  await query;
  t.deepEqual(r1.cancelled, [first], 'cancelled where it is, not on the dead replica');
  t.deepEqual(r0.cancelled, []);
});

test('a deadline drop with time left is retried once on an idle sibling', async (t) => {
  const { set, made, clock } = await deploy({ replicas: 2, hedging: { enabled: false } });
  const [r0, r1] = made as [FakeReplica, FakeReplica];
  const query = set.predict(input, clock.now() + 100);
  clock.advance(10);
  r0.fail(new DeadlineExceededError('replica m@1#0 could not run the query before its deadline'));
  t.is(r1.held.length, 1, 'the idle sibling got the query');
  r1.answer();
  t.is((await query).replica, 'm@1#1');
});

test('no retry on a busy sibling, nor after the deadline, nor for other errors', async (t) => {
  const late = (): DeadlineExceededError => new DeadlineExceededError('replica m@1#0 could not run the query before its deadline');
  {
    const { set, made, clock } = await deploy({ replicas: 2, hedging: { enabled: false } });
    const [r0, r1] = made as [FakeReplica, FakeReplica];
    const query = set.predict(input, clock.now() + 100);
    void set.predict(input, clock.now() + 100); // keeps r1 busy
    r0.fail(late());
    await t.throwsAsync(query, { instanceOf: DeadlineExceededError }, 'busy sibling');
    t.is(r1.submitted.length, 1);
  }
  {
    const { set, made, clock } = await deploy({ replicas: 2, hedging: { enabled: false } });
    const query = set.predict(input, clock.now() + 100);
    clock.advance(100);
    (made[0] as FakeReplica).fail(late());
    await t.throwsAsync(query, { instanceOf: DeadlineExceededError }, 'deadline passed');
    t.is((made[1] as FakeReplica).submitted.length, 0);
  }
  {
    const { set, made, clock } = await deploy({ replicas: 2, hedging: { enabled: false } });
    const query = set.predict(input, clock.now() + 100);
    (made[0] as FakeReplica).fail(new Error('model threw'));
    await t.throwsAsync(query, { message: 'model threw' }, 'not a deadline drop');
    t.is((made[1] as FakeReplica).submitted.length, 0);
  }
});

test('no ready replica: NoReplicaAvailableError naming each replica state', async (t) => {
  const { set, made } = await deploy({ replicas: 1 });
  (made[0] as FakeReplica).status = 'failed';
  const error = await t.throwsAsync(set.predict(input, 5000), { instanceOf: NoReplicaAvailableError });
  t.regex(error?.message ?? '', /model m@1 has no ready replica \(m@1#0: failed\)/);
});

test('scale to zero after idleMs without queries, and a wake-up on the next query', async (t) => {
  const { set, made, clock } = await deploy({ replicas: 1, scaleToZero: { idleMs: 1000 } }, { holdLoads: true, start: false });
  const starting = set.setReplicas(1);
  await drainMicrotasks();
  (made[0] as FakeReplica).finishLoading();
  await starting;
  clock.advance(600);
  const query = set.predict(input, clock.now() + 5000); // a query at 600 ms keeps the model up until 1,600 ms
  (made[0] as FakeReplica).answer();
  await query;
  clock.advance(400);
  await drainMicrotasks();
  t.is(set.replicas.length, 1, 'not idle for 1,000 ms yet');
  clock.advance(599);
  await drainMicrotasks();
  t.is(set.replicas.length, 1);
  clock.advance(1);
  await drainMicrotasks();
  t.is(set.replicas.length, 0, 'scaled to zero 1,000 ms after the last query');
  t.true(set.scaledToZero);
  t.is((made[0] as FakeReplica).stops, 1);

  // A wave of three concurrent queries: exactly one cold start, one new replica, every query answered.
  const wave = [0, 1, 2].map(() => track(set.predict(input, clock.now() + 5000)));
  await drainMicrotasks();
  t.is(made.length, 2, 'one replica is loading for the whole wave');
  clock.advance(40);
  (made[1] as FakeReplica).finishLoading();
  await drainMicrotasks();
  t.deepEqual(set.coldStarts, [40]);
  t.is((made[1] as FakeReplica).held.length, 3);
  for (let i = 0; i < 3; i++) (made[1] as FakeReplica).answer();
  await Promise.all(wave.map((q) => q.promise));
  t.is(made.length, 2);
  t.is(set.coldStarts.length, 1);
});

test('a replica with work outstanding is not scaled to zero', async (t) => {
  const { set, made, clock } = await deploy({ replicas: 1, scaleToZero: { idleMs: 1000 } });
  void set.predict(input, clock.now() + 10_000);
  clock.advance(1000);
  await drainMicrotasks();
  t.is(set.replicas.length, 1, 'the query is still running');
  t.is(clock.pendingTimers, 1, 'one look per idle period, not a 0 ms poll');
  (made[0] as FakeReplica).answer();
  clock.advance(999);
  await drainMicrotasks();
  t.is(set.replicas.length, 1, 'busy replicas count as in use for another idle period');
  clock.advance(1);
  await drainMicrotasks();
  t.is(set.replicas.length, 0);
});

test("coldStart 'default' answers NoReplicaAvailableError when a cold start would miss the deadline", async (t) => {
  const { set, made, clock } = await deploy({ replicas: 1, scaleToZero: { idleMs: 1000, coldStart: 'default' } }, { holdLoads: true, start: false });
  const starting = set.setReplicas(1);
  await drainMicrotasks();
  (made[0] as FakeReplica).finishLoading();
  await starting;
  clock.advance(1000);
  await drainMicrotasks();
  t.true(set.scaledToZero);

  // Not yet measured: the query is answered by default at once, and the model loads for the next one.
  const unmeasured = await t.throwsAsync(set.predict(input, clock.now() + 5000), { instanceOf: NoReplicaAvailableError });
  t.regex(unmeasured?.message ?? '', /scaled to zero and is loading; its cold start is not yet measured/);
  await drainMicrotasks();
  t.is(made.length, 2, 'the wake-up started anyway');
  clock.advance(40);
  (made[1] as FakeReplica).finishLoading();
  await drainMicrotasks();
  t.deepEqual(set.coldStarts, [40]);

  clock.advance(1000);
  await drainMicrotasks();
  t.true(set.scaledToZero);
  // Measured at 40 ms: a query with 10 ms left is answered by default; one with 100 ms left waits for the load.
  const tight = await t.throwsAsync(set.predict(input, clock.now() + 10), { instanceOf: NoReplicaAvailableError });
  t.regex(tight?.message ?? '', /a cold start takes ~40 ms, past this query's deadline/);
  const roomy = track(set.predict(input, clock.now() + 100));
  await drainMicrotasks();
  t.is(made.length, 3, 'one load for both queries');
  (made[2] as FakeReplica).finishLoading();
  await drainMicrotasks();
  (made[2] as FakeReplica).answer();
  t.is((await roomy.promise).replica, 'm@1#2');
});

test('multiplex eviction: loading a version suspends the least recently used one, which wakes on its next query', async (t) => {
  const clock = new ManualClock(1000);
  const pool = new MultiplexPool(2);
  const a = await deploy({ name: 'a', multiplexed: true }, { clock, pool });
  const b = await deploy({ name: 'b', multiplexed: true }, { clock, pool });
  t.deepEqual(pool.active, ['a@1', 'b@1']);
  // A query for a makes b the least recently used.
  const qa = a.set.predict(input, clock.now() + 1000);
  (a.made[0] as FakeReplica).answer();
  await qa;
  const c = await deploy({ name: 'c', multiplexed: true }, { clock, pool });
  t.is(b.set.replicas.length, 0, 'b was suspended');
  t.is((b.made[0] as FakeReplica).stops, 1);
  t.is(a.set.replicas.length, 1, 'a, used more recently, kept its slot');
  t.is(c.set.replicas.length, 1);
  t.is(pool.evictions, 1);
  t.true(b.set.scaledToZero);

  // b's next query loads it again (a cold start), evicting a, now the least recently used.
  const qb = track(b.set.predict(input, clock.now() + 1000));
  await drainMicrotasks();
  t.is(b.made.length, 2);
  (b.made[1] as FakeReplica).answer();
  t.is((await qb.promise).replica, 'b@1#1');
  t.is(a.set.replicas.length, 0, 'a made room');
  t.deepEqual(pool.active.sort(), ['b@1', 'c@1']);
  t.is(b.set.coldStarts.length, 1);
});

test('concurrent queries for a multiplexed version that is not loaded share one load', async (t) => {
  const clock = new ManualClock(1000);
  const pool = new MultiplexPool(1);
  const a = await deploy({ name: 'a', multiplexed: true }, { clock, pool, holdLoads: true, start: false });
  const starting = a.set.setReplicas(1);
  await drainMicrotasks();
  (a.made[0] as FakeReplica).finishLoading();
  await starting;
  const b = await deploy({ name: 'b', multiplexed: true }, { clock, pool, holdLoads: true, start: false });
  const startingB = b.set.setReplicas(1);
  await drainMicrotasks();
  (b.made[0] as FakeReplica).finishLoading();
  await startingB;
  t.true(a.set.scaledToZero, 'b took the only slot');

  const queries = [0, 1, 2, 3].map(() => track(a.set.predict(input, clock.now() + 1000)));
  await drainMicrotasks();
  t.is(a.made.length, 2, 'one load for four queries');
  t.true((a.made[1] as FakeReplica).loading);
  clock.advance(25);
  (a.made[1] as FakeReplica).finishLoading();
  await drainMicrotasks();
  const replica = a.made[1] as FakeReplica;
  t.is(replica.held.length, 4);
  while (replica.held.length > 0) replica.answer();
  await Promise.all(queries.map((q) => q.promise));
  t.is(a.made.length, 2);
  t.deepEqual(a.set.coldStarts, [25]);
  t.is(pool.evictions, 2, 'a evicted once for b, then b once for a');
});

test('a failed load stops the replicas it started and frees the multiplex slot', async (t) => {
  const clock = new ManualClock(1000);
  const pool = new MultiplexPool(1);
  const a = await deploy({ name: 'a', multiplexed: true, replicas: 2 }, { clock, pool, holdLoads: true, start: false });
  const starting = a.set.setReplicas(2);
  await drainMicrotasks();
  (a.made[0] as FakeReplica).finishLoading();
  (a.made[1] as FakeReplica).finishLoading(new Error('no such file'));
  await t.throwsAsync(starting, { message: /model a@1: no such file/ });
  t.is(a.set.replicas.length, 0);
  t.deepEqual(a.made.map((r) => r.stops), [1, 1]);
  t.deepEqual(pool.active, []);
});

test('status lists each replica handle with a copy of its counters', async (t) => {
  const { set, made } = await deploy({ replicas: 2 });
  (made[1] as FakeReplica).counters.batches = 3;
  const status = set.status();
  t.deepEqual(
    status.map((s) => [s.name, s.status, s.ready, s.counters.batches]),
    [
      ['m@1#0', 'running', true, 0],
      ['m@1#1', 'running', true, 3],
    ],
  );
  (made[1] as FakeReplica).counters.batches = 4;
  t.is(status[1]?.counters.batches, 3, 'a snapshot, not a live view');
});

test('a query refused by one replica admission goes to one sibling with room, asked in place; none with room: refused at once', async (t) => {
  const { set, made } = await deploy({ replicas: 3, hedging: { enabled: false } });
  const [r0, r1, r2] = made as [FakeReplica, FakeReplica, FakeReplica];
  // r1 and r2 are busier, so the query goes to r0, whose admission refuses it; only r2 has room.
  r1.held.push({} as never, {} as never);
  r2.held.push({} as never);
  r2.room = true;
  const query = track(set.predict(input, 2000));
  t.is(r0.submitted.length, 1);
  r0.fail(new OverloadedError('replica m@1#0 would answer in ~30 ms', 1));
  await drainMicrotasks();
  t.deepEqual(r1.roomAsked, [2000], 'the sibling was asked, not sent the query');
  t.is(r1.submitted.length, 0);
  t.is(r2.submitted.length, 1, 'the sibling with room took it');
  r2.answer(r2.held.at(-1));
  await query.promise;
  t.is(query.answer?.replica, r2.name);

  // No sibling has room: the refusal stands, with no second submit anywhere.
  r2.room = false;
  const refused = track(set.predict(input, 3000));
  const first = made.find((r) => r.submitted.some((q) => q.deadline === 3000)) as FakeReplica;
  first.fail(new OverloadedError('full', 1));
  await drainMicrotasks();
  t.true(refused.error instanceof OverloadedError);
  t.is(made.flatMap((r) => r.submitted).filter((q) => q.deadline === 3000).length, 1, 'one hop only');

  // A retried copy refused again is not retried a second time.
  r1.room = true;
  r2.room = true;
  const twice = track(set.predict(input, 4000));
  const a = made.find((r) => r.submitted.some((q) => q.deadline === 4000)) as FakeReplica;
  a.fail(new OverloadedError('full', 1), a.held.find((q) => q.deadline === 4000));
  await drainMicrotasks();
  const b = made.find((r) => r !== a && r.held.some((q) => q.deadline === 4000)) as FakeReplica;
  t.truthy(b, 'retried once');
  b.fail(new OverloadedError('full too', 1), b.held.find((q) => q.deadline === 4000));
  await drainMicrotasks();
  t.true(twice.error instanceof OverloadedError);
  t.is(made.flatMap((r) => r.submitted).filter((q) => q.deadline === 4000).length, 2);
});

test('a query not yet read is refused, and counted once on the least loaded replica, only when no ready replica has room', async (t) => {
  const { set, made } = await deploy({ replicas: 3, hedging: { enabled: false } });
  const [r0, r1, r2] = made as [FakeReplica, FakeReplica, FakeReplica];
  r0.held.push({} as never, {} as never);
  r2.held.push({} as never);
  // r2 has room, though r1 (the least loaded) has none: nothing is refused and nothing counted (the query comes
  // by predict, and the set's retry finds r2).
  r2.room = true;
  t.is(set.refuseUnread(2000), undefined);
  t.deepEqual(made.map((r) => r.refusedUnread.length), [0, 0, 0]);

  // None has room: r1 (no work outstanding) refuses it and counts it; the others only were asked.
  r2.room = false;
  const refusal = set.refuseUnread(3000);
  t.true(refusal instanceof OverloadedError);
  t.is(refusal?.retryAfterSeconds, 2);
  t.deepEqual(made.map((r) => r.refusedUnread), [[], [3000], []]);
  t.deepEqual(made.map((r) => r.counters.refused), [0, 1, 0]);
  t.true(r0.roomAsked.includes(3000) && r2.roomAsked.includes(3000), 'every ready replica was asked');

  // A replica that is not ready neither has room nor counts: the ready ones decide.
  r1.status = 'failed';
  r1.room = true;
  t.true(set.refuseUnread(4000) instanceof OverloadedError);
  t.deepEqual(made.map((r) => r.refusedUnread.length), [0, 1, 1], 'r2, now the least loaded ready one, counted it');

  // Equally loaded and all full: the refusals are counted in turn, as queries sent now would be spread.
  r1.status = 'running';
  r1.room = false;
  r1.held.push({} as never, {} as never);
  r2.held.push({} as never);
  for (const r of made) r.refusedUnread.length = 0;
  for (let i = 0; i < 3; i++) t.true(set.refuseUnread(4500 + i) instanceof OverloadedError);
  t.deepEqual(made.map((r) => r.refusedUnread.length), [1, 1, 1]);

  // No ready replica at all: left to the normal path (which answers NoReplicaAvailableError or wakes the model).
  for (const r of made) r.status = 'failed';
  t.is(set.refuseUnread(5000), undefined);
});

test('a client batch goes whole to one replica and its answers come back in order', async (t) => {
  const { set, made } = await deploy({ replicas: 2, hedging: { enabled: false } });
  const [r0, r1] = made as [FakeReplica, FakeReplica];
  const rows = [1, 2, 3].map((v) => Float32Array.of(v, 0, 0));
  const out: { answers?: ReplicaAnswer[] } = {};
  const promise = set.predictMany(rows, 2000).then((a) => (out.answers = a));
  t.is(r0.units.length, 1, 'one unit');
  t.is(r0.held.length, 3);
  t.is(r1.held.length, 0, 'not split');
  // Answered out of order: the promise still lists them in the rows' order.
  for (const i of [2, 0, 1]) r0.answer(r0.held.find((q) => q.input === rows[i]), [i]);
  await promise;
  t.deepEqual(out.answers?.map((a) => a.scores[0]), [0, 1, 2]);
});

test('a client batch refused as busy goes whole to a sibling with room for all its rows; refused as too large, it fails at once', async (t) => {
  const { set, made } = await deploy({ replicas: 2, hedging: { enabled: false } });
  const [r0, r1] = made as [FakeReplica, FakeReplica];
  const rows = [1, 2].map((v) => Float32Array.of(v, 0, 0));
  r0.refuseNextUnit = new OverloadedError('busy', 2);
  r1.room = true;
  const moved = set.predictMany(rows, 2000);
  t.deepEqual(r1.roomRowsAsked, [2], 'asked about both rows');
  t.is(r1.held.length, 2);
  r1.answer();
  r1.answer();
  t.is((await moved).length, 2);
  // No sibling with room: the 503 stands.
  for (const r of made) {
    r.room = false;
    r.refuseNextUnit = new OverloadedError('busy', 2);
  }
  await t.throwsAsync(set.predictMany(rows, 2000), { instanceOf: OverloadedError });
  t.is(made.filter((r) => r.refuseNextUnit === undefined).length, 1, 'refused by one, not retried on the other');
  // Too large for any replica, and no split fits: no sibling is sent the whole, and the 400 stands.
  for (const r of made) {
    r.room = 0;
    r.refuseNextUnit = new BatchTooLargeError('too many', { largestRows: 1 });
  }
  const units = (): number => made.reduce((n, r) => n + r.units.length, 0);
  const before = units();
  const error = await t.throwsAsync(set.predictMany(rows, 2000), { instanceOf: BatchTooLargeError });
  t.is(error?.largestRows, 1);
  t.is(units() - before, 1, 'the one refused unit; no share was sent');
  t.true(made.some((r) => r.roomRowsAsked.at(-1) === 1), 'a split was considered (a share of one row each)');
  t.is(made.filter((r) => r.refuseNextUnit === undefined).length, 1);
});

test('a client batch no one replica can take in time is split across replicas with room for an even share each, in order', async (t) => {
  const { set, made } = await deploy({ replicas: 3, hedging: { enabled: false } });
  const [r0, r1, r2] = made as [FakeReplica, FakeReplica, FakeReplica];
  const rows = [0, 1, 2, 3, 4].map((v) => Float32Array.of(v, 0, 0));
  // Too large for r0 (the first chosen); every replica has room for 2 rows, so halves (3 + 2) do not fit but thirds do.
  r0.refuseNextUnit = new BatchTooLargeError('too many', { largestRows: 2 });
  for (const r of made) r.room = 2;
  const out: { answers?: ReplicaAnswer[] } = {};
  const promise = set.predictMany(rows, 2000).then((a) => (out.answers = a));
  t.deepEqual(made.map((r) => r.units.at(-1)?.queries.map((q) => q.input[0])), [[0, 1], [2, 3], [4]]);
  for (const r of [r2, r0, r1]) while (r.held.length > 0) r.answer(r.held[0], [(r.held[0]?.input[0] as number) * 10]);
  await promise;
  t.deepEqual(out.answers?.map((a) => a.scores[0]), [0, 10, 20, 30, 40]);

  // Busy everywhere for the whole: split into halves across the two least busy (r0 takes the whole first).
  r1.held.push({} as never);
  r2.held.push({} as never, {} as never);
  for (const r of made) r.room = 1;
  r0.refuseNextUnit = new OverloadedError('busy', 1);
  const halves = set.predictMany(rows.slice(0, 2), 3000);
  t.deepEqual(made.map((r) => r.units.filter((u) => u.deadline === 3000).map((u) => u.queries.length)), [[2, 1], [1], []]);
  r0.answer(r0.held.find((q) => q.deadline === 3000));
  r1.answer(r1.held.find((q) => q.deadline === 3000));
  t.is((await halves).length, 2);

  // A share refused after all: the other share's queued rows are dropped unrun and the refusal stands.
  r0.refuseNextUnit = new OverloadedError('busy', 1);
  r1.refuseNextUnit = new OverloadedError('busy after all', 1);
  const failed = set.predictMany(rows.slice(0, 2), 4000);
  await t.throwsAsync(failed, { instanceOf: OverloadedError, message: 'busy after all' });
  t.deepEqual(made.map((r) => r.units.filter((u) => u.deadline === 4000).map((u) => u.queries.length)), [[2, 1], [1], []]);
  const queued = r0.submitted.filter((q) => q.deadline === 4000);
  t.is(queued.length, 1, "r0's share was queued");
  t.deepEqual(r0.cancelled.filter((q) => q.deadline === 4000), queued, 'and then dropped');
  t.is(r0.held.filter((q) => q.deadline === 4000).length, 0);
});

test('an aborted caller: its queued rows are cancelled on their replica, flagged aborted, and the promise rejects with CancelledError', async (t) => {
  const { set, made } = await deploy({ replicas: 1, hedging: { enabled: false } });
  const r0 = made[0] as FakeReplica;
  const controller = new AbortController();
  const rows = [1, 2, 3].map((v) => Float32Array.of(v, 0, 0));
  const batch = set.predictMany(rows, 2000, controller.signal);
  r0.answer();
  const single = set.predict(input, 2000, controller.signal);
  controller.abort();
  await t.throwsAsync(batch, { instanceOf: CancelledError });
  await t.throwsAsync(single, { instanceOf: CancelledError });
  t.is(r0.cancelled.length, 3, 'the two rows still held and the single query');
  t.true(r0.cancelled.every((q) => q.aborted === true));
  await t.throwsAsync(set.predict(input, 2000, controller.signal), { instanceOf: CancelledError }, 'already aborted: never sent');
  t.is(r0.submitted.length, 4);
});
