import test from 'ava';
import { Clipper, type SupervisionEvent } from '../../src/index.js';
import { fixtureModels, waitFor } from '../helpers/fixtures.js';

// Whole paths on real worker threads, with small JS models from test/fixtures/models (the ONNX paths are in
// onnx-serving.test.ts). Each test starts its own system so that failures stay apart.

async function sumSystem(t: { teardown(fn: () => Promise<void>): void }, replicas = 2, extra: Partial<Parameters<Clipper['deployModel']>[0]> = {}) {
  const clipper = await Clipper.start({ modelRepository: fixtureModels, supervision: { backoffBaseMs: 20, backoffMaxMs: 200 } });
  t.teardown(() => clipper.stop());
  await clipper.registerApp({ name: 'sums', inputType: 'float32', inputShape: [4], defaultOutput: -1, latencySloMs: 1000 });
  await clipper.deployModel({ name: 'sum', version: '1', path: 'sum/1/model.mjs', replicas, ...extra });
  await clipper.linkModel('sums', 'sum');
  return clipper;
}

test('answers carry the model output, version and timings', async (t) => {
  const clipper = await sumSystem(t);
  const answer = await clipper.predict('sums', [1, 2, 3, 4]);
  t.deepEqual(answer.output, [10, 4]);
  t.false(answer.isDefault);
  t.is(answer.model, 'sum');
  t.is(answer.version, '1');
  t.false(answer.cached);
  t.is(answer.timings?.batchSize, 1);
  const again = await clipper.predict('sums', new Float32Array([1, 2, 3, 4]));
  t.true(again.cached, 'the same input bytes hit the prediction cache');
  t.deepEqual(again.output, [10, 4]);
  t.true(again.queryId > answer.queryId);
});

test('under 200 concurrent queries batches larger than 1 form, and every answer is right', async (t) => {
  const clipper = await sumSystem(t);
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => clipper.predict('sums', [i, 1, 1, 1])));
  t.is(answers.length, 200);
  answers.forEach((a, i) => t.deepEqual(a.output, [i + 3, Math.max(i, 1)]));
  const sizes = answers.map((a) => a.timings?.batchSize ?? 0);
  t.true(Math.max(...sizes) > 1, `largest batch ${Math.max(...sizes)}`);
  const status = clipper.testing().replicas('sum');
  t.is(status.reduce((n, r) => n + r.counters.rows, 0), 200, 'each query ran exactly once');
  t.true(status.every((r) => r.counters.batches < 200));
});

for (const kind of ['exit', 'throw'] as const) {
  test(`a worker that dies mid-batch (${kind}): every query gets exactly one answer, retried elsewhere, and the replica comes back`, async (t) => {
    const clipper = await Clipper.start({ modelRepository: fixtureModels, supervision: { backoffBaseMs: 20, backoffMaxMs: 200 } });
    t.teardown(() => clipper.stop());
    const events: SupervisionEvent[] = [];
    clipper.onSupervisionEvent((e) => events.push(e));
    await clipper.registerApp({ name: 'slow', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
    await clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 2, batching: { mode: 'fixed', maxBatchSize: 8 } });
    await clipper.linkModel('slow', 'slow');
    await clipper.testing().injectFault('slow', 0, { kind });
    let settled = 0;
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        clipper.predict('slow', [3, i]).then((a) => {
          settled++;
          return a;
        }),
      ),
    );
    t.is(settled, 40);
    answers.forEach((a, i) => {
      t.false(a.isDefault, a.explanation);
      t.is(a.output, i, 'each query got its own answer');
    });
    const replicas = () => clipper.testing().replicas('slow');
    t.is(replicas()[0]?.counters.workerDeaths, 1);
    await waitFor(() => replicas()[0]?.ready === true && (replicas()[0]?.restarts ?? 0) === 1, 10_000, 'replica restart');
    t.true(events.some((e) => e.type === 'restartScheduled' && e.child === 'slow@1#0'));
    t.true(events.some((e) => e.type === 'restarted' && e.child === 'slow@1#0'));
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => clipper.predict('slow', [1, i])));
    t.true(after.every((a) => !a.isDefault));
    t.true(after.some((a) => a.timings?.replica === 'slow@1#0'), 'the restarted replica serves again');
  });
}

