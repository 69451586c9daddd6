import test from 'ava';
import { FeedbackActor, type FeedbackRouter } from '../../../actors/feedback.js';
import { Router } from '../../../actors/router.js';
import type { ModelDirectory, ModelVersion, ReplicaAnswer } from '../../../actors/contracts.js';
import { resolveAppOptions } from '../../../src/config/options.js';
import { ManualClock } from '../../../src/kernel/clock.js';
import { inputDigest, PredictionCache, predictionKey } from '../../../src/routing/prediction-cache.js';
import { Exp3Policy } from '../../../src/selection/exp3-policy.js';
import { Exp4Policy } from '../../../src/selection/exp4-policy.js';
import { KeyedPolicy } from '../../../src/selection/keyed-policy.js';
import { SelectionLog } from '../../../src/selection/selection-log.js';
import type { QueryContext, Selection, SelectionPolicy } from '../../../src/selection/selection-policy.js';

// The feedback actor on a fake model directory, a fake router (a real prediction cache and selection log) and a
// ManualClock: no threads, no timers.

/** A model version whose every answer is `scores`, or that fails; it counts its runs and their deadlines. */
class FakeVersion implements ModelVersion {
  readonly deadlines: number[] = [];
  readonly outputSize: number;

  constructor(
    readonly model: string,
    readonly scores: Float32Array,
    readonly failure?: Error,
    readonly version = '1',
  ) {
    this.outputSize = scores.length;
  }

  get runs(): number {
    return this.deadlines.length;
  }

  predict(_input: Float32Array | Int32Array, deadline: number): Promise<ReplicaAnswer> {
    this.deadlines.push(deadline);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return Promise.resolve({ scores: this.scores, queueMs: 0, batchMs: 1, batchSize: 1, replica: `${this.model}-0` });
  }
}

class FakeDirectory implements ModelDirectory {
  readonly versions = new Map<string, FakeVersion>();
  readonly regression = new Set<string>();

  add(version: FakeVersion, kind: 'classification' | 'regression' = 'classification'): FakeVersion {
    this.versions.set(version.model, version);
    if (kind === 'regression') this.regression.add(version.model);
    return version;
  }

  current(model: string): ModelVersion | undefined {
    return this.versions.get(model);
  }

  outputKind(model: string): 'classification' | 'regression' {
    return this.regression.has(model) ? 'regression' : 'classification';
  }
}

class FakeRouter implements FeedbackRouter {
  readonly app = { name: 'app' };
  readonly log = new SelectionLog();
  readonly cache: PredictionCache;

  constructor(
    public policy: SelectionPolicy,
    public linkedModels: readonly string[],
    cacheMaxBytes = 1 << 20,
  ) {
    this.cache = new PredictionCache(cacheMaxBytes);
  }

  takeSelection(digest: string, context: QueryContext | undefined): Selection | undefined {
    return this.log.take(digest, context, this.policy);
  }
}

const input = Float32Array.of(0.25, 0.75);
const digest = inputDigest(input);
/** Label 1 is right for a row whose argmax is 1. */
const says = (label: number): Float32Array => (label === 0 ? Float32Array.of(0.9, 0.1) : Float32Array.of(0.1, 0.9));

async function started(router: FeedbackRouter, directory: ModelDirectory, clock = new ManualClock(), timeoutMs = 1000): Promise<FeedbackActor> {
  const actor = new FeedbackActor(router, directory, clock, timeoutMs);
  await actor.start();
  return actor;
}

/** Exp3 (bandit) log weights of a policy, or of a per-user policy's user. */
const logWeights = (policy: SelectionPolicy | undefined): Record<string, number> => (policy as Exp3Policy).snapshot().logWeights;

