/**
 * The code that runs inside a replica's worker thread (a Piscina worker). It holds the model sessions,
 * answers `infer` tasks (the data plane) and serves {@link WorkerControl} over comlink (the control plane).
 *
 * Model errors are returned as `{ ok: false }` results, never thrown: a rejected Piscina task therefore always
 * means the worker itself died, which is the replica actor's signal to fail over and be restarted.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { threadId } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import * as ort from 'onnxruntime-node';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { mulberry32 } from '../../src/kernel/random.js';
import type { InferResult, InferTask, InjectedFault, LoadedModelInfo, ModelSpec, WorkerControl, WorkerStats, WorkerTask } from './protocol.js';

/** A JS model module: `export function predict(input, rows, featureShape)` returning rows x k numbers. */
interface JsModelModule {
  predict(input: Float32Array | Int32Array, rows: number, featureShape: number[]): ArrayLike<number> | Promise<ArrayLike<number>>;
  load?(): void | Promise<void>;
}

interface LoadedModel {
  spec: ModelSpec;
  run(input: Float32Array | Int32Array, rows: number): Promise<Float32Array>;
  release(): Promise<void>;
  info: LoadedModelInfo;
}

const models = new Map<string, LoadedModel>();
const stats = { batches: 0, rows: 0, computeMs: 0 };
let armedFault: InjectedFault | undefined;
let stall: { ms: number; probability: number; random: () => number } | undefined;


async function loadOnnx(spec: ModelSpec): Promise<LoadedModel> {
  const started = performance.now();
  const session = await ort.InferenceSession.create(spec.path, {
    intraOpNumThreads: spec.intraOpNumThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inputName = spec.inputName ?? session.inputNames[0];
  const outputName = spec.outputName ?? session.outputNames[0];
  if (inputName === undefined || !session.inputNames.includes(inputName)) {
    throw new Error(`model ${spec.key} has no input ${JSON.stringify(inputName)}; its inputs are ${JSON.stringify(session.inputNames)}`);
  }
  if (outputName === undefined || !session.outputNames.includes(outputName)) {
    throw new Error(`model ${spec.key} has no output ${JSON.stringify(outputName)}; its outputs are ${JSON.stringify(session.outputNames)}`);
  }
  return {
    spec,
    info: { key: spec.key, inputName, outputName, loadMs: performance.now() - started },
    async run(input, rows) {
      const tensor = new ort.Tensor(spec.inputDtype, input, [rows, ...spec.featureShape]);
      const outputs = await session.run({ [inputName]: tensor }, [outputName]);
      const out = outputs[outputName] as ort.Tensor;
      if (out.type !== 'float32') throw new Error(`model ${spec.key} output ${outputName} is ${out.type}; expected float32`);
      return out.data as Float32Array;
    },
    release: () => session.release(),
  };
}

async function loadJs(spec: ModelSpec): Promise<LoadedModel> {
  const started = performance.now();
  const module = (await import(pathToFileURL(spec.path).href)) as Partial<JsModelModule>;
  if (typeof module.predict !== 'function') {
    throw new Error(`JS model ${spec.path} must export a function predict(input, rows, featureShape); it exports ${JSON.stringify(Object.keys(module))}`);
  }
  await module.load?.();
  const predict = module.predict.bind(module);
  return {
    spec,
    info: { key: spec.key, inputName: 'input', outputName: 'output', loadMs: performance.now() - started },
    async run(input, rows) {
      const out = await predict(input, rows, spec.featureShape);
      return out instanceof Float32Array ? out : Float32Array.from(out);
    },
    release: async () => {},
  };
}

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
    return { ok: false, error: { name: 'ModelLoadError', message: `model ${task.modelKey} is not loaded in this replica` }, computeMs: 0 };
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
      return { ok: false, error: { name: 'ModelRuntimeError', message: `model ${task.modelKey} returned ${output.length} values for ${task.rows} rows; expected a whole number of values per row` }, computeMs };
    }
    stats.batches++;
    stats.rows += task.rows;
    stats.computeMs += computeMs;
    // An output that is a view into a larger buffer is copied, so exactly its bytes are transferred.
    const own = output.byteOffset === 0 && output.byteLength === output.buffer.byteLength ? output : output.slice();
    const buffer = own.buffer as ArrayBuffer;
    return move(new TransferredResult({ ok: true, output: buffer, outputSize: output.length / task.rows, computeMs, stalledMs }, [buffer]) as never) as unknown as TransferredResult;
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    return { ok: false, error: { name: 'ModelRuntimeError', message: `model ${task.modelKey} failed on a batch of ${task.rows}: ${e.message}` }, computeMs: performance.now() - started };
  }
}

const control: WorkerControl = {
  async load(spec) {
    const existing = models.get(spec.key);
    if (existing !== undefined) return existing.info;
    const model = spec.kind === 'onnx' ? await loadOnnx(spec) : await loadJs(spec);
    models.set(spec.key, model);
    return model.info;
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
  async unload(key) {
    const model = models.get(key);
    models.delete(key);
    await model?.release();
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
