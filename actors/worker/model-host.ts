/**
 * Holds loaded models and runs batches on them, whatever carries the batches in: a child-process worker's
 * pipe (process-worker-entry.ts) or a model container's NATS subscription (src/cluster/container.ts). It
 * answers request frames with reply or error frames (batch-frame.ts), so a model failure fails only its batch.
 *
 * The worker thread's entry (replica-worker.ts) does the same over Piscina with transferred buffers.
 */
import { performance } from 'node:perf_hooks';
import { mulberry32 } from '../../src/kernel/random.js';
import { type Frame, ownBuffer, type RequestFrame } from './batch-frame.js';
import { loadJs } from './js-runtime.js';
import type { LoadedModel } from './model-runtime.js';
import { loadOnnx } from './onnx-runtime.js';
import type { InjectedFault, ModelSpec, WorkerStats } from './protocol.js';
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
    const { id, rows, modelKey } = request;
    const model = this.#models.get(modelKey);
    if (model === undefined) {
      return { kind: 'error', id, computeMs: 0, error: { name: 'ModelLoadError', code: workerErrorCodes.load, message: `model ${modelKey} is not loaded here; it holds ${JSON.stringify([...this.#models.keys()])}` } };
    }
    let stalledMs = 0;
    if (this.#stall !== undefined && this.#stall.random() < this.#stall.probability) {
      const t0 = performance.now();
      await new Promise((resolve) => setTimeout(resolve, this.#stall?.ms ?? 0));
      stalledMs = performance.now() - t0;
    }
    // Aligned copy: a frame's payload may sit at any offset of the bytes received.
    const bytes = ownBuffer(request.payload);
    const input = request.dtype === 'int32' ? new Int32Array(bytes) : new Float32Array(bytes);
    const started = performance.now();
    try {
      const running = model.run(input, rows);
      const fault = this.#armed;
      if (fault !== undefined && fault.kind !== 'stall') {
        this.#armed = undefined;
        running.catch(() => {});
        setTimeout(() => {
          if (fault.kind === 'exit') process.exit(1);
          throw new Error('injected fault: uncaught exception in a model process');
        }, 1);
        await new Promise<never>(() => {});
      }
      const output = await running;
      const computeMs = performance.now() - started;
      if (output.length % rows !== 0 || output.length === 0) {
        const message = `model ${modelKey} returned ${output.length} values for ${rows} rows; expected a whole number of values per row`;
        return { kind: 'error', id, computeMs, error: { name: 'ModelRuntimeError', code: workerErrorCodes.runtime, message } };
      }
      this.#stats.batches++;
      this.#stats.rows += rows;
      this.#stats.computeMs += computeMs;
      const payload = new Uint8Array(output.buffer, output.byteOffset, output.byteLength);
      return { kind: 'reply', id, rows, outputSize: output.length / rows, computeMs, stalledMs, payload };
    } catch (error) {
      const cause = toWireError(error);
      const message = `model ${modelKey} failed on a batch of ${rows}: ${cause.message}`;
      return { kind: 'error', id, computeMs: performance.now() - started, error: { name: 'ModelRuntimeError', code: workerErrorCodes.runtime, message, cause } };
    }
  }
}
