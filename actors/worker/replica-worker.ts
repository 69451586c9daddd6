/**
 * The code that runs inside a replica's worker thread (a Piscina worker). It holds the model sessions,
 * answers `infer` tasks (the data plane) and serves {@link WorkerControl} over comlink (the control plane).
 * It imports only the model runtimes and the wire protocol (plus the seeded dice for injected stalls).
 *
 * Model errors are returned as `{ ok: false }` results, never thrown: a rejected Piscina task therefore always
 * means the worker itself died, which is the replica actor's signal to fail over and be restarted.
 */
import { performance } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { mulberry32 } from '../../src/kernel/random.js';
import { loadJs } from './js-runtime.js';
import type { LoadedModel } from './model-runtime.js';
import { loadOnnx } from './onnx-runtime.js';
import type { InferResult, InferTask, InjectedFault, WorkerControl, WorkerStats, WorkerTask } from './protocol.js';
import { toWireError, workerErrorCodes } from './wire-error.js';

const models = new Map<string, LoadedModel>();
const stats = { batches: 0, rows: 0, computeMs: 0 };
let armedFault: InjectedFault | undefined;
let stall: { ms: number; probability: number; random: () => number } | undefined;

/**
 * Kills this worker in the middle of the batch now running, the way a crash would: the model call is under
 * way (an onnxruntime run is in flight on its own thread), and the batch is held so no answer gets out first.
 */
async function dieMidBatch(fault: InjectedFault, run: Promise<Float32Array>): Promise<never> {
  run.catch(() => {});
  setTimeout(() => {
    if (fault.kind === 'exit') process.exit(1);
    throw new Error('injected fault: uncaught exception in replica worker');
  }, 1);
  return new Promise<never>(() => {});
}

/** A Piscina result whose output buffer is transferred, not copied. */
class TransferredResult {
  readonly #value: InferResult;
  readonly #buffers: ArrayBuffer[];
  constructor(value: InferResult, buffers: ArrayBuffer[]) {
    this.#value = value;
    this.#buffers = buffers;
  }
  get [transferableSymbol](): ArrayBuffer[] {
    return this.#buffers;
  }
  get [valueSymbol](): InferResult {
    return this.#value;
  }
}

async function infer(task: InferTask): Promise<InferResult | TransferredResult> {
  const model = models.get(task.modelKey);
  if (model === undefined) {
    return { ok: false, error: { name: 'ModelLoadError', code: workerErrorCodes.load, message: `model ${task.modelKey} is not loaded in this replica` }, computeMs: 0 };
  }
  let stalledMs = 0;
  if (stall !== undefined && stall.random() < stall.probability) {
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, stall?.ms ?? 0));
    stalledMs = performance.now() - t0;
  }
  const input = task.dtype === 'int32' ? new Int32Array(task.input) : new Float32Array(task.input);
  const started = performance.now();
  try {
    const running = model.run(input, task.rows);
    const fault = armedFault;
    if (fault !== undefined && fault.kind !== 'stall') {
      armedFault = undefined;
      await dieMidBatch(fault, running);
    }
    const output = await running;
    const computeMs = performance.now() - started;
    if (output.length % task.rows !== 0 || output.length === 0) {
      const message = `model ${task.modelKey} returned ${output.length} values for ${task.rows} rows; expected a whole number of values per row`;
      return { ok: false, error: { name: 'ModelRuntimeError', code: workerErrorCodes.runtime, message }, computeMs };
    }
    stats.batches++;
    stats.rows += task.rows;
    stats.computeMs += computeMs;
    // An output that is a view into a larger buffer is copied, so exactly its bytes are transferred.
    const own = output.byteOffset === 0 && output.byteLength === output.buffer.byteLength ? output : output.slice();
    const buffer = own.buffer as ArrayBuffer;
    return move(new TransferredResult({ ok: true, output: buffer, outputSize: output.length / task.rows, computeMs, stalledMs }, [buffer]) as never) as unknown as TransferredResult;
  } catch (error) {
    const cause = toWireError(error);
    const message = `model ${task.modelKey} failed on a batch of ${task.rows}: ${cause.message}`;
    return { ok: false, error: { name: 'ModelRuntimeError', code: workerErrorCodes.runtime, message, cause }, computeMs: performance.now() - started };
  }
}

const control: WorkerControl = {
  async load(spec) {
    if (models.has(spec.key)) return;
    models.set(spec.key, spec.kind === 'onnx' ? await loadOnnx(spec) : await loadJs(spec));
  },
  async warmup(key, rows) {
    const model = models.get(key);
    if (model === undefined) throw new Error(`model ${key} is not loaded`);
    const features = model.spec.featureShape.reduce((a, b) => a * b, 1);
    const input = model.spec.inputDtype === 'int32' ? new Int32Array(rows * features) : new Float32Array(rows * features);
    const started = performance.now();
    const output = await model.run(input, rows);
    return { ms: performance.now() - started, outputSize: output.length / rows };
  },
  async stats(): Promise<WorkerStats> {
    return { threadId, models: [...models.keys()], ...stats, heapUsedBytes: process.memoryUsage().heapUsed };
  },
  async injectFault(fault) {
    // Seeded, so fault injection repeats run to run.
    if (fault.kind === 'stall') stall = { ms: fault.ms, probability: fault.probability, random: mulberry32(fault.seed) };
    else armedFault = fault;
  },
};

export default async function handle(task: WorkerTask): Promise<unknown> {
  if (task.type === 'infer') return infer(task);
  Comlink.expose(control, nodeEndpoint(task.port as never));
  return true;
}
