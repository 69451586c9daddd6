import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { Clipper, IncompatibleModelError, InvalidInputError } from '../../src/index.js';

/**
 * A model repository of tiny JS classifiers over 2 inputs, written for this file: `zero` and `one` always
 * answer class 0 and class 1 of 3 (config.json gives the width); `four` answers 4 values and has no output
 * shape in its config.json (its width is learned at warm-up).
 */
function repository(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'clipper-facade-'));
  const model = (name: string, row: number[], output: Record<string, unknown>, batching?: Record<string, unknown>): void => {
    mkdirSync(path.join(root, name, '1'), { recursive: true });
    writeFileSync(
      path.join(root, name, '1', 'model.mjs'),
      `export function predict(input, rows) {\n  const row = ${JSON.stringify(row)};\n  const out = new Float32Array(rows * row.length);\n  for (let r = 0; r < rows; r++) out.set(row, r * row.length);\n  return out;\n}\n`,
    );
    const config = { name, version: '1', platform: 'js', input: { dtype: 'float32', shape: [2] }, output, ...(batching === undefined ? {} : { batching }) };
    writeFileSync(path.join(root, name, '1', 'config.json'), JSON.stringify(config));
  };
  model('zero', [0.9, 0.05, 0.05], { shape: [3], kind: 'classification' });
  model('one', [0.05, 0.9, 0.05], { shape: [3], kind: 'classification' });
  model('four', [0.1, 0.2, 0.3, 0.4], { kind: 'classification' });
  model('small-batches', [1, 0, 0], { shape: [3], kind: 'classification' }, { maxBatchSize: 4, maxQueueDelayMicroseconds: 0 });
  return realpathSync(root);
}

