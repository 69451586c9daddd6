import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { digit, loadMnist, projectRoot } from '../../src/index.js';
import { serve, type RunningServer } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { fixtureModels, waitFor } from '../helpers/fixtures.js';
import { priorityOrder } from '../helpers/priority-order.js';

// Client batches over a real socket (Node's fetch) against a real server: OIP infer requests of 1, 100, 1,000
// and 10,000 rows, admitted as one unit. mnist-linear (onnxruntime on a worker thread) checks the answers
// against single-row ones; `timed` (4 ms + 0.5 ms a row, on a timer: no CPU, so its times hold on a loaded
// machine) makes the refusals deterministic; `slow` (busy-waits input[0] ms a batch) keeps work queued for
// the disconnect test.

const { test: heldOut } = loadMnist();
let server: RunningServer;
let repository: string;

test.before(async () => {
  // One repository holding the bundled mnist-linear and the two fixture models (copies: a link out of the repository is refused).
  repository = mkdtempSync(path.join(tmpdir(), 'clipper-batches-'));
  cpSync(path.join(projectRoot, 'models', 'mnist-linear'), path.join(repository, 'mnist-linear'), { recursive: true });
  for (const name of ['timed', 'slow']) cpSync(path.join(fixtureModels, name), path.join(repository, name), { recursive: true });
  server = await serve({
    ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--grpc-port', '0', '--log-level', 'silent', '--models', repository, '--max-event-loop-delay-ms', '0', '--body-limit', String(64 * 1024 * 1024)]),
    bundled: false,
  });
  await server.clipper.deployModel({ name: 'mnist-linear', version: '1', path: 'mnist-linear/1/model.onnx', replicas: 1 });
  await server.clipper.deployModel({ name: 'timed', version: '1', path: 'timed/1/model.mjs', replicas: 1, batching: { mode: 'fixed', maxBatchSize: 256 } });
  await server.clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1, batching: { mode: 'fixed', maxBatchSize: 1 } });
});
test.after.always(async () => {
  await server?.close();
  if (repository !== undefined) rmSync(repository, { recursive: true, force: true });
});

/** `rows` held-out digits, the first 100 over and over, as one FP32 [rows, 784] tensor. */
function digits(rows: number): Float32Array {
  const all = new Float32Array(rows * 784);
  for (let r = 0; r < rows; r++) all.set(digit(heldOut, r % 100), r * 784);
  return all;
}

interface Reply {
  status: number;
  retryAfter: string | null;
  json: { outputs?: { shape: number[]; data: number[] }[]; code?: string; error?: string; largest_rows?: number };
}

/**
 * An OIP infer request for `values` as [rows, features], binary (the tensor's bytes after a JSON header) so
 * 10,000 rows stay a 31 MB body; `timeoutUs` is `parameters.timeout`.
 */
