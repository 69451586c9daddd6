import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import * as ort from 'onnxruntime-node';
import { Clipper, type Answer } from '../../src/index.js';
import { runOpenLoop } from '../../src/load/open-loop.js';
import { digit, loadMnist } from '../../src/data/mnist-data.js';
import { projectRoot } from '../../src/paths.js';
import { waitFor } from '../helpers/fixtures.js';
import { natsRequired, TestNatsServer } from '../helpers/nats-server.js';

// Model containers over NATS: a real nats-server of the test's own (never the machine's 4222), containers as
// real processes (`clipper-ts container`), the frontend's replicas sending them whole batches. Faults under
// open-loop load count sent / answered / default / refused / lost (lost must be 0, nothing may hang).

const run = natsRequired() ? test.serial : test.serial.skip;
const { test: heldOut } = loadMnist();
const cli = path.join(projectRoot, 'dist', 'src', 'cli.js');

interface Container {
  process: ChildProcess;
  exited: Promise<number | null>;
}

/** Starts a process and waits for it to print `ready`. */
async function startReady(args: string[]): Promise<Container> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: projectRoot });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready')) resolve();
    });
    void exited.then((code) => reject(new Error(`${args.join(' ')} exited with ${code} before it was ready: ${out}`)));
  });
  child.stdout?.resume();
  return { process: child, exited };
}

const container = (url: string, id: string): Promise<Container> => startReady([cli, 'container', '--nats', url, '--model', 'mnist-mlp', '--version', '1', '--id', id]);

interface Tally {
  sent: number;
  model: number;
  defaults: number;
  refused: number;
  lost: number;
}

async function underLoad(clipper: Clipper, app: string, rate: number, count: number, during: () => Promise<void>): Promise<Tally & { answeredAt: number[] }> {
  const tally = { sent: 0, model: 0, defaults: 0, refused: 0, lost: 0, answeredAt: [] as number[] };
  const settled = new Set<number>();
  const load = runOpenLoop<Answer>({
    rate,
    count,
    send: (i) => {
      tally.sent++;
      return clipper.predict(app, digit(heldOut, i % heldOut.count));
    },
    onOutcome: (o) => {
      if (settled.has(o.index)) tally.lost++;
      settled.add(o.index);
      if (o.error !== undefined) {
        if ((o.error as { code?: string }).code === 'OVERLOADED') tally.refused++;
        else tally.lost++;
      } else if (o.result?.isDefault) tally.defaults++;
      else {
        tally.model++;
        tally.answeredAt.push(Date.now());
      }
    },
  });
  await during();
  await load;
  tally.lost += tally.sent - settled.size;
  return tally;
}

async function frontend(url: string, replicas: number, sloMs = 1000): Promise<Clipper> {
  const clipper = await Clipper.start({ supervision: { backoffBaseMs: 50, backoffMaxMs: 500, maxRestarts: 100 } });
  await clipper.registerApp({ name: 'digits', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: sloMs, cacheMaxBytes: 0 });
  await clipper.deployModel({ name: 'mnist-mlp', version: '1', path: 'models/mnist-mlp/1/model.onnx', replicas, remote: { nats: url, claimWaitMs: 20_000, graceMs: 250 } });
  await clipper.linkModel('digits', 'mnist-mlp');
  return clipper;
}

