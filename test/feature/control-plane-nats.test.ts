/**
 * Frontends that agree (`serve --nats URL`): two servers share a real nats-server of the test's own. An admin
 * change on A is stored in the clipper-config bucket and applied on B within a second or so; two conflicting
 * admin calls racing on A and B end with one 200 and one 409 STATE_CONFLICT, and both frontends then hold the
 * winner's state. A third frontend started later begins from the stored state.
 */
import test from 'ava';
import { loadMnist, digit } from '../../src/index.js';
import { serve, type RunningServer } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { post } from '../helpers/cli-server.js';
import { natsRequired, TestNatsServer } from '../helpers/nats-server.js';

const run = natsRequired() ? test.serial : test.serial.skip;
const { test: heldOut } = loadMnist();

async function frontend(url: string): Promise<RunningServer> {
  return serve(resolveServeSettings(['--port', '0', '--admin-port', '0', '--grpc-port', '0', '--log-level', 'silent', '--no-bundled', '--nats', url, '--max-event-loop-delay-ms', '0'], {}));
}

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, ms = 10_000): Promise<{ value: T; tookMs: number }> {
  const start = Date.now();
  for (;;) {
    const value = await read();
    if (done(value)) return { value, tookMs: Date.now() - start };
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms; last ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const models = async (s: RunningServer): Promise<string[]> => ((await post(`${s.adminUrl}/admin/get_all_models`, {})).body as string[]).sort();

run('an admin change on frontend A is applied on frontend B; a conflicting concurrent write gets 409 on one', async (t) => {
  const nats = await TestNatsServer.start();
  t.teardown(() => nats.close());
  const a = await frontend(nats.url);
  const b = await frontend(nats.url);
  t.teardown(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  const onA = (route: string, body: unknown) => post(`${a.adminUrl}/admin/${route}`, body);
  t.is((await onA('add_app', { name: 'shared', input_type: 'float32', input_shape: [784], default_output: -1, latency_slo_ms: 2000 })).status, 200);
  t.is((await onA('add_model', { model_name: 'mnist-linear', model_version: '1', model_data_path: 'mnist-linear/1/model.onnx' })).status, 200);
  const linked = await onA('add_model_links', { app_name: 'shared', model_names: ['mnist-linear'] });
  t.is(linked.status, 200);
  const changedAt = Date.now();
  const seen = await until(
    'B links mnist-linear to shared',
    async () => (await post(`${b.adminUrl}/admin/get_linked_models`, { app_name: 'shared' })).body,
    (v) => Array.isArray(v) && v.length === 1 && v[0] === 'mnist-linear',
  );
  t.log(`B applied A's link ${Date.now() - changedAt} ms after A answered`);
  t.true(Date.now() - changedAt < 5_000);
  // B answers with it.
  const answer = await post(`${b.queryUrl}/shared/predict`, { input: Array.from(digit(heldOut, 3)) });
  t.is(answer.status, 200);
  t.is(answer.body.model, 'mnist-linear');
  t.false(answer.body.default);
  t.deepEqual(seen.value, ['mnist-linear']);
  // A policy change on B reaches A.
  t.is((await post(`${b.adminUrl}/admin/set_policy`, { app_name: 'shared', policy: { kind: 'exp3', eta: 0.3 } })).status, 200);
  await until('A runs exp3', async () => (await post(`${a.adminUrl}/admin/get_policy_state`, { app_name: 'shared' })).body, (v) => v?.state?.kind === 'exp3' && v.state.eta === 0.3);

  // Two admin calls racing from the same revision: each deploys (hundreds of ms), then compares and sets.
  const [onAResult, onBResult] = await Promise.all([
    onA('add_model', { model_name: 'mnist-mlp', model_version: '1', model_data_path: 'mnist-mlp/1/model.onnx' }),
    post(`${b.adminUrl}/admin/add_model`, { model_name: 'mnist-cnn', model_version: '1', model_data_path: 'mnist-cnn/1/model.onnx' }),
  ]);
  t.deepEqual([onAResult.status, onBResult.status].sort(), [200, 409]);
  const lost = onAResult.status === 409 ? onAResult : onBResult;
  t.is(lost.body.code, 'STATE_CONFLICT');
  const winner = onAResult.status === 200 ? 'mnist-mlp:1' : 'mnist-cnn:1';
  // Both frontends end with the winner's state (the loser's local deployment undone).
  for (const s of [a, b]) await until('the winner state everywhere', () => models(s), (v) => JSON.stringify(v) === JSON.stringify(['mnist-linear:1', winner].sort()));
  t.deepEqual(await models(a), await models(b));

  // A frontend started later begins from the stored state.
  const c = await frontend(nats.url);
  t.teardown(() => c.close());
  t.deepEqual(await models(c), await models(a));
  t.deepEqual((await post(`${c.adminUrl}/admin/get_linked_models`, { app_name: 'shared' })).body, ['mnist-linear']);
  t.is((await post(`${c.adminUrl}/admin/get_application`, { name: 'shared' })).body.policy, 'exp3');
});

run('nats-server stopped for 3 s and started again: the state is intact, admin calls work again within 5 s and reach the other frontend', async (t) => {
  const nats = await TestNatsServer.start();
  t.teardown(() => nats.close());
  const a = await frontend(nats.url);
  const b = await frontend(nats.url);
  t.teardown(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  const onA = (route: string, body: unknown) => post(`${a.adminUrl}/admin/${route}`, body);
  t.is((await onA('add_app', { name: 'kept', input_type: 'float32', input_shape: [784], default_output: -1, latency_slo_ms: 2000 })).status, 200);
  t.is((await onA('add_model', { model_name: 'mnist-linear', model_version: '1', model_data_path: 'mnist-linear/1/model.onnx' })).status, 200);
  t.is((await onA('add_model_links', { app_name: 'kept', model_names: ['mnist-linear'] })).status, 200);
  await until('B links it', async () => (await post(`${b.adminUrl}/admin/get_linked_models`, { app_name: 'kept' })).body, (v) => Array.isArray(v) && v[0] === 'mnist-linear');

  await nats.stop();
  await new Promise((r) => setTimeout(r, 3_000));
  // Queries do not need NATS (the models run here): B still answers while it is down.
  const during = await post(`${b.queryUrl}/kept/predict`, { input: Array.from(digit(heldOut, 1)) });
  t.is(during.status, 200);
  t.false(during.body.default);
  await nats.resume();
  const back = Date.now();
  // The first admin call that succeeds after the restart: within 5 s.
  const linked = await until('an admin call succeeds', () => onA('set_policy', { app_name: 'kept', policy: { kind: 'exp3', eta: 0.4 } }), (r) => r.status === 200, 5_000);
  t.log(`admin calls work again ${Date.now() - back} ms after nats-server came back`);
  t.is(linked.value.status, 200);
  await until('B applies the change made after the restart', async () => (await post(`${b.adminUrl}/admin/get_policy_state`, { app_name: 'kept' })).body, (v) => v?.state?.eta === 0.4, 5_000);
  // The state from before the outage is intact on both.
  for (const s of [a, b]) {
    t.deepEqual(await models(s), ['mnist-linear:1']);
    t.deepEqual((await post(`${s.adminUrl}/admin/get_linked_models`, { app_name: 'kept' })).body, ['mnist-linear']);
  }
});