test('with one replica, a death mid-batch answers with the default output and an explanation, then recovers', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels, supervision: { backoffBaseMs: 20 } });
  t.teardown(() => clipper.stop());
  await clipper.registerApp({ name: 'slow', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
  await clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1 });
  await clipper.linkModel('slow', 'slow');
  const replica = () => clipper.testing().replicas('slow')[0];
  await clipper.testing().injectFault('slow', 0, { kind: 'exit' });
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => clipper.predict('slow', [3, i])));
  t.is(answers.length, 10);
  t.true(answers.every((a) => a.isDefault && a.output === -1));
  t.regex(answers[0]?.explanation ?? '', /slow@1#0 .*failed while holding the query/);
  await waitFor(() => replica()?.ready === true, 10_000, 'restart');
  const after = await clipper.predict('slow', [1, 7]);
  t.is(after.output, 7);
});

test('a model that fails in a batch fails only that batch', async (t) => {
  const clipper = await sumSystem(t, 1, { batching: { mode: 'none' } });
  const [bad, good] = await Promise.all([clipper.predict('sums', [-1, 0, 0, 0]), clipper.predict('sums', [2, 0, 0, 0])]);
  t.true(bad?.isDefault);
  t.regex(bad?.explanation ?? '', /refuses rows starting with -1/);
  t.deepEqual(good?.output, [2, 2]);
  t.is(clipper.testing().replicas('sum')[0]?.counters.workerDeaths, 0);
});

test('a query that cannot meet its deadline is not run: it gets the default output with an explanation', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels });
  t.teardown(() => clipper.stop());
  await clipper.registerApp({ name: 'slow', inputType: 'float32', inputShape: [2], defaultOutput: 42, latencySloMs: 400 });
  await clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1, batching: { mode: 'none' } });
  await clipper.linkModel('slow', 'slow');
  // Each batch takes 150 ms and holds one query: the third in line cannot finish within 400 ms. Admission may
  // refuse some at once instead (503: its latency model learns the 150 ms batches from the first one, since the
  // warm-ups ran zeros, which this model answers at once); none of the late ones is run either way.
  const outcomes = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => clipper.predict('slow', [150, i])));
  const answers = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as { code?: string }] : []));
  const modelAnswers = answers.filter((a) => !a.isDefault);
  const defaults = answers.filter((a) => a.isDefault);
  // At most two 150 ms batches fit in 400 ms. A third model answer can only come past the SLO: when the main
  // thread stalls across the router's deadline (a loaded machine), the deadline list hands the query over after
  // the I/O already waiting, and the model's answer that sat in the worker's port wins (seen once in a fresh
  // clone's full suite: 3 model answers, the third late). The check that matters is below: the doomed ones never ran.
  const inTime = modelAnswers.filter((a) => a.latencyMs <= 400);
  const describe = `${modelAnswers.length} answered by the model (${inTime.length} within 400 ms): ${answers.map((a) => a.explanation).join(' | ')}`;
  t.true(inTime.length >= 1 && inTime.length <= 2, describe);
  t.true(modelAnswers.length - inTime.length <= 1, describe);
  t.is(modelAnswers.length + defaults.length + refused.length, 6);
  t.true(refused.every((e) => e.code === 'OVERLOADED'), refused.map((e) => e.code).join(' '));
  t.true(defaults.every((a) => a.output === 42 && /deadline|SLO/.test(a.explanation ?? '')), defaults.map((a) => a.explanation).join(' | '));
  // Read once the replica has settled every query it holds: right after the answers, a doomed query still queued
  // would not have run yet (with the queue's expiry taken out, all 6 ran, 1 s later), and this check passed anyway.
  const counters = () => clipper.testing().replicas('slow')[0]?.counters;
  const settled = (): boolean => {
    const c = counters();
    return c !== undefined && c.rows + c.expired + c.refused >= 6;
  };
  await waitFor(settled, 10_000, 'every query run, expired or refused');
  t.true((counters()?.rows ?? 0) <= 3, `queries past their deadline were not run: ${JSON.stringify(counters())}`);
});

