import test from 'ava';
import { Clipper, type Answer, type SupervisionEvent } from '../../src/index.js';
import { runOpenLoop } from '../../src/load/open-loop.js';
import { digit, loadMnist } from '../../src/data/mnist-data.js';
import { LoopDelay, lateAnswers, slowest } from '../helpers/deadline.js';
import { fixtureModels, waitFor } from '../helpers/fixtures.js';

// Faults under load: every accepted query gets exactly one answer, inside the SLO. Counts: sent, answered by a
// model, answered with the default output, refused (503), lost (must be 0).

const { test: heldOut } = loadMnist();

interface Tally {
  sent: number;
  model: number;
  defaults: number;
  refused: number;
  lost: number;
  versions: Set<string>;
  /** Every answer, in the order they came: each must have left the router inside the SLO. */
  answers: Answer[];
  /** The event loop's worst delay during the load, ms (see test/helpers/deadline.ts). */
  loopDelayMs: number;
  /** Default answers by reason (the explanation with its numbers and replica names taken out). */
  reasons: Record<string, number>;
}

function summary(tally: Tally): string {
  return `${JSON.stringify({ ...tally, versions: [...tally.versions], answers: tally.answers.length })}; ${slowest(tally.answers, tally.loopDelayMs)}`;
}

async function underLoad(clipper: Clipper, app: string, rate: number, count: number, input: (i: number) => unknown, during: () => Promise<void>, shouldStop?: () => boolean): Promise<Tally> {
  const tally: Tally = { sent: 0, model: 0, defaults: 0, refused: 0, lost: 0, versions: new Set(), answers: [], loopDelayMs: 0, reasons: {} };
  const loop = new LoopDelay();
  // A promise settles once, so a double answer cannot show here; what can is a query never answered.
  const settled = new Set<number>();
  const load = runOpenLoop<Answer>({
    rate,
    count,
    ...(shouldStop === undefined ? {} : { shouldStop }),
    send: (i) => {
      tally.sent++;
      return clipper.predict(app, input(i));
    },
    onOutcome: (o) => {
      settled.add(o.index);
      if (o.result !== undefined) tally.answers.push(o.result);
      if (o.error !== undefined) {
        if ((o.error as { code?: string }).code === 'OVERLOADED') tally.refused++;
        else tally.lost++;
      } else if (o.result?.isDefault) {
        tally.defaults++;
        const reason = (o.result.explanation ?? '').replace(/[\d.]+/g, 'N').slice(0, 90);
        tally.reasons[reason] = (tally.reasons[reason] ?? 0) + 1;
      }
      else {
        tally.model++;
        tally.versions.add(`${o.result?.model}@${o.result?.version}`);
      }
    },
  });
  // Even when injecting a fault fails, the load runs to its end before the test fails: nothing keeps sending
  // into a system the teardown is stopping.
  try {
    await during();
  } finally {
    await load;
    tally.loopDelayMs = loop.stop();
  }
  tally.lost += tally.sent - settled.size;
  return tally;
}

