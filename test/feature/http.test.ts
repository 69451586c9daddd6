import { createServer, type AddressInfo, type Server } from 'node:net';
import test from 'ava';
import fc from 'fast-check';
import { digit, loadMnist } from '../../src/data/mnist-data.js';
import { serve, type RunningServer } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import type { Answer } from '../../src/index.js';
import { LoopDelay, lateAnswers, slowest } from '../helpers/deadline.js';
import { fixtureModels } from '../helpers/fixtures.js';

// A real server on ephemeral ports and a real HTTP client (Node's fetch), on the bundled ONNX models.
// Serial: several tests change the server's models and links.

const { test: heldOut } = loadMnist();
let server: RunningServer;

test.before(async () => {
  // A generous SLO: the suite's other files load the same two cores.
  server = await serve(resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent', '--admin-token', 'secret', '--slo-ms', '2000', '--max-event-loop-delay-ms', '0']));
});
test.after.always(async () => {
  await server?.close();
});

const admin = { authorization: 'Bearer secret', 'content-type': 'application/json' };

async function call(base: 'query' | 'admin', path: string, init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const url = (base === 'query' ? server.queryUrl : server.adminUrl) + path;
  const headers = init.headers ?? (base === 'admin' ? admin : { 'content-type': 'application/json' });
  const response = await fetch(url, {
    method: init.method ?? (init.body !== undefined || init.raw !== undefined ? 'POST' : 'GET'),
    headers,
    ...(init.raw !== undefined ? { body: init.raw } : init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await response.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status, json, headers: response.headers };
}

const row = (i: number): number[] => Array.from(digit(heldOut, i));

test.serial('health, server and model metadata', async (t) => {
  t.deepEqual((await call('query', '/v2/health/live')).json, { live: true });
  const ready = await call('query', '/v2/health/ready');
  t.is(ready.status, 200);
  t.deepEqual(ready.json, { ready: true });
  const meta = await call('query', '/v2');
  t.is(meta.json.name, 'clipper-ts');
  t.deepEqual(meta.json.extensions, ['model_repository', 'binary_tensor_data']);
  const model = await call('query', '/v2/models/mnist-mlp');
  t.deepEqual(model.json.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 784] }]);
  t.deepEqual(model.json.outputs, [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 10] }]);
  t.deepEqual((await call('query', '/v2/models/mnist-mlp/versions/1')).json.versions, ['1']);
  t.is((await call('query', '/v2/models/mnist-mlp/ready')).status, 200);
  t.is((await call('query', '/v2/models/mnist-mlp/versions/1/ready')).status, 200);
  const unknown = await call('query', '/v2/models/nope');
  t.is(unknown.status, 404);
  t.is(unknown.json.code, 'UNKNOWN_MODEL');
  t.is((await call('query', '/v2/models/mnist-mlp/versions/7')).status, 404);
  t.is((await call('query', '/no/such/route')).status, 404);
});

test.serial('Clipper REST predict: real digits, one and a batch', async (t) => {
  const one = await call('query', '/digits/predict', { body: { input: row(0) } });
  t.is(one.status, 200);
  t.is(one.json.output, heldOut.labels[0]);
  t.false(one.json.default);
  t.is(typeof one.json.query_id, 'number');
  const batch = await call('query', '/digits/predict', { body: { input_batch: [row(1), row(2), row(3)] } });
  t.is(batch.status, 200);
  t.deepEqual(
    batch.json.batch_predictions.map((p: { output: number }) => p.output),
    [heldOut.labels[1], heldOut.labels[2], heldOut.labels[3]],
  );
});