test('a full queue refuses at once with OverloadedError (503)', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels });
  t.teardown(() => clipper.stop());
  await clipper.registerApp({ name: 'slow', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 10_000 });
  await clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1, batching: { mode: 'none', maxQueueSize: 3 } });
  await clipper.linkModel('slow', 'slow');
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => clipper.predict('slow', [20, i])));
  const refused = results.filter((r) => r.status === 'rejected');
  // The first query runs at once and three wait in the queue: the other four are refused, no more, no fewer.
  t.is(refused.length, 4, `${refused.length} refused`);
  for (const r of refused) {
    const reason = (r as PromiseRejectedResult).reason as { code: string; status: number };
    t.is(reason.code, 'OVERLOADED');
    t.is(reason.status, 503);
  }
  const answered = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  t.deepEqual(answered.map((a) => a.output), [0, 1, 2, 3], 'the first four were taken and answered by the model');
});

test('bad input and unknown names get typed errors', async (t) => {
  const clipper = await sumSystem(t, 1);
  const cases: [unknown, string, RegExp][] = [
    [[1, 2, 3], 'INVALID_INPUT', /has 3 values; application sums expects 4 float32/],
    ['1,2,3,4', 'INVALID_INPUT', /input is a string/],
    [[1, 2, Number.NaN, 4], 'INVALID_INPUT', /input\[2\] is NaN/],
    [[1, 2, 3, Number.POSITIVE_INFINITY], 'INVALID_INPUT', /input\[3\] is Infinity/],
    [[1, 2, '3', 4], 'INVALID_INPUT', /input\[2\] is a string/],
    [null, 'INVALID_INPUT', /input is null/],
  ];
  for (const [input, code, message] of cases) {
    const error = await t.throwsAsync(clipper.predict('sums', input));
    t.is((error as { code?: string }).code, code);
    t.regex(error?.message ?? '', message);
  }
  const unknown = await t.throwsAsync(clipper.predict('nope', [1, 2, 3, 4]));
  t.is((unknown as { code?: string }).code, 'UNKNOWN_APPLICATION');
  t.is((unknown as { status?: number }).status, 404);
  await t.throwsAsync(clipper.setModelVersion('sum', '9'), { code: 'UNKNOWN_VERSION' } as never);
  await t.throwsAsync(clipper.setNumReplicas('nope', 1), { code: 'UNKNOWN_MODEL' } as never);
  await t.throwsAsync(clipper.linkModel('sums', 'nope'), { code: 'UNKNOWN_MODEL' } as never);
  await t.throwsAsync(clipper.registerApp({ name: 'sums', inputType: 'float32', inputShape: [4], defaultOutput: -1 }), { code: 'ALREADY_EXISTS' } as never);
  // The system is still serving after all that.
  t.deepEqual((await clipper.predict('sums', [1, 1, 1, 1])).output, [4, 1]);
});

test('model paths are confined to the repository, and broken models fail to deploy with ModelLoadError', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels });
  t.teardown(() => clipper.stop());
  await t.throwsAsync(clipper.deployModel({ name: 'x', version: '1', path: '../../../package.json' }), { code: 'FORBIDDEN_PATH' } as never);
  await t.throwsAsync(clipper.deployModel({ name: 'x', version: '1', path: 'nope/1/model.onnx' }), { code: 'MODEL_LOAD_FAILED' } as never);
  const corrupt = await t.throwsAsync(clipper.deployModel({ name: 'corrupt', version: '1', path: 'corrupt/1/model.onnx', replicas: 2 }));
  t.is((corrupt as { code?: string }).code, 'MODEL_LOAD_FAILED');
  t.regex(corrupt?.message ?? '', /corrupt/);
  t.deepEqual(clipper.getModels(), [], 'nothing half-deployed is left behind');
});

