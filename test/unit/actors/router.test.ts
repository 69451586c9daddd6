import test, { type ExecutionContext } from 'ava';
import { Router } from '../../../actors/router.js';
import { ManualClock } from '../../../src/kernel/clock.js';
import { Supervisor, type SupervisionEvent } from '../../../src/kernel/supervisor.js';
import { resolveAppOptions, type RegisterAppOptions } from '../../../src/config/options.js';
import { ClipperError, DeadlineExceededError, ModelRuntimeError, OverloadedError, ShuttingDownError } from '../../../src/errors.js';
import { createPolicy } from '../../../src/selection/policy-factory.js';
import { Exp4Policy } from '../../../src/selection/exp4-policy.js';
import type { Combined, ModelOutput, SelectionPolicy } from '../../../src/selection/selection-policy.js';
import type { Answer } from '../../../src/api.js';
import { FakeModelDirectory, FakeModelVersion, flush } from '../../helpers/fake-models.js';

/** Every linked model answers; the first answer is the combination, with the given confidence. */
function everyModel(confidence = 1): SelectionPolicy {
  return {
    name: 'every',
    select: (linked) => linked,
    combine: (outputs: readonly ModelOutput[]): Combined => {
      const o = outputs[0] as ModelOutput;
      return { scores: o.scores, model: o.model, version: o.version, confidence };
    },
  };
}

interface Setup {
  clock: ManualClock;
  models: FakeModelDirectory;
  router: Router;
  a: FakeModelVersion;
  b: FakeModelVersion;
}

/** A started router for app `app` (SLO 20 ms, margin 2 ms, default -1) over fake models a and b, both linked. */
async function setup(options: { app?: Partial<RegisterAppOptions>; policy?: SelectionPolicy; supervisor?: Supervisor; clock?: ManualClock; cache?: number } = {}): Promise<Setup> {
  const clock = options.clock ?? new ManualClock();
  const models = new FakeModelDirectory();
  const a = models.add(new FakeModelVersion('a', '1'));
  const b = models.add(new FakeModelVersion('b', '7'));
  const app = resolveAppOptions({ name: 'app', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 20, deadlineMarginMs: 2, ...(options.cache === undefined ? {} : { cacheMaxBytes: options.cache }), ...options.app });
  const router = new Router(app, models, clock, options.policy, options.supervisor);
  router.link('a');
  router.link('b');
  await router.start();
  return { clock, models, router, a, b };
}

/** A promise's state without waiting for it. */
function track<T>(promise: Promise<T>): { settled: () => boolean; value: () => T | undefined; error: () => unknown; count: () => number } {
  let settled = 0;
  let value: T | undefined;
  let error: unknown;
  promise.then(
    (v) => {
      settled++;
      value = v;
    },
    (e: unknown) => {
      settled++;
      error = e;
    },
  );
  return { settled: () => settled > 0, value: () => value, error: () => error, count: () => settled };
}

const input = (x = 1) => new Float32Array([x, 2]);

/**
 * Registers a test twice: with the cache on (the default; answers come through the prediction cache's promises)
 * and with it off (answers come straight through a sink, {@link FakeModelVersion.send}: the hot path; the test
 * 'the cache off: every query runs on the model' checks that they do).
 */
function both(title: string, body: (t: ExecutionContext, cache: number | undefined) => Promise<void>): void {
  test(title, async (t) => {
    await body(t, undefined);
  });
  test(`${title} (cache off: answered through a sink)`, async (t) => {
    await body(t, 0);
  });
}

both('a model answer: its label, model, version, latency on the clock and timings', async (t, cache) => {
  const { clock, router, a } = await setup({ cache });
  const answer = router.predict(input());
  await flush();
  t.is(a.calls.length, 1);
  t.is(a.last.deadline, 18, 'the replica gets the time the router decides: arrival + SLO - the 2 ms deadline margin');
  clock.advance(5);
  a.last.answer([0.2, 0.8]);
  t.like(await answer, { queryId: 1, output: 1, isDefault: false, model: 'a', version: '1', cached: false, latencyMs: 5, confidence: 1, contributors: ['a'] });
  t.deepEqual((await answer).timings, { queueMs: 1, batchMs: 2, batchSize: 1, replica: 'a@1#0' });
  t.is((await answer).missing, undefined);
  t.is(clock.pendingTimers, 0, 'the deadline timer is cancelled once answered');
  t.like(router.counters, { queries: 1, answered: 1, defaults: 0, refused: 0 });
});