run('1,000 real digits through three containers equal direct onnxruntime results; SIGTERM drains each to exit 0', async (t) => {
  const nats = await TestNatsServer.start();
  t.teardown(() => nats.close());
  const containers = await Promise.all(['c1', 'c2', 'c3'].map((id) => container(nats.url, id)));
  t.teardown(() => containers.forEach((c) => c.process.kill('SIGKILL')));
  // A generous SLO: this test is about equal answers, and other suites share the two cores.
  const clipper = await frontend(nats.url, 3, 5000);
  t.teardown(() => clipper.stop());

  const n = 1000;
  const session = await ort.InferenceSession.create(path.join(projectRoot, 'models/mnist-mlp/1/model.onnx'));
  const direct = (await session.run({ input: new ort.Tensor('float32', heldOut.images.slice(0, n * 784), [n, 784]) })).probabilities?.data as Float32Array;
  const answers = await Promise.all(Array.from({ length: n }, (_, i) => clipper.predict('digits', digit(heldOut, i))));
  let equal = 0;
  let defaults = 0;
  let maxDiff = 0;
  for (let i = 0; i < n; i++) {
    const scores = answers[i]?.scores;
    if (answers[i]?.isDefault === true || scores === undefined) {
      defaults++;
      continue;
    }
    const diff = Math.max(...Array.from(scores, (v, k) => Math.abs(v - (direct[i * 10 + k] as number))));
    maxDiff = Math.max(maxDiff, diff);
    if (diff === 0) equal++;
  }
  t.log(JSON.stringify({ equal, defaults, maxDiff }));
  t.is(defaults, 0);
  t.is(equal, n);
  // Every container took part.
  const used = new Set(clipper.describeModel('mnist-mlp').replicas.map((r) => r.name));
  t.is(used.size, 3);

  for (const c of containers) c.process.kill('SIGTERM');
  t.deepEqual(await Promise.all(containers.map((c) => c.exited)), [0, 0, 0]);
});

run('a container written only with the NATS client (not clipper-ts code) joins and answers', async (t) => {
  const nats = await TestNatsServer.start();
  t.teardown(() => nats.close());
  const minimal = await startReady([path.join(projectRoot, 'test', 'fixtures', 'minimal-container.mjs'), nats.url, 'm1']);
  t.teardown(() => minimal.process.kill('SIGKILL'));
  const clipper = await Clipper.start({ modelRepository: path.join(projectRoot, 'test', 'fixtures', 'models') });
  t.teardown(() => clipper.stop());
  await clipper.registerApp({ name: 'sum', inputType: 'float32', inputShape: [4], defaultOutput: -1, latencySloMs: 2000 });
  await clipper.deployModel({ name: 'sum', version: '1', path: 'sum/1/model.mjs', replicas: 1, remote: { nats: nats.url, claimWaitMs: 5_000 } });
  await clipper.linkModel('sum', 'sum');
  const answers = await Promise.all([clipper.predict('sum', [1, 2, 3, 4]), clipper.predict('sum', [5, -1, 0.5, 2])]);
  t.deepEqual(answers.map((a) => a.output), [
    [10, 4],
    [6.5, 5],
  ]);
  minimal.process.kill('SIGTERM');
  t.is(await minimal.exited, 0);
});

run('SIGKILL a container mid-batch under open-loop load: nothing is lost, a new container is claimed', async (t) => {
  const nats = await TestNatsServer.start();
  t.teardown(() => nats.close());
  const containers = await Promise.all(['k1', 'k2', 'k3'].map((id) => container(nats.url, id)));
  t.teardown(() => containers.forEach((c) => c.process.kill('SIGKILL')));
  const clipper = await frontend(nats.url, 2, 500);
  t.teardown(() => clipper.stop());
  const tally = await underLoad(clipper, 'digits', 300, 1500, async () => {
    await new Promise((r) => setTimeout(r, 1500));
    // Kill two of the three containers (one is spare), so at least one that a replica holds dies mid-flow.
    const held = containers.slice(0, 2);
    for (const c of held) c.process.kill('SIGKILL');
    await Promise.all(held.map((c) => c.exited));
    containers.push(await container(nats.url, 'k4'));
  });
  t.log(JSON.stringify({ ...tally, answeredAt: undefined }));
  t.is(tally.lost, 0);
  t.is(tally.sent, 1500);
  t.is(tally.model + tally.defaults + tally.refused, 1500);
  // How many a model answers depends on how loaded the machine is (as in reliability.test.ts).
  t.true(tally.model > 400, `${tally.model} answered by a model`);
  // Two replicas hold two of the three containers, and two containers were killed: at least one held container
  // died (the facade does not say which two are held, so exactly which is not known).
  const deaths = clipper.describeModel('mnist-mlp').replicas.reduce((n, r) => n + r.counters.workerDeaths, 0);
  t.true(deaths >= 1, `${deaths} worker deaths`);
  await waitFor(() => clipper.describeModel('mnist-mlp').readyReplicas === 2, 15_000, 'both replicas on live containers');
  t.false((await clipper.predict('digits', digit(heldOut, 3))).isDefault);
});

