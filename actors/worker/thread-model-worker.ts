import { MessageChannel, type MessagePort, type ResourceLimits } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Piscina } from 'piscina';
import type { BatchOutcome, BatchRequest, ModelWorker, Warmup, WorkerFaults } from './model-worker.js';
import type { InferResult, InferTask, ModelSpec, WorkerControl, WorkerStats } from './protocol.js';

const workerFile = new URL('./replica-worker.js', import.meta.url).href;

export interface ThreadModelWorkerOptions {
  /** Worker thread memory limits (Node's `resourceLimits`): a worker that exceeds them dies alone. */
  resourceLimits?: ResourceLimits;
}

/**
 * The worker thread's node options. Piscina loads its task file with `require()` first, and Node 20 then loads
 * this ES module through require(esm): in a full test run that aborted the whole process once ("FATAL ERROR:
 * v8::Module::IsGraphAsync must be used on an instantiated module", from piscina's require in a fresh worker while
 * others were being killed). With require(esm) off in the worker, piscina's require fails and it loads the module
 * with `import()`, the path a worker's ES module normally takes. V8 flags are not passed (a worker's execArgv
 * refuses them, and they are process-wide anyway); of the parent's node options, those a profiling or debugging
 * run needs in its workers are.
 */
function workerExecArgv(): string[] {
  const forwarded = process.execArgv.filter((arg) => /^--(enable-source-maps|cpu-prof|heap-prof|inspect)/.test(arg));
  return [...forwarded, '--no-experimental-require-module'];
}

/**
 * A model worker on one thread of this process: a one-thread Piscina pool for batches (the data plane) and
 * comlink over a MessagePort for load, warm-up, stats and faults (the control plane). See protocol.ts.
 *
 * A thread shares the process: a native crash in onnxruntime takes everything down, and terminating the thread
 * during an onnxruntime run aborts the process (DESIGN, known hazards). So {@link close} waits for the batch in
 * flight, and only a JS model's hung batch may be abandoned.
 */
export class ThreadModelWorker implements ModelWorker {
  readonly #options: ThreadModelWorkerOptions;
  #spec: ModelSpec | undefined;
  #pool: Piscina<InferTask, InferResult> | undefined;
  #control: Comlink.Remote<WorkerControl> | undefined;
  #port: MessagePort | undefined;
  /** The batch in flight (settled either way), so close can wait for it. */
  #inFlight: Promise<void> | undefined;
  #closed = false;
  #dead = false;
  readonly #diedListeners: ((error: Error) => void)[] = [];
  readonly faults: WorkerFaults = { inject: async (fault) => this.#controlPlane().injectFault(fault) };

  constructor(options: ThreadModelWorkerOptions = {}) {
    this.#options = options;
  }

  /** A JS model can be cut off mid-batch; an onnxruntime run cannot (see the class comment). */
  get interruptible(): boolean {
    return this.#spec?.kind === 'js';
  }

  async load(spec: ModelSpec): Promise<void> {
    if (this.#pool !== undefined) throw new Error(`worker already holds ${this.#spec?.key}; a thread model worker loads one model`);
    this.#spec = spec;
    const pool = new Piscina<InferTask, InferResult>({
      filename: workerFile,
      minThreads: 1,
      maxThreads: 1,
      // 'async' keeps an idle worker's event loop turning, so control-plane calls answer (DESIGN, hazards).
      atomics: 'async',
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      execArgv: workerExecArgv(),
      ...(this.#options.resourceLimits === undefined ? {} : { resourceLimits: this.#options.resourceLimits }),
    });
    // Worker errors surface as rejected tasks; this keeps the pool's 'error' event from being unhandled.
    pool.on('error', () => {});
    this.#pool = pool;
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    await pool.run({ type: 'connect', port: port2 } as unknown as InferTask, { transferList: [port2] });
    // A worker can also die between batches (an idle crash): watch the thread itself, not only its tasks. When a
    // batch is in flight its task's rejection carries the reason (out of memory, the uncaught error) and the exit
    // event, which can come first, only a code: let the rejection report the death.
    pool.threads[0]?.once('exit', (code) => {
      const exited = new Error(`worker thread exited with code ${code}`);
      if (this.#inFlight === undefined) this.#died(exited);
      else void this.#inFlight.then(() => this.#died(exited));
    });
    this.#control = Comlink.wrap<WorkerControl>(nodeEndpoint(port1 as never));
    await this.#control.load(spec);
  }

  warmup(rows: number): Promise<Warmup> {
    return this.#controlPlane().warmup(this.#loaded().key, rows);
  }

  run(batch: BatchRequest): Promise<BatchOutcome> {
    const pool = this.#pool;
    if (pool === undefined || this.#closed) return Promise.reject(new Error('the worker is closed'));
    const task: InferTask = { type: 'infer', modelKey: this.#loaded().key, rows: batch.rows, dtype: batch.dtype, input: batch.input };
    const outcome = pool.run(task, { transferList: [batch.input] }).then(
      (result): BatchOutcome => result,
      (error: unknown) => {
        // Model errors come back as results, so a rejected task means the thread died under the batch.
        const death = error instanceof Error ? error : new Error(String(error));
        this.#died(death);
        throw death;
      },
    );
    this.#inFlight = outcome.then(
      () => {},
      () => {},
    );
    return outcome;
  }

  stats(): Promise<WorkerStats> {
    return this.#controlPlane().stats();
  }

  async close(options: { abandon?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Draining: terminating the thread in the middle of an onnxruntime run aborts the process. A dead thread
    // runs nothing, whatever its last task's promise says (it may never settle once the thread is gone).
    if (!this.#dead && !(options.abandon === true && this.interruptible)) await this.#inFlight;
    this.#control?.[Comlink.releaseProxy]();
    this.#control = undefined;
    this.#port?.close();
    this.#port = undefined;
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.destroy();
  }

  onDied(listener: (error: Error) => void): void {
    this.#diedListeners.push(listener);
  }

  #died(error: Error): void {
    if (this.#dead || this.#closed) return;
    this.#dead = true;
    for (const listener of this.#diedListeners) listener(error);
  }

  #controlPlane(): Comlink.Remote<WorkerControl> {
    if (this.#control === undefined || this.#closed) throw new Error('the worker is not running (not loaded yet, or closed)');
    return this.#control;
  }

  #loaded(): ModelSpec {
    if (this.#spec === undefined) throw new Error('the worker has no model loaded');
    return this.#spec;
  }
}