test.serial('OIP infer: FP32 flat and nested, a batch dimension, INT64, and the id echoed', async (t) => {
  const flat = await call('query', '/v2/models/mnist-cnn/infer', { body: { id: 'q1', inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: row(4) }] } });
  t.is(flat.status, 200);
  t.is(flat.json.id, 'q1');
  t.is(flat.json.model_name, 'mnist-cnn');
  t.is(flat.json.model_version, '1');
  const out = flat.json.outputs[0];
  t.is(out.name, 'probabilities');
  t.deepEqual(out.shape, [1, 10]);
  t.is(out.data.indexOf(Math.max(...out.data)), heldOut.labels[4]);
  const nested = await call('query', '/v2/models/mnist-cnn/versions/1/infer', { body: { inputs: [{ name: 'input', shape: [3, 784], datatype: 'FP32', data: [row(5), row(6), row(7)] }] } });
  t.deepEqual(nested.json.outputs[0].shape, [3, 10]);
  const labels = [0, 1, 2].map((r) => {
    const scores = nested.json.outputs[0].data.slice(r * 10, r * 10 + 10) as number[];
    return scores.indexOf(Math.max(...scores));
  });
  t.deepEqual(labels, [heldOut.labels[5], heldOut.labels[6], heldOut.labels[7]]);
  const ints = await call('query', '/v2/models/mnist-linear/infer', { body: { inputs: [{ name: 'input', shape: [784], datatype: 'INT64', data: row(8).map((v) => Math.round(v)) }] } });
  t.is(ints.status, 200);
  t.deepEqual(ints.json.outputs[0].shape, [1, 10]);
});

test.serial('every bad request gets a 4xx with a JSON error naming the problem', async (t) => {
  const cases: [string, Parameters<typeof call>[1], Parameters<typeof call>[2], number, RegExp][] = [
    ['wrong length', '/digits/predict', { body: { input: [1, 2, 3] } }, 400, /has 3 values; application digits expects 784/],
    ['string values', '/digits/predict', { body: { input: Array(784).fill('x') } }, 400, /input\[0\] is a string/],
    ['missing input', '/digits/predict', { body: { inputs: [] } }, 400, /invalid request/],
    ['input not an array', '/digits/predict', { body: { input: 5 } }, 400, /invalid request.*input must be array/],
    ['malformed JSON', '/digits/predict', { raw: '{"input": [1,2' }, 400, /JSON/],
    ['NaN literal', '/digits/predict', { raw: '{"input": [NaN]}' }, 400, /JSON/],
    ['wrong content type', '/digits/predict', { raw: 'input=1', headers: { 'content-type': 'text/plain' } }, 415, /Content-Type: application\/json/],
    ['unknown application', '/nope/predict', { body: { input: row(0) } }, 404, /no application named "nope"/],
    ['OIP wrong input name', '/v2/models/mnist-mlp/infer', { body: { inputs: [{ name: 'x', shape: [784], datatype: 'FP32', data: row(0) }] } }, 400, /unexpected inference input 'x'/],
    ['OIP shape and data disagree', '/v2/models/mnist-mlp/infer', { body: { inputs: [{ name: 'input', shape: [2, 784], datatype: 'FP32', data: row(0) }] } }, 400, /1568 elements\) but 784 data values/],
    ['OIP wrong row size', '/v2/models/mnist-mlp/infer', { body: { inputs: [{ name: 'input', shape: [783], datatype: 'FP32', data: row(0).slice(1) }] } }, 400, /expects \[N, 784\]/],
    ['OIP BYTES', '/v2/models/mnist-mlp/infer', { body: { inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: ['a'] }] } }, 400, /datatype "BYTES"/],
    ['OIP INT64 with fractions', '/v2/models/mnist-mlp/infer', { body: { inputs: [{ name: 'input', shape: [784], datatype: 'INT64', data: row(0) }] } }, 400, /must be integers/],
    ['OIP unknown output', '/v2/models/mnist-mlp/infer', { body: { inputs: [{ name: 'input', shape: [784], datatype: 'FP32', data: row(0) }], outputs: [{ name: 'logits' }] } }, 400, /unknown output 'logits'/],
    ['OIP unknown model', '/v2/models/nope/infer', { body: { inputs: [{ name: 'input', shape: [784], datatype: 'FP32', data: row(0) }] } }, 404, /no model named "nope"/],
    ['OIP unknown version', '/v2/models/mnist-mlp/versions/9/infer', { body: { inputs: [{ name: 'input', shape: [784], datatype: 'FP32', data: row(0) }] } }, 404, /no version "9"/],
    ['feedback with a label out of range', '/digits/update', { body: { input: row(0), label: 12 } }, 400, /label 12 is not a class/],
  ];
  for (const [name, path, init, status, message] of cases) {
    const r = await call('query', path, init);
    t.is(r.status, status, name);
    t.regex(String(r.json.error), message, name);
    t.is(typeof r.json.code, 'string', name);
  }
  const huge = await call('query', '/digits/predict', { raw: JSON.stringify({ input: Array(3_000_000).fill(0.5) }) });
  t.is(huge.status, 413, 'a body over the limit');
  t.regex(huge.json.error, /Request body is too large/);
});