async function infer(model: string, values: Float32Array, features: number, timeoutUs: number, signal?: AbortSignal): Promise<Reply> {
  const rows = values.length / features;
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ name: 'input', shape: [rows, features], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }], parameters: { timeout: timeoutUs } }),
  );
  const body = Buffer.concat([header, Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
  const response = await fetch(`${server.queryUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body,
    ...(signal === undefined ? {} : { signal }),
  });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), json: (await response.json()) as Reply['json'] };
}

const rowsOf = (reply: Reply, width = 10): number[][] => {
  const data = reply.json.outputs?.[0]?.data ?? [];
  return Array.from({ length: data.length / width }, (_, r) => data.slice(r * width, (r + 1) * width));
};

/** The model's one replica's status now (a snapshot: read it again to see it change). */
const replicaOf = (model: string) => server.clipper.getModel(model).versions[0]?.replicas[0];

test.serial('client batches of 1, 100, 1,000 and 10,000 rows under a generous timeout are answered, each row as it is alone', async (t) => {
  const single: number[][] = [];
  for (let i = 0; i < 100; i++) {
    const reply = await infer('mnist-linear', digit(heldOut, i), 784, 60_000_000);
    t.is(reply.status, 200);
    single.push(...rowsOf(reply));
  }
  const before = replicaOf('mnist-linear')?.counters.units ?? 0;
  for (const rows of [100, 1000, 10_000]) {
    const reply = await infer('mnist-linear', digits(rows), 784, 60_000_000);
    t.is(reply.status, 200, `${rows} rows: ${reply.json.error ?? ''}`);
    t.deepEqual(reply.json.outputs?.[0]?.shape, [rows, 10]);
    const got = rowsOf(reply);
    // The same digit, batched or alone: the same scores (to float rounding of a different batch size).
    for (let i = 0; i < rows; i++) {
      const want = single[i % 100] as number[];
      t.true(
        (got[i] as number[]).every((v, k) => Math.abs(v - (want[k] as number)) < 1e-4),
        `${rows} rows: row ${i} differs from its single-row answer`,
      );
    }
  }
  t.is((replicaOf('mnist-linear')?.counters.units ?? 0) - before, 3, 'each request admitted as one unit');
});

test.serial('10,000 rows under a 20 ms timeout can never fit: 400 BATCH_TOO_LARGE with the largest N, which is then answered', async (t) => {
  // timed: 10,000 rows take 40 batches of ~130 ms alone (~5.7 s); in 20 ms fit 4 + 0.5 N <= 20 less the margins
  // and the time the request spent reaching admission (a 31 MB body): N < 32, maybe 0 on a loaded machine, where
  // reading the body can take the whole 20 ms (the time left is then negative).
  const reply = await infer('timed', digits(10_000), 784, 20_000);
  t.is(reply.status, 400);
  t.is(reply.json.code, 'BATCH_TOO_LARGE');
  const tight = reply.json.largest_rows ?? -1;
  t.true(tight >= 0 && tight < 32, `largest_rows ${tight}`);
  t.regex(reply.json.error ?? '', new RegExp(`cannot answer 10000 rows within -?[\\d.]+ ms even when idle.*at most ${tight} rows fit`));
  t.is(reply.retryAfter, null, 'no Retry-After: retrying cannot help');
  // Under 200 ms: a batch of 256 (~133 ms) and some more fit, 10,000 do not.
  const wider = await infer('timed', digits(10_000), 784, 200_000);
  t.is(wider.status, 400);
  const largest = wider.json.largest_rows ?? -1;
  t.true(largest >= 100 && largest < 400, `largest_rows ${largest}`);
  // That many rows fit an idle replica's deadline: served (under a timeout with room to spare on a loaded machine).
  const fits = await infer('timed', digits(largest), 784, 2_000_000);
  t.is(fits.status, 200);
  t.deepEqual(fits.json.outputs?.[0]?.shape, [largest, 10]);
});

test.serial('a batch that fits an idle replica but not a busy one is refused 503 with Retry-After; retried once idle, it is answered', async (t) => {
  // 2,000 rows: 8 batches of ~132 ms, ~1 s of work.
  const busy = infer('timed', digits(2000), 784, 60_000_000);
  await waitFor(() => (replicaOf('timed')?.outstanding ?? 0) > 0, 10_000, 'the big batch to be queued');
  // 50 rows take ~30 ms alone: within 300 ms when idle, not behind ~1 s of work.
  const refused = await infer('timed', digits(50), 784, 300_000);
  t.is(refused.status, 503);
  t.is(refused.json.code, 'OVERLOADED');
  t.truthy(refused.retryAfter);
  t.is((await busy).status, 200);
  const retried = await infer('timed', digits(50), 784, 300_000);
  t.is(retried.status, 200);
});

test.serial('a batch too large for one replica in time is split across two: answered whole, one unit on each', async (t) => {
  // 500 timed rows under 240 ms: one replica needs a batch of 256 (~132 ms) then 244 rows (~126 ms) more: never
  // fits, 400. Two replicas take 250 each in one batch (~129 ms): in time, so the unit is split and answered.
  const alone = await infer('timed', digits(500), 784, 240_000);
  t.is(alone.status, 400, JSON.stringify(alone.json));
  t.is(alone.json.code, 'BATCH_TOO_LARGE');
  await server.clipper.deployModel({ name: 'timed-pair', version: '1', path: 'timed/1/model.mjs', replicas: 2, batching: { mode: 'fixed', maxBatchSize: 256 } });
  // A history of real batches of two sizes on each replica (requests alternate between two idle replicas), so
  // admission plans from measured batches rather than the warm-ups alone.
  for (const rows of [16, 16, 128, 128, 16, 16, 128, 128]) t.is((await infer('timed-pair', digits(rows), 784, 60_000_000)).status, 200);
  const units = (): number[] => server.clipper.getModel('timed-pair').versions[0]?.replicas.map((r) => r.counters.units) ?? [];
  t.deepEqual(units(), [4, 4]);
  const split = await infer('timed-pair', digits(500), 784, 240_000);
  t.is(split.status, 200, JSON.stringify(split.json));
  t.deepEqual(split.json.outputs?.[0]?.shape, [500, 10]);
  t.deepEqual(units(), [5, 5], 'one share admitted whole on each replica');
  // Each row answered once: `timed` answers a batch's row r with class r % 10, so every row is one-hot.
  t.true(rowsOf(split).every((row) => row.filter((v) => v === 1).length === 1 && row.filter((v) => v === 0).length === 9));
});

test.serial('a client that disconnects: its rows still queued are dropped unrun and counted; the running batch finishes', async (t) => {
  const rowsRun = (): number => replicaOf('slow')?.counters.rows ?? 0;
  const ranBefore = rowsRun();
  // 20 rows of [40, i]: batches of one row, 40 ms each (800 ms in all).
  const values = new Float32Array(40);
  for (let i = 0; i < 20; i++) values.set([40, i], i * 2);
  const controller = new AbortController();
  const request = infer('slow', values, 2, 60_000_000, controller.signal);
  await waitFor(() => rowsRun() > ranBefore, 10_000, 'the first row to run');
  controller.abort();
  const aborted = await request.then(
    () => undefined,
    (error: unknown) => error,
  );
  t.is((aborted as Error | undefined)?.name, 'AbortError');
  // The batch running at the abort finishes (its answer is dropped); every other row is dropped unrun.
  const cancelledCount = (): number => replicaOf('slow')?.counters.cancelled ?? 0;
  await waitFor(() => rowsRun() - ranBefore + cancelledCount() === 20, 10_000, 'every row to have run or been dropped');
  await new Promise((resolve) => setTimeout(resolve, 200));
  const ran = rowsRun() - ranBefore;
  const cancelled = cancelledCount();
  t.true(ran >= 1 && ran < 20, `the model ran ${ran} of 20 rows`);
  t.true(cancelled >= 1, `${cancelled} dropped`);
  t.is(ran + cancelled, 20, `${ran} ran, ${cancelled} dropped: no row ran after it was dropped, none was lost`);
  const metrics = await (await fetch(`${server.queryUrl}/metrics`)).text();
  t.regex(metrics, new RegExp(`clipper_cancelled_total\\{model="slow",version="1",replica="slow@1#0"\\} ${cancelled}`));
});

test.serial('Clipper REST input_batch goes through predictBatch: one validation (the bad input named by index), answers in order', async (t) => {
  await server.clipper.registerApp({ name: 'lin', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 5000 });
  await server.clipper.linkModel('lin', 'mnist-linear');
  const post = async (body: object) => {
    const r = await fetch(`${server.queryUrl}/lin/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, json: (await r.json()) as { batch_predictions?: { output: number; default: boolean }[]; output?: number; code?: string; error?: string } };
  };
  const inputs = Array.from({ length: 20 }, (_, i) => Array.from(digit(heldOut, i)));
  const single: number[] = [];
  for (const input of inputs) single.push((await post({ input })).json.output ?? -2);
  const batch = await post({ input_batch: inputs });
  t.is(batch.status, 200);
  t.deepEqual(batch.json.batch_predictions?.map((p) => p.output), single);
  const bad = await post({ input_batch: [inputs[0], [1, 2, 3], inputs[2]] });
  t.is(bad.status, 400);
  t.is(bad.json.code, 'INVALID_INPUT');
  t.regex(bad.json.error ?? '', /^inputs\[1\]: input has 3 values; application lin expects 784/);
});

test.serial('priority order under a saturated replica: parameters.priority 1 is batched before the default level queued earlier', async (t) => {
  const send = async (ms: number, id: number, priority?: number): Promise<number> => {
    const body = JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', data: [ms, id] }],
      parameters: { timeout: 60_000_000, ...(priority === undefined ? {} : { priority }) },
    });
    const r = await fetch(`${server.queryUrl}/v2/models/slow/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const json = (await r.json()) as { outputs?: { data: number[] }[] };
    t.is(r.status, 200);
    return json.outputs?.[0]?.data[0] ?? -1;
  };
  t.deepEqual(await priorityOrder(send, () => replicaOf('slow')?.outstanding ?? 0), [0, 11, 12, 1, 2, 3]);
});