both('at the deadline: the models that answered, the stragglers listed; a late answer changes nothing', async (t, cache) => {
  const { clock, router, a, b } = await setup({ cache, policy: everyModel() });
  const answer = track(router.predict(input()));
  await flush();
  clock.advance(3);
  a.last.answer([0.9, 0.1]);
  await flush();
  t.false(answer.settled(), 'b is still out and the deadline has not come');
  clock.advance(14.9);
  await flush();
  t.false(answer.settled(), 'not before SLO - margin');
  clock.advance(0.1);
  await flush();
  t.like(answer.value(), { output: 0, isDefault: false, model: 'a', missing: ['b'], contributors: ['a'], latencyMs: 18 });
  b.last.answer([0.1, 0.9]);
  await flush();
  t.is(answer.count(), 1);
  t.like(router.counters, { queries: 1, answered: 1, defaults: 0 });
});

both('no model answers by the deadline: the default output, explained, inside the SLO', async (t, cache) => {
  const { clock, router } = await setup({ cache, policy: everyModel() });
  const answer = track(router.predict(input()));
  await flush();
  clock.advance(18);
  await flush();
  const got = answer.value() as Answer;
  t.like(got, { output: -1, isDefault: true, cached: false, explanation: 'no answer from a, b within the 20 ms SLO' });
  t.true(got.latencyMs <= 20);
  t.like(router.counters, { queries: 1, answered: 1, defaults: 1 });
});

both('no linked model: the default output at once, naming the links', async (t, cache) => {
  const { router } = await setup({ cache });
  router.unlink('a');
  router.unlink('b');
  t.like(await router.predict(input()), { output: -1, isDefault: true, latencyMs: 0, explanation: 'application app has no linked model to answer it (linked: [])' });
});

both('every selected model failed: the default output naming each failure', async (t, cache) => {
  const { router, a, b } = await setup({ cache, policy: everyModel() });
  const answer = router.predict(input());
  await flush();
  a.last.fail(new ModelRuntimeError('boom'));
  b.last.fail(new DeadlineExceededError('late'));
  t.like(await answer, { isDefault: true, explanation: 'a: boom; b: late' });
});

both('a linked model with no current version fails alone', async (t, cache) => {
  const { router, models, b } = await setup({ cache, policy: everyModel() });
  models.remove('a');
  const answer = router.predict(input());
  await flush();
  b.last.answer([0.3, 0.7]);
  t.like(await answer, { isDefault: false, model: 'b', version: '7', missing: ['a'] });
});

both('overload: the only model\'s queue refuses, the query is refused with that OverloadedError (503)', async (t, cache) => {
  const { router, a } = await setup({ cache });
  const answer = router.predict(input());
  await flush();
  const refusal = new OverloadedError('replica a#0 has 1024 queries queued', 2);
  a.last.fail(refusal);
  t.is(await t.throwsAsync(answer), refusal);
  t.like(router.counters, { queries: 1, answered: 0, refused: 1 });
});

both('low confidence: the default output, with the scores and who contributed', async (t, cache) => {
  const { router, a, b } = await setup({ cache, app: { confidenceThreshold: 0.9 }, policy: everyModel(0.5) });
  const answer = router.predict(input());
  await flush();
  a.last.answer([0.2, 0.8]);
  b.last.answer([0.7, 0.3]);
  const got = await answer;
  t.like(got, { output: -1, isDefault: true, confidence: 0.5, contributors: ['a'], explanation: "confidence 0.50 is below the application's threshold 0.9" });
  t.deepEqual([...(got.scores ?? [])], [...Float32Array.from([0.2, 0.8])]);
  t.like(router.counters, { lowConfidence: 1, defaults: 1 });
});

test('issue 14 bug 1: Exp4 over rows of different widths answers by default, naming the error; the router serves on', async (t) => {
  const { router, a, b } = await setup({ policy: new Exp4Policy() });
  const answer = router.predict(input());
  await flush();
  a.last.answer([0.2, 0.8]);
  b.last.answer([0.1, 0.2, 0.7]);
  const got = await answer;
  t.like(got, { output: -1, isDefault: true });
  t.regex(got.explanation ?? '', /^selection policy ensemble failed to combine the answers of a, b: ensemble: ensemble outputs differ in length/);
  t.is(router.counters.policyErrors, 1);
  t.is(router.status, 'running');
  const next = router.predict(input(2));
  await flush();
  a.last.answer([0.2, 0.8]);
  b.last.answer([0.6, 0.4]);
  t.like(await next, { isDefault: false, model: 'ensemble' });
});