// Serial: each test here puts load on the two cores and asserts what the system does with them (how many
// queries a model answers while workers die); run side by side, the tests would measure each other.
test.serial('workers killed under load (exit and uncaught errors): nothing is lost, and the replicas come back', async (t) => {
  const clipper = await Clipper.start({ supervision: { backoffBaseMs: 50, maxRestarts: 20 } });
  t.teardown(() => clipper.stop());
  const events: SupervisionEvent[] = [];
  clipper.onSupervisionEvent((e) => events.push(e));
  await clipper.registerApp({ name: 'digits', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 200, cacheMaxBytes: 0 });
  await clipper.deployModel({ name: 'mnist-mlp', version: '1', path: 'models/mnist-mlp/1/model.onnx', replicas: 2 });
  await clipper.linkModel('digits', 'mnist-mlp');
  const testing = clipper.testing();
  const deathsSoFar = () => testing.replicas('mnist-mlp').reduce((n, r) => n + r.counters.workerDeaths, 0);
  // The load runs until the sixth fault has killed its worker and half a second more (at least 1,600 queries on a
  // quiet machine, more when restarts are slow), so every fault lands in a loaded system.
  let faultsDone = false;
  const tally = await underLoad(clipper, 'digits', 400, 16_000, (i) => digit(heldOut, i % heldOut.count), async () => {
    for (let k = 0; k < 6; k++) {
      await new Promise((r) => setTimeout(r, 500));
      // A replica restarting from the previous fault is skipped; the other one takes this fault. The fault is
      // armed for that replica's next batch, which the load provides. A failed injection fails the test.
      await waitFor(() => testing.replicas('mnist-mlp').some((r) => r.ready), 5_000, 'a ready replica to inject into');
      const ready = testing.replicas('mnist-mlp').flatMap((r, index) => (r.ready ? [index] : []));
      const deathsBefore = deathsSoFar();
      await testing.injectFault('mnist-mlp', ready[k % ready.length] as number, { kind: k % 2 === 0 ? 'exit' : 'throw' });
      // One fault, one death, before the next is armed (two armed on one idle replica would make one death).
      await waitFor(() => deathsSoFar() === deathsBefore + 1, 5_000, `fault ${k + 1} to kill its worker`);
    }
    await new Promise((r) => setTimeout(r, 500));
    faultsDone = true;
  }, () => faultsDone);
  t.log(summary(tally));
  t.is(tally.lost, 0);
  t.true(tally.sent >= 1200 && tally.sent < 16_000, `${tally.sent} sent`);
  t.is(tally.model + tally.defaults + tally.refused, tally.sent);
  t.deepEqual(lateAnswers(tally.answers, 200, tally.loopDelayMs), [], 'every answer within the 200 ms SLO');
  // A dying worker's batch and queue are retried once on the other replica, so nearly every query still gets a
  // model's answer: 1,598-1,600 of 1,600 were measured on a machine this suite had to itself (99.9%). A default answer
  // needs a query to meet a second death (or the deadline) on its retry; 1% of the load leaves room for that and
  // nothing more (before, `> 400` let three quarters fall back unnoticed). 400 queries a second is a capacity
  // claim, though: when other processes starve this one (its event loop measured over 100 ms late; on a
  // shared 2-core machine running several suites at once, 2 model answers and 1,016 refusals were seen) the
  // bound is not checked, and the log says so. The deadline check above holds either way.
  if (tally.loopDelayMs <= 100) t.true(tally.model >= 0.99 * tally.sent, `${tally.model} of ${tally.sent} answered by the model`);
  else t.log(`capacity bound not checked: the event loop ran up to ${tally.loopDelayMs.toFixed(0)} ms late`);
  // Each injected fault killed exactly one worker (on its next batch), none died otherwise, and each came back.
  t.is(deathsSoFar(), 6, `${deathsSoFar()} worker deaths`);
  await waitFor(() => clipper.describeModel('mnist-mlp').readyReplicas === 2, 15_000, 'both replicas back');
  t.is(events.filter((e) => e.type === 'restarted').length, 6);
});