run('nats-server stops for 3 s and starts again under load: service resumes within 5 s, nothing is lost', async (t) => {
  const nats = await TestNatsServer.start();
  t.teardown(() => nats.close());
  const containers = await Promise.all(['n1', 'n2'].map((id) => container(nats.url, id)));
  t.teardown(() => containers.forEach((c) => c.process.kill('SIGKILL')));
  const clipper = await frontend(nats.url, 2, 500);
  t.teardown(() => clipper.stop());
  let restartedAt = 0;
  const tally = await underLoad(clipper, 'digits', 200, 2400, async () => {
    await new Promise((r) => setTimeout(r, 2000));
    await nats.stop();
    await new Promise((r) => setTimeout(r, 3000));
    await nats.resume();
    restartedAt = Date.now();
  });
  const firstAfter = tally.answeredAt.find((at) => at >= restartedAt);
  t.log(JSON.stringify({ ...tally, answeredAt: undefined, resumedAfterMs: firstAfter === undefined ? null : firstAfter - restartedAt }));
  t.is(tally.lost, 0);
  t.is(tally.sent, 2400);
  t.is(tally.model + tally.defaults + tally.refused, 2400);
  t.not(firstAfter, undefined);
  t.true((firstAfter ?? Infinity) - restartedAt < 5000, `service resumed ${(firstAfter ?? Infinity) - restartedAt} ms after nats-server came back`);
  t.true(tally.model > 400, `${tally.model} answered by a model`);
});

run('per-batch round trip outside the model, side by side: thread, child process, container over NATS (p50, p99)', async (t) => {
  const nats = await TestNatsServer.start();
  t.teardown(() => nats.close());
  const remote = await startReady([cli, 'container', '--nats', nats.url, '--model', 'hop-nats', '--version', '1', '--path', 'models/mnist-mlp/1/model.onnx', '--id', 'h1']);
  t.teardown(() => remote.process.kill('SIGKILL'));
  const clipper = await Clipper.start();
  t.teardown(() => clipper.stop());
  const kinds = ['thread', 'process', 'nats'] as const;
  const hops: Record<string, number[]> = { thread: [], process: [], nats: [] };
  clipper.onBatch((e) => hops[e.model.replace('hop-', '')]?.push(e.batchMs - e.computeMs));
  for (const kind of kinds) {
    await clipper.registerApp({ name: `hop-${kind}`, inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 2000, cacheMaxBytes: 0 });
    await clipper.deployModel({
      name: `hop-${kind}`,
      version: '1',
      path: 'models/mnist-mlp/1/model.onnx',
      replicas: 1,
      batching: { mode: 'none' },
      ...(kind === 'process' ? { isolation: 'process' as const } : {}),
      ...(kind === 'nats' ? { remote: { nats: nats.url, claimWaitMs: 5_000 } } : {}),
    });
    await clipper.linkModel(`hop-${kind}`, `hop-${kind}`);
  }
  // One query per batch, alternating kinds, so the same machine noise falls on all three.
  for (let i = 0; i < 300; i++) for (const kind of kinds) await clipper.predict(`hop-${kind}`, digit(heldOut, i));
  const percentile = (values: number[], p: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(p * values.length))] ?? Number.NaN;
  const report = Object.fromEntries(kinds.map((k) => [k, { batches: hops[k]?.length, p50: +percentile(hops[k] ?? [], 0.5).toFixed(3), p99: +percentile(hops[k] ?? [], 0.99).toFixed(3) }]));
  t.log(`hop ms (batchMs - computeMs): ${JSON.stringify(report)}`);
  for (const k of kinds) t.true((hops[k]?.length ?? 0) >= 300, k);
});