test('cached answers are read, not re-run; the models that miss are evaluated (with the feedback deadline) and cached', async (t) => {
  const directory = new FakeDirectory();
  const a = directory.add(new FakeVersion('a', says(1)));
  const b = directory.add(new FakeVersion('b', says(0)));
  const router = new FakeRouter(new Exp4Policy({ eta: 1 }), ['a', 'b']);
  await router.cache.getOrEvaluate(predictionKey('a', '1', digest), async () => ({ scores: says(1), model: 'a', version: '1' }));
  const clock = new ManualClock(5000);
  const actor = await started(router, directory, clock, 250);

  const first = await actor.feedback(input, 1, {});
  t.deepEqual(first, { losses: { a: 0, b: 1 }, evaluated: ['b'], skipped: [] });
  t.is(a.runs, 0, 'a answered from the cache');
  t.deepEqual(b.deadlines, [5250], 'b ran with now + timeoutMs as its deadline');
  t.deepEqual(actor.counters, { events: 1, cacheHits: 1, evaluations: 1 });

  const second = await actor.feedback(input, 0, {});
  t.deepEqual(second, { losses: { a: 1, b: 0 }, evaluated: [], skipped: [] }, 'b is cached now');
  t.is(b.runs, 1);
  t.deepEqual(actor.counters, { events: 2, cacheHits: 3, evaluations: 1 });
  await actor.stop();
});

test('with the cache off every linked model is evaluated on every event', async (t) => {
  const directory = new FakeDirectory();
  const a = directory.add(new FakeVersion('a', says(1)));
  const actor = await started(new FakeRouter(new Exp4Policy(), ['a'], 0), directory);
  await actor.feedback(input, 1, {});
  const result = await actor.feedback(input, 1, {});
  t.deepEqual(result, { losses: { a: 0 }, evaluated: ['a'], skipped: [] });
  t.is(a.runs, 2);
  t.deepEqual(actor.counters, { events: 2, cacheHits: 0, evaluations: 2 });
  await actor.stop();
});

test('regression models score the absolute error clipped to [0, 1]', async (t) => {
  const directory = new FakeDirectory();
  directory.add(new FakeVersion('near', Float32Array.of(2.75)), 'regression');
  directory.add(new FakeVersion('far', Float32Array.of(-4)), 'regression');
  const actor = await started(new FakeRouter(new Exp4Policy(), ['near', 'far']), directory);
  t.deepEqual((await actor.feedback(input, 3, {})).losses, { near: 0.25, far: 1 });
  await actor.stop();
});

test('models with no current version, or whose evaluation fails, are skipped: no loss, and the policy does not hear of them', async (t) => {
  const directory = new FakeDirectory();
  directory.add(new FakeVersion('good', says(1)));
  directory.add(new FakeVersion('broken', says(1), new Error('worker died')));
  const policy = new Exp4Policy({ eta: 1 });
  const actor = await started(new FakeRouter(policy, ['good', 'broken', 'gone']), directory);
  const result = await actor.feedback(input, 0, {});
  t.deepEqual(result, { losses: { good: 1 }, evaluated: ['broken', 'good'], skipped: ['broken', 'gone'] });
  t.deepEqual(policy.snapshot().logWeights, { good: 0 }, 'only good joined the table');
  t.is(policy.updates, 1);
  await actor.stop();
});

test('a full-information policy learns every model\'s loss', async (t) => {
  const directory = new FakeDirectory();
  directory.add(new FakeVersion('a', says(0)));
  directory.add(new FakeVersion('b', says(1)));
  const policy = new Exp3Policy({ eta: 0.5 });
  const actor = await started(new FakeRouter(policy, ['a', 'b']), directory);
  await actor.feedback(input, 1, {});
  await actor.feedback(input, 1, {});
  t.deepEqual(policy.snapshot().logWeights, { a: -1, b: 0 }, 'every event counts: full information has no draws to use up');
  await actor.stop();
});

