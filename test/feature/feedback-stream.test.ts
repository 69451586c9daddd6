/**
 * Feedback through the CLIPPER_FEEDBACK stream (`serve --nats URL`): feedback sent to frontend A moves frontend
 * B's policy weights identically (get_policy_state equal on both, and different from where they started), for an
 * Exp4 ensemble and for a per-user Exp3 bandit whose draws A made; a frontend started later begins from the
 * policies snapshot in the bucket plus the stream's tail, and holds the same weights.
 */
import test from 'ava';
import { loadMnist, digit } from '../../src/index.js';
import { serve, type RunningServer } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { post } from '../helpers/cli-server.js';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { FEEDBACK_STREAM } from '../../src/http/control/feedback-stream.js';
import { natsRequired, TestNatsServer } from '../helpers/nats-server.js';

const run = natsRequired() ? test.serial : test.serial.skip;
const { test: heldOut } = loadMnist();

const frontend = (url: string): Promise<RunningServer> =>
  serve(resolveServeSettings(['--port', '0', '--admin-port', '0', '--grpc-port', '0', '--log-level', 'silent', '--no-bundled', '--nats', url, '--max-event-loop-delay-ms', '0'], {}));

/**
 * A policy's state, with the log-weights still at their start (0) left out: a frontend lists a model's weight
 * once it has drawn among its models (A answered the queries, B did not), and an unlisted weight is 0.
 */
function weights(state: unknown): unknown {
  if (Array.isArray(state)) return state.map(weights);
  if (typeof state !== 'object' || state === null) return state;
  return Object.fromEntries(
    Object.entries(state).map(([key, value]) =>
      key === 'logWeights' ? [key, Object.fromEntries(Object.entries(value as Record<string, number>).filter(([, w]) => w !== 0).sort())] : [key, weights(value)],
    ),
  );
}

const policyState = async (s: RunningServer, app: string): Promise<unknown> => weights((await post(`${s.adminUrl}/admin/get_policy_state`, { app_name: app })).body.state);

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

run('feedback sent to A moves B\'s weights identically; a later frontend starts from the snapshot plus the tail', async (t) => {
  const nats = await TestNatsServer.start();
  t.teardown(() => nats.close());
  const a = await frontend(nats.url);
  const b = await frontend(nats.url);
  t.teardown(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  const onA = (route: string, body: unknown) => post(`${a.adminUrl}/admin/${route}`, body);
  t.is((await onA('add_model', { model_name: 'mnist-linear', model_version: '1', model_data_path: 'mnist-linear/1/model.onnx' })).status, 200);
  t.is((await onA('add_model', { model_name: 'mnist-mlp', model_version: '1', model_data_path: 'mnist-mlp/1/model.onnx' })).status, 200);
  for (const [name, policy] of [['ensemble', { kind: 'exp4' }], ['bandit', { kind: 'exp3', fullInformation: false, perUser: {} }]] as const) {
    t.is((await onA('add_app', { name, input_type: 'float32', input_shape: [784], default_output: -1, latency_slo_ms: 2000 })).status, 200);
    t.is((await onA('add_model_links', { app_name: name, model_names: ['mnist-linear', 'mnist-mlp'] })).status, 200);
    t.is((await onA('set_policy', { app_name: name, policy })).status, 200);
  }
  await until('B has both applications with their policies', async () => JSON.stringify(await policyState(b, 'bandit')) === JSON.stringify(await policyState(a, 'bandit')) && JSON.stringify(await policyState(b, 'ensemble')) === JSON.stringify(await policyState(a, 'ensemble')));
  const startEnsemble = JSON.stringify(await policyState(b, 'ensemble'));
  const startBandit = JSON.stringify(await policyState(b, 'bandit'));

  // 30 digits the two models label differently, labelled as mnist-mlp does twice in three times and as
  // mnist-linear does otherwise, so that their losses differ: feedback to A only. The bandit's queries are
  // answered by A first (A holds the draws), for two users.
  const argmax = (scores: Float32Array): number => scores.indexOf(Math.max(...scores));
  const rows = Array.from({ length: 600 }, (_, i) => Array.from(digit(heldOut, i)));
  const [linear, mlp] = await Promise.all(['mnist-linear', 'mnist-mlp'].map((m) => a.clipper.infer(m, rows, { timeoutMs: 20_000 })));
  const disputed = rows.flatMap((input, i) => {
    const [l, m] = [argmax(linear?.[i] as Float32Array), argmax(mlp?.[i] as Float32Array)];
    return l === m ? [] : [{ input, byLinear: l, byMlp: m }];
  }).slice(0, 30);
  t.is(disputed.length, 30);
  for (const [i, { input, byLinear, byMlp }] of disputed.entries()) {
    const label = i % 3 === 0 ? byLinear : byMlp;
    const uid = i % 2 === 0 ? 'ann' : 'bob';
    t.is((await post(`${a.queryUrl}/bandit/predict`, { input, uid })).status, 200);
    const fb = await post(`${a.queryUrl}/bandit/update`, { input, label, uid });
    t.is(fb.status, 200, JSON.stringify(fb.body));
    t.is((await post(`${a.queryUrl}/ensemble/update`, { input, label })).status, 200);
  }
  const onAEnsemble = JSON.stringify(await policyState(a, 'ensemble'));
  const onABandit = JSON.stringify(await policyState(a, 'bandit'));
  t.not(onAEnsemble, startEnsemble, 'the ensemble learned');
  t.not(onABandit, startBandit, 'the bandit learned');
  await until('B holds the same weights as A', async () => JSON.stringify(await policyState(b, 'ensemble')) === onAEnsemble && JSON.stringify(await policyState(b, 'bandit')) === onABandit);
  t.deepEqual(await policyState(b, 'ensemble'), JSON.parse(onAEnsemble));
  t.deepEqual(await policyState(b, 'bandit'), JSON.parse(onABandit));

  const nonZero = (state: string): number => (state.match(/"logWeights":\{[^}]*-?\d/g) ?? []).length;
  t.true(nonZero(onAEnsemble) > 0 && nonZero(onABandit) > 0, `${onAEnsemble}\n${onABandit}`);

  // 60 events so far: the stream is cut to its tail after the last snapshot (50), so a frontend started now can
  // only reach A's weights from the snapshot plus that tail.
  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  t.is((await jsm.streams.info(FEEDBACK_STREAM)).state.last_seq, 60);
  await jsm.streams.purge(FEEDBACK_STREAM, { seq: 51 });
  t.is((await jsm.streams.info(FEEDBACK_STREAM)).state.first_seq, 51);
  await nc.close();
  const c = await frontend(nats.url);
  t.teardown(() => c.close());
  await until('C holds the same weights', async () => JSON.stringify(await policyState(c, 'ensemble')) === onAEnsemble && JSON.stringify(await policyState(c, 'bandit')) === onABandit);
  t.pass();
});
