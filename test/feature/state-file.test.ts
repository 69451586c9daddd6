/**
 * A server without NATS keeps its control plane in a state file: admin changes made through the admin API (an
 * application, models and versions, links, a replica target, a policy) survive SIGTERM and a restart, and the
 * restarted server answers with them. A state file it cannot read stops the start with a message naming it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { Clipper, digit, loadMnist } from '../../src/index.js';
import { serve } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { fixtureModels } from '../helpers/fixtures.js';
import { exitOf, post, startCliServer } from '../helpers/cli-server.js';

test('admin changes survive a restart through the state file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clipper-state-'));
  const file = path.join(dir, 'nested', 'state.json');
  const first = await startCliServer(['--no-bundled', '--state', file]);
  t.teardown(() => first.child.kill('SIGKILL'));
  const admin = (route: string, body: unknown) => post(`${first.adminUrl}/admin/${route}`, body);
  t.is((await admin('add_app', { name: 'kept', input_type: 'float32', input_shape: [784], default_output: -1, latency_slo_ms: 2000 })).status, 200);
  t.is((await admin('add_model', { model_name: 'mnist-linear', model_version: '1', model_data_path: 'mnist-linear/1/model.onnx' })).status, 200);
  t.is((await admin('add_model', { model_name: 'mnist-mlp', model_version: '1', model_data_path: 'mnist-mlp/1/model.onnx' })).status, 200);
  t.is((await admin('add_model_links', { app_name: 'kept', model_names: ['mnist-linear', 'mnist-mlp'] })).status, 200);
  t.is((await admin('remove_model_links', { app_name: 'kept', model_names: ['mnist-linear'] })).status, 200);
  t.is((await admin('set_num_replicas', { model_name: 'mnist-mlp', num_replicas: 2 })).status, 200);
  t.is((await admin('set_policy', { app_name: 'kept', policy: { kind: 'exp3', eta: 0.2 } })).status, 200);
  // A refused change (an unknown model) changes nothing.
  t.is((await admin('add_model_links', { app_name: 'kept', model_names: ['no-such-model'] })).status, 404);
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  t.is(saved.format, 'clipper-ts/control-state');
  t.deepEqual(saved.apps[0].links, ['mnist-mlp']);

  first.child.kill('SIGTERM');
  t.is(await exitOf(first.child), 0);

  const second = await startCliServer(['--no-bundled', '--state', file]);
  t.teardown(() => second.child.kill('SIGKILL'));
  const app = (await post(`${second.adminUrl}/admin/get_application`, { name: 'kept' })).body;
  t.deepEqual(app.linkedModels, ['mnist-mlp']);
  t.is(app.latencySloMs, 2000);
  t.is(app.policy, 'exp3');
  const policy = (await post(`${second.adminUrl}/admin/get_policy_state`, { app_name: 'kept' })).body;
  t.is(policy.state.eta, 0.2);
  const models = (await post(`${second.adminUrl}/admin/get_all_models`, {})).body;
  t.deepEqual([...models].sort(), ['mnist-linear:1', 'mnist-mlp:1']);
  const mlp = (await post(`${second.adminUrl}/admin/get_model`, { model_name: 'mnist-mlp' })).body;
  t.is(mlp.versions[0].readyReplicas, 2);
  const answer = await post(`${second.queryUrl}/kept/predict`, { input: Array.from(digit(loadMnist().test, 0)) });
  t.is(answer.status, 200);
  t.is(answer.body.default, false);
  t.is(answer.body.model, 'mnist-mlp');
  second.child.kill('SIGTERM');
  t.is(await exitOf(second.child), 0);
});

test('a state file that is not a state stops the start, naming the file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clipper-state-'));
  const file = path.join(dir, 'state.json');
  writeFileSync(file, '{"apps": ');
  await t.throwsAsync(startCliServer(['--no-bundled', '--state', file]), { message: new RegExp(`state file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not JSON`) });
});

test('serve() on a system a program set up keeps its models and links; admin changes apply on top', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels });
  await clipper.registerApp({ name: 'sums', inputType: 'float32', inputShape: [4], defaultOutput: -1, latencySloMs: 2000 });
  await clipper.deployModel({ name: 'sum', version: '1', path: 'sum/1/model.mjs' });
  await clipper.linkModel('sums', 'sum');
  const dir = mkdtempSync(path.join(tmpdir(), 'clipper-state-'));
  const server = await serve({ ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--grpc-port', '0', '--log-level', 'silent', '--state', path.join(dir, 's.json')], {}), bundled: false }, { clipper });
  t.teardown(async () => {
    await server.close();
    await clipper.stop();
  });
  t.deepEqual(clipper.getLinkedModels('sums'), ['sum']);
  t.is((await post(`${server.adminUrl}/admin/add_model`, { model_name: 'sum', model_version: '2', model_data_path: 'sum/2/model.mjs' })).status, 200);
  t.deepEqual(clipper.getModels().map((m) => [m.name, m.currentVersion]), [['sum', '2']]);
  t.deepEqual(clipper.getLinkedModels('sums'), ['sum']);
});
