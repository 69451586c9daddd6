/**
 * Holds loaded models and runs batches on them, whatever carries the batches in: a child-process worker's
 * pipe (process-worker-entry.ts) or a model container's NATS subscription (src/cluster/container.ts). It
 * answers request frames with reply or error frames (batch-frame.ts), so a model failure fails only its batch.
 *
 * The worker thread's entry (replica-worker.ts) runs its batches here too, over Piscina with transferred buffers.
 */
import { performance } from 'node:perf_hooks';
import { mulberry32 } from '../../src/kernel/random.js';
import { type Frame, ownBuffer, type RequestFrame } from './batch-frame.js';
import { loadJs } from './js-runtime.js';
import type { LoadedModel } from './model-runtime.js';
import { loadOnnx } from './onnx-runtime.js';
import type { InjectedFault, ModelSpec, TensorDtype, WireError, WorkerStats } from './protocol.js';
import { toWireError, workerErrorCodes } from './wire-error.js';

export class ModelHost {
  readonly #models = new Map<string, LoadedModel>();
  readonly #stats = { batches: 0, rows: 0, computeMs: 0 };
  #armed: InjectedFault | undefined;
  #stall: { ms: number; probability: number; random: () => number } | undefined;

  async load(spec: ModelSpec): Promise<void> {
    if (this.#models.has(spec.key)) return;
    this.#models.set(spec.key, spec.kind === 'onnx' ? await loadOnnx(spec) : await loadJs(spec));
  }

  async warmup(key: string, rows: number): Promise<{ ms: number; outputSize: number }> {
    const model = this.#models.get(key);
    if (model === undefined) throw new Error(`model ${key} is not loaded`);
    const features = model.spec.featureShape.reduce((a, b) => a * b, 1);
    const input = model.spec.inputDtype === 'int32' ? new Int32Array(rows * features) : new Float32Array(rows * features);
    const started = performance.now();
    const output = await model.run(input, rows);
    return { ms: performance.now() - started, outputSize: output.length / rows };
  }

  stats(): WorkerStats {
    return { threadId: process.pid, models: [...this.#models.keys()], ...this.#stats, heapUsedBytes: process.memoryUsage().heapUsed };
  }

  /** `exit` ends the process and `throw` throws uncaught in the middle of the next batch; `stall` delays batches. */
  inject(fault: InjectedFault): void {
    // Seeded, so fault injection repeats run to run.
    if (fault.kind === 'stall') this.#stall = { ms: fault.ms, probability: fault.probability, random: mulberry32(fault.seed) };
    else this.#armed = fault;
  }

  /** Runs one request frame; resolves with the reply or error frame to send back. */
  async run(request: RequestFrame): Promise<Frame> {
    const { id, rows } = request;
    // Aligned copy: a frame's payload may sit at any offset of the bytes received.
    const result = await this.runBatch(request.modelKey, request.dtype, rows, ownBuffer(request.payload));
    if (!result.ok) return { kind: 'error', id, computeMs: result.computeMs, error: result.error };
    const { output, outputSize, computeMs, stalledMs } = result;
    const payload = new Uint8Array(output.buffer, output.byteOffset, output.byteLength);
    return { kind: 'reply', id, rows, outputSize, computeMs, stalledMs, payload };
  }

  /**
   * Runs one batch, whatever carried it in (a worker thread's task, a pipe's frame, a NATS message): `input` is
   * rows x features of `dtype`, row-major. A model failure comes back as `ok: false`, never thrown, so it fails
   * only its batch. An armed `exit` or `throw` fault kills this thread or process mid-batch instead.
   */
  async runBatch(modelKey: string, dtype: TensorDtype, rows: number, input: ArrayBuffer): Promise<BatchOutcome> {
    const model = this.#models.get(modelKey);
    if (model === undefined) {
      return { ok: false, computeMs: 0, error: { name: 'ModelLoadError', code: workerErrorCodes.load, message: `model ${modelKey} is not loaded here; it holds ${JSON.stringify([...this.#models.keys()])}` } };
    }
    let stalledMs = 0;
    if (this.#stall !== undefined && this.#stall.random() < this.#stall.probability) {
      const t0 = performance.now();
      await new Promise((resolve) => setTimeout(resolve, this.#stall?.ms ?? 0));
      stalledMs = performance.now() - t0;
    }
    const started = performance.now();
    try {
      // The buffer may be longer than the batch (a replica reuses its largest batch buffer): view its rows only.
      const length = rows * model.spec.featureShape.reduce((a, b) => a * b, 1);
      const running = model.run(dtype === 'int32' ? new Int32Array(input, 0, length) : new Float32Array(input, 0, length), rows);
      const fault = this.#armed;
      if (fault !== undefined && fault.kind !== 'stall') {
        this.#armed = undefined;
        await dieMidBatch(fault, running, model.spec.kind === 'onnx');
      }
      const output = await running;
      const computeMs = performance.now() - started;
      if (output.length % rows !== 0 || output.length === 0) {
        const message = `model ${modelKey} returned ${output.length} values for ${rows} rows; expected a whole number of values per row`;
        return { ok: false, computeMs, error: { name: 'ModelRuntimeError', code: workerErrorCodes.runtime, message } };
      }
      this.#stats.batches++;
      this.#stats.rows += rows;
      this.#stats.computeMs += computeMs;
      return { ok: true, output, outputSize: output.length / rows, computeMs, stalledMs };
    } catch (error) {
      const cause = toWireError(error);
      const message = `model ${modelKey} failed on a batch of ${rows}: ${cause.message}`;
      return { ok: false, computeMs: performance.now() - started, error: { name: 'ModelRuntimeError', code: workerErrorCodes.runtime, message, cause } };
    }
  }
}

/** One batch's outcome, before any transport wraps it. */
export type BatchOutcome =
  | { ok: true; output: Float32Array; outputSize: number; computeMs: number; stalledMs: number }
  | { ok: false; error: WireError; computeMs: number };

/**
 * Kills this thread or process in the middle of the batch now running, the way a crash would: the batch is held so
 * no answer gets out. A JS model's call is still under way when it dies. An onnxruntime run is let finish first
 * (`native`): a thread that exits or throws while the run is in flight on onnxruntime's own thread can take the
 * whole process down when the run completes into the torn-down thread (`terminate called after throwing an
 * instance of 'Napi::Error'`, SIGABRT: once in six full test suites on 2026-11-30, in the reliability test that
 * kills ONNX workers under load), which is not a failure a replica can survive (README, "Failures").
 */
async function dieMidBatch(fault: InjectedFault, run: Promise<Float32Array>, native: boolean): Promise<never> {
  const die = (): void => {
    setTimeout(() => {
      if (fault.kind === 'exit') process.exit(1);
      throw new Error('injected fault: uncaught exception in a model worker');
    }, 1);
  };
  if (native) run.then(die, die);
  else {
    run.catch(() => {});
    die();
  }
  return new Promise<never>(() => {});
}