test.serial('feedback (Clipper update) finds each linked model\'s prediction and reports its loss', async (t) => {
  await call('query', '/digits/predict', { body: { input: row(20) } });
  const r = await call('query', '/digits/update', { body: { input: row(20), label: heldOut.labels[20] } });
  t.is(r.status, 200);
  t.true(r.json.applied);
  t.deepEqual(Object.keys(r.json.losses).sort(), ['mnist-cnn', 'mnist-linear', 'mnist-mlp']);
  t.is(r.json.losses['mnist-cnn'], 0);
});

test.serial('admin: add an app and a model version, link, roll forward and back; the token is required', async (t) => {
  const denied = await call('admin', '/admin/get_all_applications', { headers: {} });
  t.is(denied.status, 401);
  t.is(denied.json.code, 'UNAUTHORIZED');
  const added = await call('admin', '/admin/add_app', { body: { name: 'digits2', input_type: 'floats', input_shape: [784], default_output: -1, latency_slo_micros: 100_000 } });
  t.is(added.status, 200);
  t.is(added.json.app.latencySloMs, 100);
  t.is((await call('admin', '/admin/add_app', { body: { name: 'digits2', input_type: 'floats', input_shape: [784], default_output: -1 } })).status, 409);
  t.is((await call('admin', '/admin/add_model_links', { body: { app_name: 'digits2', model_names: ['mnist-mlp'] } })).status, 200);
  const good = await call('query', '/digits2/predict', { body: { input: row(30) } });
  t.is(good.json.model_version, '1');
  const broken = await call('admin', '/admin/add_model', { body: { model_name: 'mnist-mlp', model_version: '2-broken', model_data_path: 'mnist-mlp/2-broken/model.onnx' } });
  t.is(broken.status, 200, JSON.stringify(broken.json));
  const after = await call('query', '/digits2/predict', { body: { input: row(30) } });
  t.is(after.json.model_version, '2-broken', 'the new version takes traffic at once');
  t.is((await call('admin', '/admin/set_model_version', { body: { model_name: 'mnist-mlp', model_version: '1' } })).status, 200);
  const back = await call('query', '/digits2/predict', { body: { input: row(30) } });
  t.is(back.json.model_version, '1');
  t.is(back.json.output, good.json.output);
  t.deepEqual((await call('admin', '/admin/get_linked_models?app_name=digits2')).json, ['mnist-mlp']);
  t.true((await call('admin', '/admin/get_all_models')).json.includes('mnist-mlp:2-broken'));
  const outside = await call('admin', '/admin/add_model', { body: { model_name: 'evil', model_version: '1', model_data_path: '../package.json' } });
  t.is(outside.status, 403);
  t.is((await call('admin', '/admin/set_model_version', { body: { model_name: 'mnist-mlp', model_version: 'zzz' } })).status, 404);
  t.is((await call('admin', '/admin/add_app', { body: { name: 'x', input_type: 'strings', input_shape: [1], default_output: 0 } })).status, 400);
});

