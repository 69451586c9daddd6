/**
 * Containers become replicas in every frontend (`serve --nats URL --remote`): two frontends share a nats-server
 * of the test's own; a model added on A runs in model containers (`clipper-ts container`, real processes); a
 * second container started later becomes a second replica in both frontends, and one drained (SIGTERM) stops
 * being one. Queries through either frontend are answered by the model.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import * as ort from 'onnxruntime-node';
import { loadMnist, digit, type Answer } from '../../src/index.js';
import { projectRoot } from '../../src/paths.js';
import { serve, type RunningServer } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { cli, post } from '../helpers/cli-server.js';
import { natsRequired, TestNatsServer } from '../helpers/nats-server.js';

const run = natsRequired() ? test.serial : test.serial.skip;
const { test: heldOut } = loadMnist();

async function container(url: string, id: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'container', '--nats', url, '--model', 'mnist-mlp', '--version', '1', '--id', id], { stdio: ['ignore', 'pipe', 'inherit'], cwd: projectRoot });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`container ${id} exited with ${code}: ${out}`)));
  });
  child.stdout?.resume();
  return child;
}

const frontend = (url: string): Promise<RunningServer> =>
  serve(resolveServeSettings(['--port', '0', '--admin-port', '0', '--grpc-port', '0', '--log-level', 'silent', '--no-bundled', '--nats', url, '--remote', '--max-event-loop-delay-ms', '0'], {}));

async function replicasOf(s: RunningServer): Promise<number> {
  const model = (await post(`${s.adminUrl}/admin/get_model`, { model_name: 'mnist-mlp' })).body;
  return (model.versions?.[0]?.replicas ?? []).filter((r: { retired: boolean }) => !r.retired).length;
}

async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

run('containers announced for a version become its replicas in every frontend, and stop being them when they stop', async (t) => {
  const nats = await TestNatsServer.start();
  t.teardown(() => nats.close());
  const containers: ChildProcess[] = [];
  t.teardown(() => {
    for (const c of containers) c.kill('SIGKILL');
  });
  containers.push(await container(nats.url, 'one'));
  const a = await frontend(nats.url);
  t.teardown(() => a.close());
  const onA = (route: string, body: unknown) => post(`${a.adminUrl}/admin/${route}`, body);
  t.is((await onA('add_app', { name: 'remote', input_type: 'float32', input_shape: [784], default_output: -1, latency_slo_ms: 2000 })).status, 200);
  t.is((await onA('add_model', { model_name: 'mnist-mlp', model_version: '1', model_data_path: 'mnist-mlp/1/model.onnx' })).status, 200);
  t.is((await onA('add_model_links', { app_name: 'remote', model_names: ['mnist-mlp'] })).status, 200);
  const b = await frontend(nats.url);
  t.teardown(() => b.close());
  t.is(await replicasOf(a), 1);
  t.is(await replicasOf(b), 1);

  containers.push(await container(nats.url, 'two'));
  await until('two replicas on A and B', async () => (await replicasOf(a)) === 2 && (await replicasOf(b)) === 2);
  // The status page shows the cluster: both frontends (each marks itself) and both containers.
  const cluster = async (s: RunningServer) => ((await (await fetch(`${s.adminUrl}/status/snapshot`)).json()) as { frame: { cluster?: { self: string; frontends: { id: string; queryUrl: string }[]; containers: { id: string; model: string; version: string }[] } } }).frame.cluster;
  await until('the status page lists both frontends and both containers', async () => {
    const view = await cluster(a);
    return view?.frontends.length === 2 && view.containers.length === 2;
  });
  const viewA = await cluster(a);
  const viewB = await cluster(b);
  t.deepEqual(viewA?.frontends.map((f) => f.queryUrl).sort(), [a.queryUrl, b.queryUrl].sort());
  t.not(viewA?.self, viewB?.self);
  t.true(viewA?.frontends.some((f) => f.id === viewA.self && f.queryUrl === a.queryUrl));
  t.deepEqual(viewA?.containers.map((c) => [c.id, c.model, c.version]), [['one', 'mnist-mlp', '1'], ['two', 'mnist-mlp', '1']]);
  for (const s of [a, b]) {
    for (let i = 0; i < 5; i++) {
      const answer = await post(`${s.queryUrl}/remote/predict`, { input: Array.from(digit(heldOut, i)) });
      t.is(answer.status, 200);
      t.false(answer.body.default, JSON.stringify(answer.body));
      t.is(answer.body.model, 'mnist-mlp');
    }
  }
  const second = containers[1] as ChildProcess;
  second.kill('SIGTERM');
  await new Promise((r) => second.once('exit', r));
  await until('one replica on A and B', async () => (await replicasOf(a)) === 1 && (await replicasOf(b)) === 1);
  const answer = await post(`${b.queryUrl}/remote/predict`, { input: Array.from(digit(heldOut, 7)) });
  t.false(answer.body.default, JSON.stringify(answer.body));
});

run('1,000 real digits through two frontends and three containers equal direct onnxruntime results', async (t) => {
  const nats = await TestNatsServer.start();
  t.teardown(() => nats.close());
  const containers = await Promise.all(['c1', 'c2', 'c3'].map((id) => container(nats.url, id)));
  t.teardown(() => {
    for (const c of containers) c.kill('SIGKILL');
  });
  const a = await frontend(nats.url);
  t.teardown(() => a.close());
  const onA = (route: string, body: unknown) => post(`${a.adminUrl}/admin/${route}`, body);
  // A generous SLO: this test is about equal answers, and the two cores are shared.
  t.is((await onA('add_app', { name: 'digits3', input_type: 'float32', input_shape: [784], default_output: -1, latency_slo_ms: 5000 })).status, 200);
  t.is((await onA('add_model', { model_name: 'mnist-mlp', model_version: '1', model_data_path: 'mnist-mlp/1/model.onnx' })).status, 200);
  t.is((await onA('add_model_links', { app_name: 'digits3', model_names: ['mnist-mlp'] })).status, 200);
  const b = await frontend(nats.url);
  t.teardown(() => b.close());
  await until('three replicas on A and B', async () => (await replicasOf(a)) === 3 && (await replicasOf(b)) === 3);

  const n = 1000;
  const session = await ort.InferenceSession.create(path.join(projectRoot, 'models/mnist-mlp/1/model.onnx'));
  const direct = (await session.run({ input: new ort.Tensor('float32', heldOut.images.slice(0, n * 784), [n, 784]) })).probabilities?.data as Float32Array;
  // Even digits through A, odd through B, all at once.
  const answers = await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 === 0 ? a : b).clipper.predict('digits3', digit(heldOut, i))));
  let equal = 0;
  let defaults = 0;
  for (let i = 0; i < n; i++) {
    const answer = answers[i] as Answer;
    if (answer.isDefault) {
      defaults++;
      continue;
    }
    if (answer.scores?.every((v, k) => v === direct[i * 10 + k]) === true) equal++;
  }
  t.is(defaults, 0);
  t.is(equal, n);
  // Each frontend used all three containers.
  for (const s of [a, b]) {
    const busy = s.clipper.describeModel('mnist-mlp').replicas.filter((r) => r.counters.batches > 0);
    t.is(busy.length, 3, JSON.stringify(s.clipper.describeModel('mnist-mlp').replicas.map((r) => r.counters)));
  }
});