test('versions roll forward and back at run time, and the cache never mixes them', async (t) => {
  const clipper = await sumSystem(t, 1);
  t.deepEqual((await clipper.predict('sums', [1, 1, 1, 1])).output, [4, 1]);
  await clipper.deployModel({ name: 'sum', version: '2', path: 'sum/2/model.mjs', replicas: 1 });
  const v2 = await clipper.predict('sums', [1, 1, 1, 1]);
  t.deepEqual(v2.output, [1004, 1]);
  t.is(v2.version, '2');
  t.false(v2.cached, 'version 1 answers are not served for version 2');
  await clipper.setModelVersion('sum', '1');
  const back = await clipper.predict('sums', [1, 1, 1, 1]);
  t.deepEqual(back.output, [4, 1]);
  t.true(back.cached);
  t.is(clipper.getModels()[0]?.currentVersion, '1');
});

test('replicas are added and removed at run time, and load spreads over them', async (t) => {
  const clipper = await sumSystem(t, 1);
  await clipper.setNumReplicas('sum', 3);
  const set = () => clipper.describeModel('sum');
  t.is(set().readyReplicas, 3);
  const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => clipper.predict('sums', [i, 2, 2, 2])));
  const used = new Set(answers.map((a) => a.timings?.replica));
  t.is(used.size, 3, `replicas used: ${[...used].join(', ')}`);
  await clipper.setNumReplicas('sum', 1);
  t.is(set().replicas.length, 1);
  t.deepEqual((await clipper.predict('sums', [5, 0, 0, 0])).output, [5, 5]);
});

test('a replica that keeps dying is retired after maxRestarts, and other models are untouched', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels, supervision: { maxRestarts: 2, windowMs: 60_000, backoffBaseMs: 10, backoffMaxMs: 20 } });
  t.teardown(() => clipper.stop());
  const events: SupervisionEvent[] = [];
  clipper.onSupervisionEvent((e) => events.push(e));
  await clipper.registerApp({ name: 'slow', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
  await clipper.registerApp({ name: 'sums', inputType: 'float32', inputShape: [4], defaultOutput: -1, latencySloMs: 5000 });
  await clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1 });
  await clipper.deployModel({ name: 'sum', version: '1', path: 'sum/1/model.mjs', replicas: 1 });
  await clipper.linkModel('slow', 'slow');
  await clipper.linkModel('sums', 'sum');
  const replica = () => clipper.testing().replicas('slow')[0];
  for (let round = 0; round < 3; round++) {
    await waitFor(() => replica()?.ready === true, 10_000, `replica ready (round ${round})`);
    await clipper.testing().injectFault('slow', 0, { kind: 'exit' });
    const a = await clipper.predict('slow', [1, round]);
    t.true(a.isDefault);
  }
  await waitFor(() => replica()?.retired === true, 10_000, 'retirement');
  t.true(events.some((e) => e.type === 'gaveUp' && e.child === 'slow@1#0'));
  t.is(events.filter((e) => e.type === 'restarted').length, 2);
  const answer = await clipper.predict('slow', [1, 1]);
  t.true(answer.isDefault);
  t.regex(answer.explanation ?? '', /no ready replica/);
  t.deepEqual((await clipper.predict('sums', [1, 2, 3, 4])).output, [10, 4], 'the other model still serves');
});

test('stop drains: queries accepted before stop are all answered by the model', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels });
  await clipper.registerApp({ name: 'slow', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 10_000 });
  await clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1, batching: { mode: 'fixed', maxBatchSize: 4 } });
  await clipper.linkModel('slow', 'slow');
  const pending = Array.from({ length: 12 }, (_, i) => clipper.predict('slow', [5, i]));
  await clipper.stop();
  const answers = await Promise.all(pending);
  t.true(answers.every((a, i) => !a.isDefault && a.output === i));
  await t.throwsAsync(clipper.predict('slow', [1, 1]), { code: 'SHUTTING_DOWN' } as never);
});