test.serial('admin: metadata, replicas, policy and its state, and unlinking, each route end to end', async (t) => {
  // get_application and get_model, by POST body and by GET query string; unknown names are 404s.
  const app = await call('admin', '/admin/get_application', { body: { name: 'digits2' } });
  t.is(app.status, 200);
  t.like(app.json, { name: 'digits2', latencySloMs: 100, linkedModels: ['mnist-mlp'], policy: 'static' });
  t.is((await call('admin', '/admin/get_application?name=digits2')).json.name, 'digits2');
  t.is((await call('admin', '/admin/get_application', { body: { name: 'nope' } })).status, 404);
  const model = await call('admin', '/admin/get_model', { body: { model_name: 'mnist-mlp' } });
  t.like(model.json, { name: 'mnist-mlp', currentVersion: '1' });
  t.deepEqual(model.json.versions.map((v: { version: string }) => v.version).sort(), ['1', '2-broken']);
  const version = await call('admin', '/admin/get_model?model_name=mnist-mlp&model_version=2-broken');
  t.like(version.json, { name: 'mnist-mlp', version: '2-broken', current: false });
  t.is((await call('admin', '/admin/get_model', { body: { model_name: 'nope' } })).json.code, 'UNKNOWN_MODEL');
  t.is((await call('admin', '/admin/get_model', { body: { model_name: 'mnist-mlp', model_version: '9' } })).json.code, 'UNKNOWN_VERSION');

  // set_num_replicas scales the current version up and back down.
  const replicas = async () => (await call('admin', '/admin/get_model', { body: { model_name: 'mnist-linear', model_version: '1' } })).json.replicas.length;
  const scaled = await call('admin', '/admin/set_num_replicas', { body: { model_name: 'mnist-linear', num_replicas: 2 } });
  t.is(scaled.status, 200, JSON.stringify(scaled.json));
  t.is(await replicas(), 2);
  t.is((await call('admin', '/admin/set_num_replicas', { body: { model_name: 'mnist-linear', num_replicas: 1 } })).status, 200);
  t.is(await replicas(), 1);
  t.is((await call('admin', '/admin/set_num_replicas', { body: { model_name: 'nope', num_replicas: 1 } })).status, 404);

  // set_policy, then feedback moves the learned state; restore_policy_state brings the saved one back.
  const set = await call('admin', '/admin/set_policy', { body: { app_name: 'digits2', policy: { kind: 'exp3', eta: 0.5 } } });
  t.is(set.status, 200, JSON.stringify(set.json));
  t.is(set.json.policy, 'exp3');
  const saved = (await call('admin', '/admin/get_policy_state?app_name=digits2')).json;
  t.like(saved, { app_name: 'digits2', policy: 'exp3' });
  t.is(saved.state.kind, 'exp3');
  t.is((await call('query', '/digits2/update', { body: { input: row(60), label: (heldOut.labels[60] as number + 1) % 10 } })).status, 200);
  const moved = (await call('admin', '/admin/get_policy_state', { body: { app_name: 'digits2' } })).json.state;
  t.notDeepEqual(moved, saved.state, 'a wrong answer moved the weights');
  const restored = await call('admin', '/admin/restore_policy_state', { body: { app_name: 'digits2', state: saved.state } });
  t.is(restored.status, 200, JSON.stringify(restored.json));
  t.deepEqual(restored.json.state, saved.state);
  t.deepEqual((await call('admin', '/admin/get_policy_state?app_name=digits2')).json.state, saved.state);
  const wrongKind = await call('admin', '/admin/restore_policy_state', { body: { app_name: 'digits2', state: { kind: 'exp4' } } });
  t.is(wrongKind.status, 400, JSON.stringify(wrongKind.json));
  t.is((await call('admin', '/admin/set_policy', { body: { app_name: 'digits2', policy: { kind: 'magic' } } })).status, 400);

  // remove_model_links (the API's unlinkModel): queries stop going to the unlinked model at once.
  t.deepEqual((await call('admin', '/admin/add_model_links', { body: { app_name: 'digits2', model_names: ['mnist-linear'] } })).json.linked_models, ['mnist-mlp', 'mnist-linear']);
  const removed = await call('admin', '/admin/remove_model_links', { body: { app_name: 'digits2', model_names: ['mnist-mlp'] } });
  t.is(removed.status, 200);
  t.deepEqual(removed.json.linked_models, ['mnist-linear']);
  for (let i = 0; i < 5; i++) t.is((await call('query', '/digits2/predict', { body: { input: row(70 + i) } })).json.model, 'mnist-linear');
  t.deepEqual((await call('admin', '/admin/remove_model_links', { body: { app_name: 'digits2', model_names: ['mnist-linear'] } })).json.linked_models, []);
  const none = await call('query', '/digits2/predict', { body: { input: row(80) } });
  t.is(none.status, 200);
  t.true(none.json.default);
  t.regex(none.json.default_explanation, /has no linked model/);
  t.deepEqual((await call('admin', '/admin/get_application?name=digits2')).json.linkedModels, []);
});