test('issue 14 bug 1: the same at the deadline (combine runs from the deadline message)', async (t) => {
  const throwing: SelectionPolicy = { name: 'thrower', select: (l) => l, combine: () => { throw new Error('no'); } };
  const { clock, router, a } = await setup({ policy: throwing });
  const answer = track(router.predict(input()));
  await flush();
  a.last.answer([0.2, 0.8]);
  await flush();
  clock.advance(18);
  await flush();
  t.like(answer.value(), { isDefault: true, explanation: 'selection policy thrower failed to combine the answers of a: no; no answer from b within the 20 ms SLO', missing: ['b'] });
});

test('a policy whose select throws: that query gets the default output naming the error; the next is served', async (t) => {
  let fail = true;
  const policy: SelectionPolicy = {
    name: 'moody',
    select: (linked) => {
      if (fail) throw new TypeError('bad mood');
      return linked.slice(0, 1);
    },
    combine: (o) => o[0] as Combined,
  };
  const { router, a } = await setup({ policy });
  t.like(await router.predict(input()), { isDefault: true, explanation: 'selection policy moody failed to select models: bad mood' });
  fail = false;
  const next = router.predict(input());
  await flush();
  a.last.answer([1, 0]);
  t.like(await next, { isDefault: false, model: 'a' });
  t.is(router.counters.policyErrors, 1);
});

test('issue 14 bug 2: a numeric uid that reaches a perUser policy fails that query alone (default output); later queries are served', async (t) => {
  // The facade refuses such a uid (checkQueryContext, 400) before the router; past it, KeyedPolicy.select throws.
  const { router, a, b } = await setup({ policy: createPolicy({ kind: 'exp3', perUser: {} }) });
  const bad = await router.predict(input(), { uid: 42 as unknown as string });
  t.like(bad, { isDefault: true, output: -1 });
  t.regex(bad.explanation ?? '', /^selection policy .* failed to select models: uid must be a non-empty string/);
  a.auto = [0, 1];
  b.auto = [0, 1];
  t.like(await router.predict(input(), { uid: 'u1' }), { isDefault: false, output: 1 });
  t.is(router.status, 'running');
});

both('exactly one answer per query, whichever comes first: the models or the deadline', async (t, cache) => {
  const { clock, router, a, b } = await setup({ cache, policy: everyModel() });
  const answers = [track(router.predict(input(1))), track(router.predict(input(2))), track(router.predict(input(3)))];
  await flush();
  // query 1: both answer before the deadline; query 2: one answers; query 3: none.
  a.calls[0]?.answer([1, 0]);
  b.calls[0]?.answer([0, 1]);
  a.calls[1]?.answer([1, 0]);
  await flush();
  clock.advance(18);
  await flush();
  b.calls[1]?.answer([0, 1]);
  a.calls[2]?.answer([1, 0]);
  b.calls[2]?.fail(new Error('late failure'));
  await flush();
  clock.advance(100);
  await flush();
  t.deepEqual(answers.map((x) => x.count()), [1, 1, 1]);
  t.deepEqual(answers.map((x) => x.value()?.isDefault), [false, false, true]);
  t.deepEqual(answers.map((x) => x.value()?.missing), [undefined, ['b'], undefined]);
  t.like(router.counters, { queries: 3, answered: 3, defaults: 1, refused: 0 });
});

test('the cache: a repeated input is answered from it without asking the model; identical queries in flight share one run', async (t) => {
  const { router, a } = await setup();
  const first = router.predict(input(5));
  const joiner = router.predict(input(5));
  await flush();
  t.is(a.calls.length, 1, 'the second identical query joined the first one\'s evaluation');
  t.deepEqual({ sent: a.sent, predicted: a.predicted }, { sent: 0, predicted: 1 }, 'the cache asks through the promise API');
  a.last.answer([0.4, 0.6]);
  t.like(await first, { isDefault: false, cached: false, output: 1 });
  t.like(await joiner, { isDefault: false, cached: false, output: 1 });
  const again = await router.predict(input(5));
  t.like(again, { isDefault: false, cached: true, output: 1, model: 'a', version: '1' });
  t.is(again.timings, undefined, 'no replica ran it');
  t.is(a.calls.length, 1);
  t.deepEqual([router.cache.hits, router.cache.misses, router.cache.shared], [1, 1, 1]);
});

