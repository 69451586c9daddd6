import { MessageChannel } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Piscina } from 'piscina';
import type { ResourceLimits } from 'node:worker_threads';
import { Actor, type FailureSink } from '../src/kernel/actor.js';
import { AimdController } from '../src/batching/aimd-controller.js';
import { BatchLatencyModel } from '../src/batching/batch-latency-model.js';
import { BatchQueue } from '../src/batching/batch-queue.js';
import type { Clock, TimerHandle } from '../src/kernel/clock.js';
import { DeadlineExceededError, ModelLoadError, ModelRuntimeError, OverloadedError, ReplicaFailedError, ShuttingDownError, withoutStack } from '../src/errors.js';
import type { FaultOptions, ResolvedBatchingOptions } from '../src/config/options.js';
import type { Supervised } from '../src/kernel/supervisor.js';
import type { InferResult, InferTask, InjectedFault, ModelSpec, WorkerControl, WorkerStats } from './worker/protocol.js';
import type { BatchEvent } from '../src/api.js';
import type { ReplicaHandle, ReplicaHost, ReplicaQuery } from './contracts.js';

const workerFile = new URL('./worker/replica-worker.js', import.meta.url).href;



type ReplicaMessage =
  | { type: 'query'; query: ReplicaQuery }
  | { type: 'wake' }
  | { type: 'batchDone'; batch: ReplicaQuery[]; result: InferResult; startedAt: number }
  /** A batch ran longer than the batch timeout. */
  | { type: 'batchTimeout'; pool: object; batch: ReplicaQuery[] }
  /** The worker died: its task was rejected (`batch` is what it held) or its thread exited (`batch` absent). */
  | { type: 'workerDied'; pool: object; batch: ReplicaQuery[] | undefined; error: unknown };



export interface ReplicaSettings {
  name: string;
  spec: ModelSpec;
  batching: ResolvedBatchingOptions;
  faults: FaultOptions | undefined;
  clock: Clock;
  host: ReplicaHost;
  supervisor: FailureSink;
  /** Rows in the warm-up batch run after each (re)load. */
  warmupRows?: number;
  /** A batch running longer than this is a hang (see {@link Replica}). */
  batchTimeoutMs: number;
  /** Worker thread memory limits (Node's `resourceLimits`): a worker that exceeds them dies alone. */
  resourceLimits?: ResourceLimits;
  onBatch?: (event: BatchEvent) => void;
}

/**
 * A model replica actor. It owns one worker thread (a one-thread Piscina pool) holding an onnxruntime
 * session or a JS model; its mailbox is its batch queue, and it runs its own AIMD controller.
 *
 * One batch runs at a time. Queries that arrive meanwhile queue up and form the next batch, so batching
 * happens by itself under load; `maxQueueDelayMicroseconds` adds Clipper's delayed batching when idle.
 *
 * If the worker dies mid-batch, the batch and the queue are handed back to the host (which retries them on
 * another replica) and the supervisor restarts this replica: a fresh worker, model reloaded and warmed up.
 */
export class Replica extends Actor<ReplicaMessage> implements Supervised, ReplicaHandle {
  readonly #settings: ReplicaSettings;
  readonly #queue = new BatchQueue<ReplicaQuery>();
  readonly #aimd: AimdController;
  readonly #latency = new BatchLatencyModel();
  #pool: Piscina<InferTask, InferResult> | undefined;
  #control: Comlink.Remote<WorkerControl> | undefined;
  #closeControl: (() => void) | undefined;
  #running: ReplicaQuery[] | undefined;
  #wake: TimerHandle | undefined;
  #wakeAt = Number.POSITIVE_INFINITY;
  #drained: (() => void) | undefined;
  #retired = false;
  #restarts = 0;
  #outputSize = 0;
  /** A batch overran its timeout and could not be killed: take no queries until it returns. */
  #stuck = false;
  /** Batches already handed back after a death, so the late rejection of their task does not hand them back twice. */
  readonly #orphanedBatches = new WeakSet<ReplicaQuery[]>();
  readonly counters = { batches: 0, rows: 0, expired: 0, refused: 0, failedBatches: 0, workerDeaths: 0, timeouts: 0 };

  constructor(settings: ReplicaSettings) {
    super(settings.name, settings.supervisor);
    this.#settings = settings;
    this.#aimd = new AimdController(settings.batching);
  }

  /** Ready for queries: running and not retired. */
  get ready(): boolean {
    return this.status === 'running' && !this.#retired && !this.#stuck;
  }

  /** Whether the supervisor has given up on this replica. */
  get retired(): boolean {
    return this.#retired;
  }