test.serial('OIP repository extension: index, load, unload', async (t) => {
  const index = await call('admin', '/v2/repository/index', { body: {} });
  t.is(index.status, 200);
  const cnn = index.json.find((e: { name: string; version: string }) => e.name === 'mnist-cnn' && e.version === '1');
  t.is(cnn.state, 'READY');
  t.truthy(index.json.find((e: { name: string; version: string }) => e.name === 'mnist-mlp' && e.version === '2-broken'));
  t.is((await call('admin', '/v2/repository/models/nope/load', { body: {} })).status, 404);
  const unload = await call('admin', '/v2/repository/models/mnist-linear/unload', { body: {} });
  t.is(unload.status, 200);
  t.is((await call('query', '/v2/models/mnist-linear')).status, 404);
  const load = await call('admin', '/v2/repository/models/mnist-linear/load', { body: {} });
  t.deepEqual(load.json, { name: 'mnist-linear', version: '1', state: 'READY' });
  t.is((await call('query', '/v2/models/mnist-linear/ready')).status, 200);
});

test.serial('metrics in Prometheus text', async (t) => {
  await call('query', '/digits/predict', { body: { input: row(40) } });
  const r = await call('query', '/metrics');
  t.is(r.status, 200);
  t.regex(r.headers.get('content-type') ?? '', /text\/plain/);
  for (const name of ['clipper_requests_total', 'clipper_request_duration_seconds_bucket', 'clipper_batch_size_bucket', 'clipper_replica_batch_limit', 'clipper_cache_hits_total', 'clipper_default_answers_total', 'clipper_compute_duration_seconds_bucket']) {
    t.regex(r.json, new RegExp(`^${name}`, 'm'), name);
  }
  t.regex(r.json, /clipper_requests_total\{app="digits",model="ensemble",status="success"\} \d+/);
});

test.serial('thousands of malformed requests get only 4xx answers, and the server stays up', async (t) => {
  const paths = ['/digits/predict', '/digits/update', '/v2/models/mnist-mlp/infer', '/nope/predict', '/v2/models/x/infer'];
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...paths),
      fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string(), fc.json().map((s) => s.slice(0, Math.max(1, s.length - 1)))),
      async (path, body) => {
        const r = await call('query', path, { raw: body });
        return r.status >= 400 && r.status < 500 && typeof r.json.error === 'string';
      },
    ),
    { numRuns: 2000, seed: 2017 },
  );
  const ok = await call('query', '/digits/predict', { body: { input: row(50) } });
  t.is(ok.status, 200);
  t.is(ok.json.output, heldOut.labels[50]);
});