test('the cache off: every query runs on the model', async (t) => {
  const { router, a } = await setup({ app: { cacheMaxBytes: 0 } });
  a.auto = [0, 1];
  t.like(await router.predict(input()), { cached: false, isDefault: false });
  t.like(await router.predict(input()), { cached: false, isDefault: false });
  t.is(a.calls.length, 2);
  t.deepEqual({ sent: a.sent, predicted: a.predicted }, { sent: 2, predicted: 0 }, 'through the sink, no promise');
});

test('issue 14 bug 9: a joiner whose shared evaluation expired with the first caller evaluates again under its own deadline', async (t) => {
  const { clock, router, a } = await setup();
  const first = track(router.predict(input()));
  await flush();
  clock.advance(10);
  const joiner = track(router.predict(input()));
  await flush();
  t.is(a.calls.length, 1, 'joined');
  clock.advance(8);
  await flush();
  t.like(first.value(), { isDefault: true }, 'the first caller is answered by default at its deadline');
  clock.advance(2);
  a.calls[0]?.fail(new DeadlineExceededError('replica a#0 could not run the query before its deadline'));
  await flush();
  t.is(a.calls.length, 2, 'the joiner evaluates again');
  t.is(a.calls[1]?.deadline, 28, 'under its own deadline (arrival + SLO - margin)');
  clock.advance(3);
  a.calls[1]?.answer([0.3, 0.7]);
  await flush();
  t.like(joiner.value(), { isDefault: false, output: 1, latencyMs: 13 });
  t.is(router.cache.rejoined, 1);
});

test('issue 14 bug 9: a joiner of a refused evaluation evaluates again; if refused again, it is refused itself', async (t) => {
  const { router, a } = await setup();
  const first = router.predict(input());
  const joiner = router.predict(input());
  await flush();
  const refusal = new OverloadedError('queue full');
  a.calls[0]?.fail(refusal);
  t.is(await t.throwsAsync(first), refusal);
  await flush();
  t.is(a.calls.length, 2);
  const again = new OverloadedError('still full');
  a.calls[1]?.fail(again);
  t.is(await t.throwsAsync(joiner), again, 'its own refusal, not retried again');
  t.is(a.calls.length, 2);
});

test('issue 14 bug 9: no second evaluation when the joiner\'s deadline has passed too, or the failure was the model\'s', async (t) => {
  const { clock, router, a } = await setup();
  const first = track(router.predict(input(1)));
  const joiner = track(router.predict(input(1)));
  await flush();
  clock.advance(20);
  a.calls[0]?.fail(new DeadlineExceededError('expired'));
  await flush();
  t.is(a.calls.length, 1, 'no time left: no retry');
  const crashFirst = router.predict(input(2));
  const crashJoiner = router.predict(input(2));
  await flush();
  a.calls[1]?.fail(new ModelRuntimeError('the model threw'));
  t.like(await crashFirst, { isDefault: true, explanation: 'a: the model threw' });
  t.like(await crashJoiner, { isDefault: true, explanation: 'a: the model threw' });
  t.is(a.calls.length, 2, 'a model fault is not retried');
  t.true(first.settled() && joiner.settled());
});

/** A policy whose select breaks the contract (no array) when told: an unexpected fault inside the router. */
function faulty(): { policy: SelectionPolicy; broken: { on: boolean } } {
  const broken = { on: false };
  return {
    broken,
    policy: { name: 'faulty', select: (linked) => (broken.on ? (42 as unknown as string[]) : linked.slice(0, 1)), combine: (o) => o[0] as Combined },
  };
}