async function system(t: { teardown(f: () => unknown): void }): Promise<Clipper> {
  const root = repository();
  const clipper = await Clipper.start({ modelRepository: root });
  t.teardown(async () => {
    await clipper.stop();
    rmSync(root, { recursive: true, force: true });
  });
  await clipper.registerApp({ name: 'app', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
  return clipper;
}

test('describeModel reports a version\'s metadata and state through the facade; the testing handle reaches replicas', async (t) => {
  const clipper = await system(t);
  await clipper.deployModel({ name: 'zero', version: '1', path: 'zero/1/model.mjs', replicas: 2 });
  await clipper.linkModel('app', 'zero');
  const info = clipper.describeModel('zero');
  t.like(info, {
    model: 'zero',
    version: '1',
    current: true,
    platform: 'js',
    input: { dtype: 'float32', shape: [2] },
    output: { size: 3, kind: 'classification' },
    ready: true,
    readyReplicas: 2,
    scaledToZero: false,
    linkedSloMs: 5000,
    latencyBudgetMs: 2500,
    batching: { mode: 'aimd', maxBatchSize: 256, maxQueueSize: 1024, limits: [1, 1] },
    hedges: { sent: 0, won: 0, denied: 0 },
    coldStartsMs: [],
  });
  t.deepEqual(info.replicas.map((r) => r.name), ['zero@1#0', 'zero@1#1']);
  t.deepEqual(clipper.getModel('zero').versions, [info]);
  t.deepEqual(clipper.getModel('zero').linkedApps, ['app']);
  t.deepEqual(clipper.testing().replicas('zero'), info.replicas);
  await t.throwsAsync(clipper.testing().injectFault('zero', 5, { kind: 'exit' }), { code: 'NO_REPLICA_AVAILABLE' } as never);
  t.throws(() => clipper.describeModel('nope'), { code: 'UNKNOWN_MODEL' } as never);
  t.throws(() => clipper.describeModel('zero', '9'), { code: 'UNKNOWN_VERSION' } as never);
  t.false('replicaSet' in clipper, 'replica sets are not handed out');
});

test('a model\'s config.json batching block is its default batching; deploy options override it', async (t) => {
  const clipper = await system(t);
  await clipper.deployModel({ name: 'small-batches', version: '1', path: 'small-batches/1/model.mjs' });
  t.is(clipper.describeModel('small-batches').batching.maxBatchSize, 4);
  await clipper.deployModel({ name: 'small-batches', version: '2', path: 'small-batches/1/model.mjs', batching: { maxBatchSize: 8 } });
  t.is(clipper.describeModel('small-batches', '2').batching.maxBatchSize, 8);
});

test('linking refuses a model whose output width differs from the linked ones under a combining policy (issue 14 bug 1)', async (t) => {
  const clipper = await system(t);
  await clipper.deployModel({ name: 'zero', version: '1', path: 'zero/1/model.mjs' });
  await clipper.deployModel({ name: 'one', version: '1', path: 'one/1/model.mjs' });
  await clipper.deployModel({ name: 'four', version: '1', path: 'four/1/model.mjs' });
  clipper.setPolicy('app', { kind: 'exp4' });
  await clipper.linkModel('app', 'zero');
  await clipper.linkModel('app', 'one');
  const error = await t.throwsAsync(clipper.linkModel('app', 'four'), { instanceOf: IncompatibleModelError });
  t.regex(error?.message ?? '', /model four gives 4 values per row and model zero gives 3/);
  t.is(error?.status, 409);
  t.deepEqual(clipper.getLinkedModels('app'), ['zero', 'one'], 'the link was not made');
  // The ensemble answers: no query ever meets rows of two widths.
  const answer = await clipper.predict('app', [1, 2]);
  t.false(answer.isDefault, answer.explanation);

  // A policy that picks one model per query may link models of any width; switching it to a combining
  // policy then is refused the same way.
  await clipper.registerApp({ name: 'pick', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
  await clipper.linkModel('pick', 'zero');
  await clipper.linkModel('pick', 'four');
  t.throws(() => clipper.setPolicy('pick', { kind: 'exp4', perUser: {} }), { instanceOf: IncompatibleModelError, message: /gives 4 values per row/ });
  t.is(clipper.getApp('pick').policy, 'static');
});

test('a model removed and deployed again under the same name and version answers with the new file, not the cache (issue 14 bug 3)', async (t) => {
  const clipper = await system(t);
  await clipper.deployModel({ name: 'm', version: '1', path: 'zero/1/model.mjs' });
  await clipper.linkModel('app', 'm');
  t.is((await clipper.predict('app', [1, 2])).output, 0);
  t.true((await clipper.predict('app', [1, 2])).cached, 'the second query is a cache hit');
  await clipper.removeModel('m');
  await clipper.deployModel({ name: 'm', version: '1', path: 'one/1/model.mjs' });
  await clipper.linkModel('app', 'm');
  const answer = await clipper.predict('app', [1, 2]);
  t.false(answer.cached);
  t.is(answer.output, 1, 'the new file answers');
});

test('feedback checks the label range with no replica loaded, from the width config.json gives or warm-up learned (issue 14 bug 7)', async (t) => {
  const clipper = await system(t);
  await clipper.deployModel({ name: 'zero', version: '1', path: 'zero/1/model.mjs', replicas: 0 });
  await clipper.linkModel('app', 'zero');
  const refused = await t.throwsAsync(clipper.feedback('app', [1, 2], 5), { instanceOf: InvalidInputError });
  t.regex(refused?.message ?? '', /label 5 is not a class of application app; expected an integer in \[0, 2\]/);

  await clipper.registerApp({ name: 'wide', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
  await clipper.deployModel({ name: 'four', version: '1', path: 'four/1/model.mjs', replicas: 1 });
  await clipper.linkModel('wide', 'four');
  await clipper.setNumReplicas('four', 0);
  t.is(clipper.describeModel('four').replicas.length, 0);
  t.is(clipper.describeModel('four').output.size, 4, 'learned at warm-up, kept at zero replicas');
  await t.throwsAsync(clipper.feedback('wide', [1, 2], 4), { instanceOf: InvalidInputError, message: /expected an integer in \[0, 3\]/ });
});

test('a uid is a non-empty string: "" and numbers are refused, so they never share a key with "no uid" (issue 14 bug 7)', async (t) => {
  const clipper = await system(t);
  await clipper.deployModel({ name: 'zero', version: '1', path: 'zero/1/model.mjs' });
  await clipper.linkModel('app', 'zero');
  await t.throwsAsync(clipper.predict('app', [1, 2], { uid: '' }), { instanceOf: InvalidInputError, message: /uid must be a non-empty string/ });
  await t.throwsAsync(clipper.predict('app', [1, 2], { uid: 7 } as never), { instanceOf: InvalidInputError, message: /got 7/ });
  await t.throwsAsync(clipper.feedback('app', [1, 2], 0, { uid: '' }), { instanceOf: InvalidInputError });
  t.is((await clipper.predict('app', [1, 2], { uid: 'alice' })).output, 0);
  t.is((await clipper.predict('app', [1, 2])).output, 0);
});