test('a bandit learns only from the model it selected, once per draw, at the draw\'s probability (issue 14, bug 4)', async (t) => {
  const directory = new FakeDirectory();
  directory.add(new FakeVersion('a', says(0)));
  directory.add(new FakeVersion('b', says(1)));
  const policy = new Exp3Policy({ eta: 0.5, fullInformation: false });
  policy.select(['a', 'b']);
  const router = new FakeRouter(policy, ['a', 'b']);
  const actor = await started(router, directory);

  // No draw for this input: every loss is reported, none is learned.
  t.deepEqual(await actor.feedback(input, 1, {}), { losses: { a: 1, b: 0 }, evaluated: ['a', 'b'], skipped: [] });
  t.is(policy.updates, 0);

  // One draw of a at p = 0.5: its loss costs a 0.5 * 1 / 0.5 = 1, once; b's loss is not learned.
  router.log.record(digest, undefined, policy, ['a'], ['a', 'b']);
  await actor.feedback(input, 1, {});
  t.deepEqual(policy.snapshot().logWeights, { a: -1, b: 0 });
  await actor.feedback(input, 1, {});
  await actor.feedback(input, 1, {});
  t.deepEqual(policy.snapshot().logWeights, { a: -1, b: 0 }, 'repeated feedback finds the draw used up');
  t.is(policy.updates, 1);

  // A draw of b (right, loss 0) changes nothing but the count; a draw for another user is not this one's.
  router.log.record(digest, { uid: '' }, policy, ['b'], ['a', 'b']);
  await actor.feedback(input, 1, {});
  t.is(policy.updates, 1, 'the draw for uid "" is not the draw for no uid (issue 14, bug 7)');
  await actor.feedback(input, 1, { uid: '' });
  t.is(policy.updates, 2);
  t.deepEqual(policy.snapshot().logWeights, { a: -1, b: 0 });
  await actor.stop();
});

test('feedback a policy refuses rejects that event only', async (t) => {
  const directory = new FakeDirectory();
  directory.add(new FakeVersion('a', says(0)));
  const policy = new KeyedPolicy(() => new Exp4Policy());
  const actor = await started(new FakeRouter(policy, ['a']), directory);
  await t.throwsAsync(actor.feedback(input, 1, { uid: 7 } as never), { code: 'INVALID_INPUT', message: /^uid must be a non-empty string .*; got 7$/ });
  t.deepEqual(await actor.feedback(input, 1, { uid: 'alice' }), { losses: { a: 1 }, evaluated: [], skipped: [] });
  t.deepEqual(logWeights(policy.policy('alice')), { a: 0 });
  await actor.stop();
});

test('through the real router: three identical feedbacks for one query update once; three queries, once each at p = 0.5 (issue 14, bug 4)', async (t) => {
  // The reproducer of issue 14: log weight 0 -> -1 -> -2.86 -> -12.08 for three identical feedbacks, where the
  // draw is used once (one query) or each of three draws at p = 0.5 costs exactly eta / 0.5 = 1 (three queries).
  for (const queries of [1, 3]) {
    const directory = new FakeDirectory();
    directory.add(new FakeVersion('a', says(0)));
    directory.add(new FakeVersion('b', says(1)));
    const clock = new ManualClock();
    const policy = new Exp3Policy({ eta: 0.5, fullInformation: false, random: () => 0 });
    const app = resolveAppOptions({ name: 'app', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 100 });
    const router = new Router(app, directory, clock, policy);
    router.link('a');
    router.link('b');
    await router.start();
    const actor = await started(router, directory, clock);
    for (let i = 0; i < queries; i++) t.is((await router.predict(input)).model, 'a');
    for (let i = 0; i < 3; i++) await actor.feedback(input, 1, {});
    t.deepEqual(policy.snapshot().logWeights, { a: -queries, b: 0 }, `${queries} queries`);
    t.is(policy.updates, queries);
    await actor.stop();
    await router.stop();
  }
});

test('through the real router: after setPolicy, feedback does not teach the new policy the old one\'s draws', async (t) => {
  const directory = new FakeDirectory();
  directory.add(new FakeVersion('a', says(0)));
  directory.add(new FakeVersion('b', says(1)));
  const clock = new ManualClock();
  const first = new Exp3Policy({ eta: 0.5, fullInformation: false, random: () => 0 });
  const app = resolveAppOptions({ name: 'app', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 100 });
  const router = new Router(app, directory, clock, first);
  router.link('a');
  router.link('b');
  await router.start();
  const actor = await started(router, directory, clock);
  await router.predict(input);
  const second = new Exp3Policy({ eta: 0.5, fullInformation: false, random: () => 0 });
  router.setPolicy(second);
  await actor.feedback(input, 1, {});
  t.is(second.updates, 0, 'the draw was made by the first policy, at its probabilities');
  t.is(first.updates, 0);
  await router.predict(input);
  await actor.feedback(input, 1, {});
  t.is(second.updates, 1, 'its own draw teaches it');
  await actor.stop();
  await router.stop();
});