both('issue 14 bug 2: a crash inside the router fails that query alone; the supervisor restarts the router', async (t, cache) => {
  const clock = new ManualClock();
  const events: SupervisionEvent[] = [];
  const supervisor = new Supervisor('sup', { maxRestarts: 5, windowMs: 60_000, backoffBaseMs: 5, backoffMaxMs: 5000 }, { clock, onEvent: (e) => events.push(e) });
  await supervisor.start();
  const { policy, broken } = faulty();
  const { router, a } = await setup({ cache, policy, supervisor, clock });
  const inFlight = track(router.predict(input(1)));
  await flush();
  broken.on = true;
  const error = await t.throwsAsync(router.predict(input(2)), { instanceOf: ClipperError });
  t.regex(error?.message ?? '', /^the router of application app failed on query 2: /);
  t.is(router.status, 'failed');
  t.deepEqual(events.map((e) => e.type), ['restartScheduled']);
  await t.throwsAsync(router.predict(input(3)), { instanceOf: ShuttingDownError, message: /awaits restart/ });
  broken.on = false;
  clock.advance(5);
  await flush();
  t.is(router.status, 'running');
  t.is(router.restarts, 1);
  t.deepEqual(events.map((e) => e.type), ['restartScheduled', 'restarted']);
  a.calls[0]?.answer([0, 1]);
  await flush();
  t.like(inFlight.value(), { isDefault: false, output: 1 }, 'a query in flight across the restart is still answered');
  const next = router.predict(input(4));
  await flush();
  a.last.answer([1, 0]);
  t.like(await next, { isDefault: false, output: 0 });
  await router.stop();
  await supervisor.stop();
});

both('a query whose messages arrive while the router is down is rejected, not left hanging', async (t, cache) => {
  const clock = new ManualClock();
  const supervisor = new Supervisor('sup', { maxRestarts: 5, windowMs: 60_000, backoffBaseMs: 100, backoffMaxMs: 5000 }, { clock });
  await supervisor.start();
  const { policy, broken } = faulty();
  const { router, a } = await setup({ cache, policy, supervisor, clock });
  const inFlight = track(router.predict(input(1)));
  await flush();
  broken.on = true;
  await t.throwsAsync(router.predict(input(2)));
  a.calls[0]?.answer([0, 1]);
  await flush();
  t.true(inFlight.error() instanceof ShuttingDownError);
  t.is(inFlight.count(), 1);
  clock.advance(100);
  await flush();
  t.is(router.status, 'running');
  await router.stop();
  await supervisor.stop();
});

test('a router that keeps crashing is retired: queries are rejected saying so', async (t) => {
  const clock = new ManualClock();
  const events: SupervisionEvent[] = [];
  const supervisor = new Supervisor('sup', { maxRestarts: 1, windowMs: 60_000, backoffBaseMs: 10, backoffMaxMs: 10 }, { clock, onEvent: (e) => events.push(e) });
  await supervisor.start();
  const { policy, broken } = faulty();
  broken.on = true;
  const { router } = await setup({ policy, supervisor, clock });
  await t.throwsAsync(router.predict(input()));
  clock.advance(10);
  await flush();
  await t.throwsAsync(router.predict(input()));
  t.deepEqual(events.map((e) => e.type), ['restartScheduled', 'restarted', 'gaveUp']);
  await t.throwsAsync(router.predict(input()), { instanceOf: ClipperError, message: 'the router of application app failed too often and was retired' });
  clock.advance(1000);
  await flush();
  t.is(router.restarts, 1);
  await router.stop();
  await supervisor.stop();
});

both('stop drains: queries in flight are answered (by the deadline at the latest) before stop resolves; new ones are refused', async (t, cache) => {
  const { clock, router } = await setup({ cache });
  const answer = track(router.predict(input()));
  await flush();
  const stopped = track(router.stop());
  await flush();
  t.false(stopped.settled());
  await t.throwsAsync(router.predict(input(9)), { instanceOf: ShuttingDownError });
  clock.advance(18);
  await flush();
  t.like(answer.value(), { isDefault: true });
  t.true(stopped.settled());
  t.is(router.status, 'stopped');
});

both('the policy that selected a query combines it, even if the application\'s policy changes meanwhile', async (t, cache) => {
  const { router, a, b } = await setup({ cache, policy: everyModel() });
  const answer = router.predict(input());
  await flush();
  router.setPolicy({ name: 'other', select: (l) => l, combine: () => { throw new Error('not me'); } });
  a.last.answer([1, 0]);
  b.last.answer([0, 1]);
  t.like(await answer, { isDefault: false, model: 'a' });
});

both('a regression model answers its value', async (t, cache) => {
  const { router, models } = await setup({ cache });
  models.add(new FakeModelVersion('a', '2', { auto: [3.25] }), 'regression');
  t.like(await router.predict(input()), { output: 3.25, model: 'a', version: '2' });
});
