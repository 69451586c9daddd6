import path from 'node:path';
import test from 'ava';
import type { ModelSpec } from '../../../../actors/worker/model-worker.js';
import { ThreadModelWorker } from '../../../../actors/worker/thread-model-worker.js';
import { fixtureModels } from '../../../helpers/fixtures.js';

// The ModelWorker contract on the real thing: ThreadModelWorker with a real worker thread and the fixture JS
// models (the replica's own tests use a fake worker). Real threads, so these take a few hundred ms each.

function spec(model: 'sum' | 'slow' | 'hang' | 'hog', features: number): ModelSpec {
  return { key: `${model}@1`, kind: 'js', path: path.join(fixtureModels, model, '1', 'model.mjs'), inputDtype: 'float32', featureShape: [features], intraOpNumThreads: 1 };
}

async function started(model: 'sum' | 'slow' | 'hang', features: number): Promise<{ worker: ThreadModelWorker; deaths: Error[] }> {
  const worker = new ThreadModelWorker();
  const deaths: Error[] = [];
  worker.onDied((error) => deaths.push(error));
  await worker.load(spec(model, features));
  return { worker, deaths };
}

const batch = (rows: number[][], timeLeftMs = 1_000) => ({ input: new Float32Array(rows.flat()).buffer, rows: rows.length, dtype: 'float32' as const, timeLeftMs });

test('a batch crosses as bytes: one transferred buffer in, rows x outputSize float32 out, with the compute time', async (t) => {
  const { worker } = await started('sum', 4);
  t.teardown(() => worker.close());
  t.true(worker.interruptible, 'a JS model can be cut off');
  t.is((await worker.warmup(3)).outputSize, 2);
  const request = batch([
    [1, 2, 3, 4],
    [5, 0, 0, 1],
  ]);
  const outcome = await worker.run(request);
  t.is(request.input.byteLength, 0, 'transferred, not copied');
  if (!outcome.ok) return t.fail(outcome.error.message);
  t.is(outcome.outputSize, 2);
  t.deepEqual(Array.from(new Float32Array(outcome.output)), [10, 4, 6, 5]);
  t.true(outcome.computeMs >= 0);
  t.is(outcome.stalledMs, 0);
  t.like(await worker.stats(), { models: ['sum@1'], batches: 1, rows: 2 });
});

test('the input buffer comes back with the answer, and a batch in a longer buffer (one reused) answers for its rows only', async (t) => {
  const { worker } = await started('sum', 4);
  t.teardown(() => worker.close());
  const first = batch([
    [1, 2, 3, 4],
    [5, 0, 0, 1],
    [9, 9, 9, 9],
  ]);
  const outcome = await worker.run(first);
  if (!outcome.ok) return t.fail(outcome.error.message);
  t.true(outcome.input instanceof ArrayBuffer, 'handed back for the next batch');
  t.is(outcome.input?.byteLength, 3 * 4 * 4);
  // The replica fills the returned buffer with a smaller batch; what lies past its rows must not be read.
  const reused = outcome.input as ArrayBuffer;
  new Float32Array(reused, 0, 4).set([2, 2, 2, 2]);
  const second = await worker.run({ input: reused, rows: 1, dtype: 'float32', timeLeftMs: 1_000 });
  if (!second.ok) return t.fail(second.error.message);
  t.deepEqual(Array.from(new Float32Array(second.output)), [8, 2], 'one row answered, from the first row of the buffer');
  t.is(second.input?.byteLength, 3 * 4 * 4, 'the whole buffer comes back again');
});

test("a model that throws fails its batch with the catalogue code and the model's own error as cause; the worker carries on", async (t) => {
  const { worker, deaths } = await started('sum', 4);
  t.teardown(() => worker.close());
  const outcome = await worker.run(batch([[-1, 0, 0, 0]]));
  if (outcome.ok) return t.fail('expected the batch to fail');
  t.like(outcome.error, { name: 'ModelRuntimeError', code: 'MODEL_RUNTIME_ERROR', cause: { name: 'Error', message: 'sum model refuses rows starting with -1' } });
  t.regex(outcome.error.message, /model sum@1 failed on a batch of 1: sum model refuses rows starting with -1/);
  t.regex(outcome.error.cause?.stack ?? '', /model\.mjs/, "the stack is the worker's");
  const next = await worker.run(batch([[1, 1, 1, 1]]));
  t.true(next.ok);
  t.deepEqual(deaths, []);
});

for (const kind of ['exit', 'throw'] as const) {
  test(`a worker that dies under a batch (${kind}) rejects the run and reports its death once`, async (t) => {
    const { worker, deaths } = await started('sum', 4);
    t.teardown(() => worker.close());
    await worker.faults.inject({ kind });
    await t.throwsAsync(worker.run(batch([[1, 1, 1, 1]])), { any: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.is(deaths.length, 1);
  });
}

test('close drains: a batch in flight finishes, it is not cut off', async (t) => {
  const { worker } = await started('slow', 2);
  t.true(worker.interruptible);
  const run = worker.run(batch([[200, 7]]));
  await new Promise((resolve) => setTimeout(resolve, 20));
  await worker.close();
  const outcome = await run;
  t.true(outcome.ok, 'the run answered');
  if (outcome.ok) t.deepEqual(Array.from(new Float32Array(outcome.output)), [7]);
  await t.throwsAsync(worker.run(batch([[0, 1]])), { message: /closed/ });
});

test('close with abandon cuts off a hung JS batch; a closed worker reports no death', async (t) => {
  const { worker, deaths } = await started('hang', 2);
  const run = worker.run(batch([[1, 5]]));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const before = Date.now();
  await worker.close({ abandon: true });
  t.true(Date.now() - before < 5_000);
  await t.throwsAsync(run, { any: true });
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(deaths, []);
});

test('a worker killed by its memory limit under a batch is reported with that reason, not the bare exit code', async (t) => {
  const worker = new ThreadModelWorker({ resourceLimits: { maxOldGenerationSizeMb: 64 } });
  t.teardown(() => worker.close());
  const deaths: Error[] = [];
  worker.onDied((error) => deaths.push(error));
  await worker.load(spec('hog', 2));
  const error = await t.throwsAsync(worker.run(batch([[1, 1]])), { any: true });
  t.regex(String((error as Error).message), /memory limit/);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(deaths.length, 1);
  t.regex(deaths[0]?.message ?? '', /memory limit/);
});