test.serial('a JS model that hangs is recycled by the batch timeout; one that runs out of memory dies alone', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels, supervision: { backoffBaseMs: 20 } });
  t.teardown(() => clipper.stop());
  await clipper.registerApp({ name: 'hang', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
  await clipper.registerApp({ name: 'hog', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
  await clipper.deployModel({ name: 'hang', version: '1', path: 'hang/1/model.mjs', replicas: 2, batchTimeoutMs: 300, batching: { mode: 'none' } });
  await clipper.deployModel({ name: 'hog', version: '1', path: 'hog/1/model.mjs', replicas: 1, resourceLimits: { maxOldGenerationSizeMb: 64 } });
  await clipper.linkModel('hang', 'hang');
  await clipper.linkModel('hog', 'hog');
  const hog = () => clipper.describeModel('hog');

  const [stuck, fine] = await Promise.all([clipper.predict('hang', [1, 5]), clipper.predict('hang', [0, 6])]);
  t.is(fine?.output, 6);
  // The hanging row is retried once on the other replica, which hangs too: the default output, explained.
  t.true(stuck?.isDefault);
  t.regex(stuck?.explanation ?? '', /batch timeout/);
  const hang = () => clipper.describeModel('hang');
  t.is(hang().replicas.reduce((n, r) => n + r.counters.timeouts, 0), 2);
  await waitFor(() => hang().readyReplicas === 2, 15_000, 'hung replicas recycled');
  t.is((await clipper.predict('hang', [0, 7])).output, 7);

  const oom = await clipper.predict('hog', [1, 1]);
  t.true(oom.isDefault);
  // The death is reported with the task's reason, not the thread's bare exit code (which can come first).
  t.regex(oom.explanation ?? '', /hog@1#0 of model hog@1 failed while holding the query \(Worker terminated due to reaching memory limit/);
  t.is(hog().replicas[0]?.counters.workerDeaths, 1, 'the hog worker died');
  t.log(oom.explanation);
  await waitFor(() => hog().readyReplicas === 1, 15_000, 'the out-of-memory replica restarted');
  t.is((await clipper.predict('hog', [0, 8])).output, 8);
  t.is((await clipper.predict('hang', [0, 9])).output, 9, 'the other model never noticed');
});

test.serial('an out-of-memory death is explained as out of memory, not as any exit', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels, supervision: { backoffBaseMs: 20 } });
  t.teardown(() => clipper.stop());
  await clipper.registerApp({ name: 'hog', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
  await clipper.deployModel({ name: 'hog', version: '1', path: 'hog/1/model.mjs', replicas: 1, resourceLimits: { maxOldGenerationSizeMb: 64 } });
  await clipper.linkModel('hog', 'hog');
  const oom = await clipper.predict('hog', [1, 1]);
  t.regex(oom.explanation ?? '', /memory/i);
  // Stopping while the replica restarts is not what this test is about: let it come back first.
  await waitFor(() => clipper.describeModel('hog').readyReplicas === 1, 15_000, 'the out-of-memory replica restarted');
});

test.serial('rolling forward and back under load loses nothing, never mixes versions, and drains the old version', async (t) => {
  const clipper = await Clipper.start();
  t.teardown(() => clipper.stop());
  await clipper.registerApp({ name: 'digits', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 500, cacheMaxBytes: 0 });
  await clipper.deployModel({ name: 'mnist-mlp', version: '1', path: 'models/mnist-mlp/1/model.onnx', replicas: 1 });
  await clipper.linkModel('digits', 'mnist-mlp');
  const byVersion = new Map<string, { right: number; total: number }>();
  const tally = await underLoad(
    clipper,
    'digits',
    300,
    1200,
    (i) => digit(heldOut, i % heldOut.count),
    async () => {
      await new Promise((r) => setTimeout(r, 600));
      await clipper.deployModel({ name: 'mnist-mlp', version: '2-broken', path: 'models/mnist-mlp/2-broken/model.onnx', replicas: 1 });
      t.is(clipper.describeModel('mnist-mlp', '1').replicas.length, 0, 'version 1 drained and stopped');
      await new Promise((r) => setTimeout(r, 800));
      await clipper.setModelVersion('mnist-mlp', '1');
      t.is(clipper.describeModel('mnist-mlp', '2-broken').replicas.length, 0, 'the broken version drained and stopped');
    },
  );
  t.log(summary(tally));
  t.is(tally.lost, 0);
  t.is(tally.model + tally.defaults + tally.refused, 1200);
  t.deepEqual([...tally.versions].sort(), ['mnist-mlp@1', 'mnist-mlp@2-broken']);
  if (tally.loopDelayMs <= 100) t.true(tally.model > 1100, `${tally.model} model answers`);
  else t.log(`capacity bound not checked: the event loop ran up to ${tally.loopDelayMs.toFixed(0)} ms late`);
  t.deepEqual(lateAnswers(tally.answers, 500, tally.loopDelayMs), [], 'every answer within the 500 ms SLO');
  // Each answer comes from one version: scoring them per version shows the two models' own accuracies.
  for (let i = 0; i < 200; i++) {
    const a = await clipper.predict('digits', digit(heldOut, i));
    const v = byVersion.get(a.version as string) ?? { right: 0, total: 0 };
    v.total++;
    if (a.output === heldOut.labels[i]) v.right++;
    byVersion.set(a.version as string, v);
  }
  t.deepEqual([...byVersion.keys()], ['1']);
  t.true((byVersion.get('1')?.right ?? 0) / 200 > 0.9);
});

test.serial('a sporadic model scales to zero when idle and loads again on its next query (cold start measured)', async (t) => {
  const clipper = await Clipper.start();
  t.teardown(() => clipper.stop());
  await clipper.registerApp({ name: 'digits', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 10_000 });
  await clipper.registerApp({ name: 'strict', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 10_000 });
  await clipper.deployModel({ name: 'mnist-cnn', version: '1', path: 'models/mnist-cnn/1/model.onnx', replicas: 2, scaleToZero: { idleMs: 300 } });
  await clipper.deployModel({ name: 'mnist-linear', version: '1', path: 'models/mnist-linear/1/model.onnx', scaleToZero: { idleMs: 300, coldStart: 'default' } });
  await clipper.linkModel('digits', 'mnist-cnn');
  await clipper.linkModel('strict', 'mnist-linear');
  const cnn = () => clipper.describeModel('mnist-cnn');
  const linear = () => clipper.describeModel('mnist-linear');
  t.is((await clipper.predict('digits', digit(heldOut, 0))).output, heldOut.labels[0]);
  await waitFor(() => cnn().replicas.length === 0 && linear().replicas.length === 0, 10_000, 'scale to zero');
  t.true(cnn().scaledToZero);
  t.true(clipper.ready, 'a model scaled to zero still counts as ready');
  // 'wait': the first query waits for the load and gets the model's answer; concurrent ones share the load:
  // one cold start for the whole wave, not one per query.
  const coldStartsBefore = cnn().coldStartsMs.length;
  const woken = await Promise.all([1, 2, 3].map((i) => clipper.predict('digits', digit(heldOut, i))));
  woken.forEach((a, k) => {
    t.false(a.isDefault, a.explanation);
    t.is(a.output, heldOut.labels[k + 1]);
  });
  t.is(cnn().coldStartsMs.length, coldStartsBefore + 1, `cold starts: ${cnn().coldStartsMs.join(', ')}`);
  t.true((cnn().coldStartsMs.at(-1) as number) > 0);
  t.is(cnn().replicas.length, 2);
  // 'default': with no measured cold start (or one past the deadline) the first query gets the default output.
  const cold = await clipper.predict('strict', digit(heldOut, 4));
  t.true(cold.isDefault);
  t.regex(cold.explanation ?? '', /scaled to zero and is loading/);
  await waitFor(() => linear().readyReplicas === 1, 10_000, 'linear loaded');
  t.is((await clipper.predict('strict', digit(heldOut, 5))).output, heldOut.labels[5]);
  t.log(`cold starts: cnn ${cnn().coldStartsMs.map((ms) => ms.toFixed(0)).join(', ')} ms, linear ${linear().coldStartsMs.map((ms) => ms.toFixed(0)).join(', ')} ms`);
});

test.serial('multiplexed models share a bounded number of slots; the least recently used is unloaded and reloads on demand', async (t) => {
  const clipper = await Clipper.start({ multiplex: { maxActiveModels: 2 } });
  t.teardown(() => clipper.stop());
  const names = ['mnist-linear', 'mnist-mlp', 'mnist-cnn'];
  const loaded = (): string[] => names.filter((n) => clipper.getModels().some((m) => m.name === n) && clipper.describeModel(n).replicas.length > 0);
  for (const name of names) {
    await clipper.registerApp({ name, inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 10_000 });
    await clipper.deployModel({ name, version: '1', path: `models/${name}/1/model.onnx`, multiplexed: true });
    await clipper.linkModel(name, name);
    t.true(loaded().length <= 2, `loaded: ${loaded().join(', ')}`);
  }
  // Deploying the third made room by unloading the least recently used: the first.
  t.deepEqual(loaded(), ['mnist-mlp', 'mnist-cnn']);
  await clipper.predict('mnist-mlp', digit(heldOut, 0)); // mlp is now more recent than cnn
  const answer = await clipper.predict('mnist-linear', digit(heldOut, 1));
  t.false(answer.isDefault, answer.explanation);
  t.is(answer.output, heldOut.labels[1]);
  t.deepEqual(loaded(), ['mnist-linear', 'mnist-mlp'], 'the CNN, least recently used, made room');
  t.is(clipper.multiplexing?.evictions, 2);
  t.is(clipper.describeModel('mnist-linear').coldStartsMs.length, 1);
  // Every model still answers, each through a cold start when it was unloaded, never more than two at once.
  for (const name of ['mnist-cnn', 'mnist-mlp', 'mnist-linear', 'mnist-cnn']) {
    const a = await clipper.predict(name, digit(heldOut, 2));
    t.false(a.isDefault, a.explanation);
    t.is(a.model, name);
    t.true(loaded().length <= 2);
  }
  t.true(clipper.ready);
  await t.throwsAsync(
    (await Clipper.start()).deployModel({ name: 'x', version: '1', path: 'models/mnist-linear/1/model.onnx', multiplexed: true }),
    { message: /has no pool: start it with Clipper.start\(\{ multiplex/ },
  );
});