  /** Queued queries plus the rows of the running batch: the balancer's measure of load. */
  get outstanding(): number {
    return this.#queue.size + (this.#running?.length ?? 0);
  }

  /** Values per output row, learned at warm-up (0 before). */
  get outputSize(): number {
    return this.#outputSize;
  }

  get batchLimit(): number {
    return this.#aimd.limit;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** Predicted time for a batch of `rows` here, from the batches run so far (0 before any). */
  estimateBatchMs(rows: number): number {
    return this.#latency.estimate(rows);
  }

  /** Control plane: the worker's own counters. */
  async workerStats(): Promise<WorkerStats> {
    if (this.#control === undefined) throw new ShuttingDownError(`replica ${this.name} has no worker`);
    return this.#control.stats();
  }

  /** Control plane: arms a fault in the worker (tests and benchmarks). */
  async injectFault(fault: InjectedFault): Promise<void> {
    if (this.#control === undefined) throw new ShuttingDownError(`replica ${this.name} has no worker`);
    await this.#control.injectFault(fault);
  }

  /** Enqueues a query; it settles through its own resolve/reject. */
  submit(query: ReplicaQuery): void {
    this.tell({ type: 'query', query });
  }

  /** Drops a copy answered elsewhere: the queue skips it when it reaches the front. */
  cancel(query: ReplicaQuery): void {
    query.cancelled = true;
  }

  async restart(): Promise<void> {
    // The supervisor's timer may fire after the replica was stopped or retired; then there is nothing to do.
    if (this.status !== 'failed' || this.#retired) return;
    this.#restarts++;
    await this.start();
  }

  retire(error: unknown): void {
    this.#retired = true;
    for (const query of this.#queue.drainAll()) query.reject(new ReplicaFailedError(`replica ${this.name} failed too often and was retired`, { cause: error }));
    void this.#teardown();
  }

  protected override async onStart(): Promise<void> {
    await this.#teardown();
    const pool = new Piscina<InferTask, InferResult>({
      filename: workerFile,
      minThreads: 1,
      maxThreads: 1,
      // 'async' keeps an idle worker's event loop turning, so control-plane calls answer (DESIGN, hazards).
      atomics: 'async',
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      ...(this.#settings.resourceLimits === undefined ? {} : { resourceLimits: this.#settings.resourceLimits }),
    });
    // Worker errors surface as rejected tasks; this keeps the pool's 'error' event from being unhandled.
    pool.on('error', () => {});
    this.#pool = pool;
    const { port1, port2 } = new MessageChannel();
    await pool.run({ type: 'connect', port: port2 } as unknown as InferTask, { transferList: [port2] });
    // A worker can also die between batches (an idle crash): watch the thread itself, not only its tasks.
    pool.threads[0]?.once('exit', (code) => this.post({ type: 'workerDied', pool, batch: undefined, error: new Error(`worker thread exited with code ${code}`) }));
    this.#control = Comlink.wrap<WorkerControl>(nodeEndpoint(port1 as never));
    this.#closeControl = () => {
      this.#control?.[Comlink.releaseProxy]();
      port1.close();
    };
    try {
      await this.#control.load(this.#settings.spec);
      const faults = this.#settings.faults;
      if (faults !== undefined && (faults.stallProbability ?? 0) > 0) {
        await this.#control.injectFault({ kind: 'stall', ms: faults.stallMs ?? 0, probability: faults.stallProbability ?? 0, seed: faults.seed ?? 1 });
      }
      const warm = await this.#control.warmup(this.#settings.spec.key, this.#settings.warmupRows ?? 8);
      this.#outputSize = warm.outputSize;
    } catch (error) {
      throw new ModelLoadError(`replica ${this.name} could not load ${this.#settings.spec.path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  protected override async onStop(): Promise<void> {
    if (this.#running !== undefined || this.#queue.size > 0) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        this.#pump();
      });
    }
    this.#wake?.cancel();
    await this.#teardown();
  }

  protected override undeliverable(message: ReplicaMessage, error: unknown): void {
    if (message.type === 'query') {
      message.query.reject(
        error instanceof ShuttingDownError ? new ReplicaFailedError(`replica ${this.name} is not taking queries (${this.status})`, { cause: error }) : error,
      );
    } else if (message.type === 'batchDone') {
      // The batch finished after the replica failed or stopped: its answers are still good.
      this.#finish(message.batch, message.result, message.startedAt);
    } else if (message.type === 'workerDied') {
      this.#handBack(message.batch, message.error);
    }
  }

  protected receive(message: ReplicaMessage): void {
    switch (message.type) {
      case 'query': {
        if (this.#queue.size >= this.#settings.batching.maxQueueSize) {
          this.counters.refused++;
          message.query.reject(
            withoutStack(() => new OverloadedError(`replica ${this.name} has ${this.#queue.size} queries queued (maxQueueSize ${this.#settings.batching.maxQueueSize})`)),
          );
          return;
        }
        const wait = this.#expectedWait();
        const now = this.#settings.clock.now();
        if (now + wait > message.query.deadline) {
          // Admission control: refuse now, with 503 and Retry-After, rather than queue a query that the work
          // ahead of it makes late anyway.
          this.counters.refused++;
          const left = message.query.deadline - now;
          message.query.reject(
            withoutStack(
              () =>
                new OverloadedError(
                  `replica ${this.name} would answer in ~${wait.toFixed(1)} ms (${this.#queue.size} queued, batches of ${this.#aimd.limit} take ~${this.#latency.estimate(this.#aimd.limit).toFixed(1)} ms); the deadline is in ${left.toFixed(1)} ms`,
                  Math.max(1, Math.ceil(wait / 1000)),
                ),
            ),
          );
          return;
        }
        this.#queue.push(message.query);
        this.#pump();
        return;
      }
      case 'wake':
        this.#wakeAt = Number.POSITIVE_INFINITY;
        this.#wake = undefined;
        this.#pump();
        return;
      case 'batchDone':
        this.#finish(message.batch, message.result, message.startedAt);
        this.#pump();
        return;
      case 'batchTimeout': {
        if (message.pool !== this.#pool || this.#running !== message.batch) return;
        this.counters.timeouts++;
        const error = new ReplicaFailedError(`replica ${this.name}: a batch of ${message.batch.length} ran past the ${this.#settings.batchTimeoutMs} ms batch timeout`);
        if (this.#settings.spec.kind === 'js') {
          // A hung JS model: recycle the worker. Terminating it is safe, no native run is in flight.
          this.post({ type: 'workerDied', pool: message.pool, batch: undefined, error });
          return;
        }
        // A slow onnxruntime run cannot be killed (terminating its worker aborts the process): hand its queries
        // to the other replicas and take no more until the run comes back.
        this.#stuck = true;
        this.#orphanedBatches.add(message.batch);
        this.#settings.host.orphaned([...message.batch, ...this.#queue.drainAll()], this.name, error);
        return;
      }
      case 'workerDied': {
        if (message.pool !== this.#pool) {
          // A worker this replica already replaced or tore down; only its batch, if any, needs handing back.
          this.#handBack(message.batch, message.error);
          return;
        }
        this.counters.workerDeaths++;
        const running = this.#running;
        this.#running = undefined;
        if (running !== undefined) this.#orphanedBatches.add(running);
        const orphans = [...(running ?? []), ...this.#queue.drainAll()];
        this.#wake?.cancel();
        this.fail(new ReplicaFailedError(`replica ${this.name}'s worker died: ${message.error instanceof Error ? message.error.message : String(message.error)}`, { cause: message.error }));
        this.#settings.host.orphaned(orphans, this.name, message.error);
        this.#drained?.();
        return;
      }
    }
  }

  /**
   * How long a query arriving now would wait for its answer: the batches queued ahead of it, the running
   * one, and its own. 0 while there is no queue (or no measurement yet): an idle replica always takes a
   * query, so a stale estimate can never refuse everything.
   */
  #expectedWait(): number {
    const queued = this.#queue.size;
    if (queued === 0 || this.#latency.samples === 0) return 0;
    const batching = this.#settings.batching;
    let size = this.#aimd.limit;
    // Under AIMD the queue drains in growing batches (a full batch within budget grows the limit by the step),
    // up to what fits the budget: counting every batch at today's limit would refuse a burst that AIMD is
    // about to absorb.
    const ceiling = batching.mode === 'aimd' ? Math.min(batching.maxBatchSize, Math.max(size, this.#latency.rowsWithin(this.#settings.host.latencyBudgetMs()))) : size;
    let wait = this.#running === undefined ? 0 : this.#latency.estimate(this.#running.length);
    let remaining = queued + 1;
    for (let step = 0; remaining > 0 && step < 64; step++) {
      const take = Math.min(size, remaining);
      wait += this.#latency.estimate(take);
      remaining -= take;
      size = Math.min(ceiling, size + batching.additiveStep);
    }
    if (remaining > 0) wait += Math.ceil(remaining / size) * this.#latency.estimate(size);
    return wait;
  }

  /** Starts the next batch if the worker is free and the queue says so. */
  #pump(): void {
    if (this.#running !== undefined || this.#pool === undefined) return;
    const stopping = this.status === 'stopping';
    const now = this.#settings.clock.now();
    const decision = this.#queue.take(now, {
      limit: this.#aimd.limit,
      maxDelayMs: stopping ? 0 : this.#settings.batching.maxQueueDelayMicroseconds / 1000,
      latency: this.#latency,
    });
    for (const query of decision.expired) {
      this.counters.expired++;
      query.reject(
        withoutStack(
          () =>
            new DeadlineExceededError(
              `replica ${this.name} could not run the query before its deadline: ${(query.deadline - query.enqueuedAt).toFixed(1)} ms allowed, ` +
                `${(now - query.enqueuedAt).toFixed(1)} ms spent queued, a batch takes ~${this.#latency.estimate(1).toFixed(1)} ms`,
            ),
        ),
      );
    }
    if (decision.kind === 'wait') {
      if (decision.wakeAt < this.#wakeAt) {
        this.#wake?.cancel();
        this.#wakeAt = decision.wakeAt;
        this.#wake = this.#settings.clock.setTimeout(() => this.post({ type: 'wake' }), decision.wakeAt - now);
      }
      return;
    }
    if (decision.kind === 'empty') {
      if (this.#drained !== undefined) this.#drained();
      return;
    }
    this.#dispatch(decision.batch, now);
  }

  #dispatch(batch: ReplicaQuery[], now: number): void {
    const pool = this.#pool as Piscina<InferTask, InferResult>;
    const first = batch[0] as ReplicaQuery;
    const features = first.input.length;
    const dtype = this.#settings.spec.inputDtype;
    const rows = batch.length;
    const data = dtype === 'int32' ? new Int32Array(rows * features) : new Float32Array(rows * features);
    for (let i = 0; i < rows; i++) data.set((batch[i] as ReplicaQuery).input, i * features);
    this.#running = batch;
    const buffer = data.buffer as ArrayBuffer;
    const watchdog = this.#settings.clock.setTimeout(() => this.post({ type: 'batchTimeout', pool, batch }), this.#settings.batchTimeoutMs);
    pool.run({ type: 'infer', modelKey: this.#settings.spec.key, rows, dtype, input: buffer }, { transferList: [buffer] }).then(
      (result) => {
        watchdog.cancel();
        this.post({ type: 'batchDone', batch, result, startedAt: now });
      },
      (error: unknown) => {
        watchdog.cancel();
        this.post({ type: 'workerDied', pool, batch, error });
      },
    );
  }

  #finish(batch: ReplicaQuery[], result: InferResult, startedAt: number): void {
    this.#running = undefined;
    this.#stuck = false;
    const now = this.#settings.clock.now();
    const batchMs = now - startedAt;
    if (!result.ok) {
      this.counters.failedBatches++;
      // A failed batch rejects its own members and nothing else.
      const error = new ModelRuntimeError(result.error.message);
      for (const query of batch) query.reject(error);
      return;
    }
    this.counters.batches++;
    this.counters.rows += batch.length;
    this.#latency.observe(batch.length, batchMs);
    // AIMD reads the model's own time (plus any injected stall), not the round trip: when the main thread is
    // slow to hear back (CPU contention, an event-loop stall), shrinking the batch would only cut throughput
    // when it is most needed. The round trip still feeds the latency model that deadlines use.
    this.#aimd.observe(batch.length, result.computeMs + result.stalledMs, this.#settings.host.latencyBudgetMs());
    const [model = '', version = ''] = this.#settings.spec.key.split('@');
    this.#settings.onBatch?.({ model, version, replica: this.name, size: batch.length, batchMs, computeMs: result.computeMs, limit: this.#aimd.limit });
    const output = new Float32Array(result.output);
    const k = result.outputSize;
    for (let i = 0; i < batch.length; i++) {
      const query = batch[i] as ReplicaQuery;
      // A copy per row, so a cached answer holds 4k bytes and not the whole batch's buffer.
      query.resolve({ scores: output.slice(i * k, (i + 1) * k), queueMs: startedAt - query.enqueuedAt, batchMs, batchSize: batch.length, replica: this.name });
    }
  }

  #handBack(batch: ReplicaQuery[] | undefined, error: unknown): void {
    if (batch === undefined || this.#orphanedBatches.has(batch)) return;
    this.#orphanedBatches.add(batch);
    if (this.#running === batch) this.#running = undefined;
    this.#settings.host.orphaned(batch, this.name, error);
  }

  async #teardown(): Promise<void> {
    this.#closeControl?.();
    this.#closeControl = undefined;
    this.#control = undefined;
    const pool = this.#pool;
    this.#pool = undefined;
    // Only ever called with no batch running (a dead worker, or after draining): terminating a worker
    // in the middle of an onnxruntime run aborts the whole process (DESIGN, known hazards).
    if (pool !== undefined) await pool.destroy();
  }
}