test.serial('above capacity, refusals are fast 503s with Retry-After and admitted queries meet the SLO', async (t) => {
  const slow = await serve({ ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent', '--models', fixtureModels, '--max-event-loop-delay-ms', '0']), bundled: false });
  t.teardown(() => slow.close());
  const slo = 400;
  await slow.clipper.registerApp({ name: 'slow', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: slo });
  await slow.clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1, batching: { mode: 'none' } });
  await slow.clipper.linkModel('slow', 'slow');
  // The server's own timing of each answer (the router's latencyMs), as the HTTP handler received it.
  const served: Answer[] = [];
  const predict = slow.clipper.predict.bind(slow.clipper);
  slow.clipper.predict = async (...args) => {
    const answer = await predict(...args);
    served.push(answer);
    return answer;
  };
  const post = async (input: number[]) => {
    const started = performance.now();
    const r = await fetch(`${slow.queryUrl}/slow/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) });
    const json = (await r.json()) as { output?: number; default?: boolean; error?: string };
    return { status: r.status, json, ms: performance.now() - started, retryAfter: r.headers.get('retry-after') };
  };
  // Warm the latency estimate: each batch takes 25 ms and holds one query, so about 16 fit in the SLO.
  const loop = new LoopDelay();
  for (let i = 0; i < 3; i++) await post([25, i]);
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => post([25, i])));
  const loopDelayMs = loop.stop();
  const refused = results.filter((r) => r.status === 503);
  const answered = results.filter((r) => r.status === 200 && r.json.default === false);
  t.true(refused.length >= 25, `${refused.length} refused`);
  t.true(answered.length >= 5, `${answered.length} answered by the model`);
  t.is(refused.length + results.filter((r) => r.status === 200).length, 60, 'every request got exactly one answer');
  for (const r of refused) {
    t.is(r.retryAfter, '1');
    t.regex(r.json.error ?? '', /would answer in/);
  }
  const refusalTimes = refused.map((r) => r.ms).sort((a, b) => a - b);
  const median = refusalTimes[Math.floor(refusalTimes.length / 2)] as number;
  t.true(median < slo, `median refusal took ${median.toFixed(0)} ms; the SLO is ${slo} ms`);
  // Admitted queries met the SLO, server-side: every 200, a model's answer or the default one, left the router
  // inside it. Client-side times add this loaded machine's HTTP overhead, so they get only a liveness bound.
  const admitted = results.filter((r) => r.status === 200);
  t.is(served.length, admitted.length + 3, 'the server answered each admitted query (and the 3 warm-ups) once');
  t.log(slowest(served, loopDelayMs));
  t.deepEqual(lateAnswers(served, slo, loopDelayMs), [], `every admitted query answered within the ${slo} ms SLO`);
  // Admission works from measured batch times; when other test files load the same cores mid-burst, a batch
  // can run slower than measured, and a query admitted on the estimate gets the default answer (still inside the
  // SLO, checked above). Most must get the model's.
  const defaults = admitted.filter((r) => r.json.default === true).length;
  t.true(defaults <= admitted.length * 0.2, `${defaults} of ${admitted.length} admitted queries got the default answer`);
  t.true(admitted.every((r) => r.ms < 3 * slo), `slowest admitted answer ${Math.max(...admitted.map((r) => r.ms)).toFixed(0)} ms`);
});

test.serial('a lagging event loop alone refuses nothing: with the queues not behind (a GC pause at light load), queries are read and answered', async (t) => {
  // Issue 15: lag refusals used to come in bursts of hundreds at 15% load, one per GC pause. Refusing on lag
  // needs the replicas' queues behind too (src/http/lag-guard.ts, unit-tested with backlogged replicas).
  const lagging = await serve({ ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent', '--max-event-loop-delay-ms', '25']), bundled: false });
  t.teardown(() => lagging.close());
  // This test runs in the server's own process: hold its event loop for 400 ms, as a long GC pause would.
  const until = performance.now() + 400;
  while (performance.now() < until);
  await new Promise((r) => setTimeout(r, 20));
  const read = await fetch(`${lagging.queryUrl}/nope/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input": [1]}' });
  t.is(read.status, 404, 'the query was read and routed (an unknown app), not refused');
  t.is((await fetch(`${lagging.queryUrl}/v2/health/live`)).status, 200, 'liveness is never shed');
  const metrics = await (await fetch(`${lagging.queryUrl}/metrics`)).text();
  t.regex(metrics, /clipper_refused_total\{model="",version="",replica="",reason="event-loop-lag"\} 0\n/, 'no lag refusal counted');
});

test.serial('a lagging event loop with the queues behind refuses with 503, counted in clipper_refused_total{reason="event-loop-lag"}', async (t) => {
  const lagging = await serve({ ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent', '--max-event-loop-delay-ms', '25', '--models', fixtureModels]), bundled: false });
  t.teardown(() => lagging.close());
  await lagging.clipper.registerApp({ name: 'slow', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 10_000, cacheMaxBytes: 0 });
  // The queue is full too (one runs, three wait), so the predict route's own refusal before the body is read
  // would refuse the query as well, had the lag guard's refusal let the request go on.
  await lagging.clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1, batching: { mode: 'none', maxQueueSize: 3 } });
  await lagging.clipper.linkModel('slow', 'slow');
  const post = (input: number[]) => fetch(`${lagging.queryUrl}/slow/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) });
  // Four queries of 1 s each on one replica taking one at a time: more than two batches held, the queues are behind.
  const backlog = Array.from({ length: 4 }, (_, i) => post([1000, i]));
  while ((lagging.clipper.getModels()[0]?.versions[0]?.replicas[0]?.outstanding ?? 0) < 4) await new Promise((r) => setTimeout(r, 5));
  // Keep this process's event loop lagging, as back-to-back GC pauses would: 40 ms blocks with a 1 ms gap between
  // them, so every 100 ms sample of the guard reads a mean delay over its 25 ms limit, however late the query's
  // request gets through on a loaded machine. The query is shed before its body is read.
  let keepLagging = true;
  const lag = (): void => {
    if (!keepLagging) return;
    const until = performance.now() + 40;
    while (performance.now() < until);
    setTimeout(lag, 1);
  };
  setTimeout(lag, 1);
  await new Promise((r) => setTimeout(r, 250));
  const shed = await post([1, 9]);
  keepLagging = false;
  t.is(shed.status, 503, 'shed while the loop lagged and the queue was behind');
  t.is(shed.headers.get('retry-after'), '1');
  t.regex(((await shed.json()) as { error?: string }).error ?? '', /the event loop is .* behind/);
  const metrics = await (await fetch(`${lagging.queryUrl}/metrics`)).text();
  const counted = Number(/clipper_refused_total\{model="",version="",replica="",reason="event-loop-lag"\} (\d+)/.exec(metrics)?.[1]);
  t.is(counted, 1, "the one shed query is counted, by its reason");
  // Shed means not also parsed and queued behind the 503 (the server's async onSend hook leaves the reply unsent
  // when the guard returns, and the request went on to its handler).
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(
    { queries: lagging.clipper.getApp('slow').counters.queries, refused: lagging.clipper.getApp('slow').counters.refused },
    { queries: 4, refused: 0 },
    'the shed query never reached the application',
  );
  await Promise.allSettled(backlog);
});

test.serial('a taken admin port fails serve() and leaves no port behind: the query port it had opened is free again', async (t) => {
  const listenOn = async (port: number): Promise<Server> => {
    const s = createServer();
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '0.0.0.0', resolve);
    });
    return s;
  };
  const taken = await listenOn(0);
  t.teardown(() => taken.close());
  const adminPort = (taken.address() as AddressInfo).port;
  const probe = await listenOn(0);
  const queryPort = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const settings = { ...resolveServeSettings(['--port', String(queryPort), '--admin-port', String(adminPort), '--grpc-port', '0', '--log-level', 'silent']), bundled: false };
  await t.throwsAsync(serve(settings), { code: 'EADDRINUSE' });
  // The query server had listened before the admin port failed; it was closed, so the port can be taken again.
  const again = await listenOn(queryPort);
  await new Promise((resolve) => again.close(resolve));
  t.pass();
});
