import type { BatchOutcome, BatchRequest, InjectedFault, ModelSpec, ModelWorker, Warmup, WireError, WorkerFaults, WorkerStats } from '../../actors/worker/model-worker.js';

/** One batch a fake worker was given: the test settles it when it likes. */
export interface FakeRun {
  readonly rows: number;
  /** The batch's input, read back as the dtype it was sent in. */
  readonly input: Float32Array | Int32Array;
  readonly timeLeftMs: number;
  /** Settled (answered, failed or lost to a death). */
  readonly settled: boolean;
  /** Answers every row with `outputOf(row)` (default: the row's first value), reporting `computeMs`. */
  answer(options?: { computeMs?: number; stalledMs?: number; outputOf?: (row: number[]) => number[] }): void;
  /** The model failed on this batch (the worker survives); `error` as a worker sends it. */
  fail(error: WireError, computeMs?: number): void;
}

/**
 * A {@link ModelWorker} with no thread: batches wait until the test answers them, and the test can kill the
 * worker at any moment ({@link die}). For the replica actor's unit tests, on a ManualClock.
 */
export class FakeModelWorker implements ModelWorker {
  readonly interruptible: boolean;
  readonly runs: FakeRun[] = [];
  readonly injected: InjectedFault[] = [];
  spec: ModelSpec | undefined;
  warmups = 0;
  closed: { abandon: boolean } | undefined;
  dead = false;
  /** Values per row the warm-up reports. */
  outputSize = 1;
  /** Set to make load reject. */
  loadError: Error | undefined;
  readonly #died: ((error: Error) => void)[] = [];
  readonly #pending = new Set<(error: Error) => void>();
  readonly faults: WorkerFaults = {
    inject: async (fault) => {
      this.injected.push(fault);
    },
  };

  constructor(options: { interruptible?: boolean } = {}) {
    this.interruptible = options.interruptible ?? false;
  }

  /** The last batch given to this worker. */
  get lastRun(): FakeRun {
    const run = this.runs.at(-1);
    if (run === undefined) throw new Error('the fake worker has run no batch');
    return run;
  }

  async load(spec: ModelSpec): Promise<void> {
    this.spec = spec;
    if (this.loadError !== undefined) throw this.loadError;
  }

  async warmup(_rows: number): Promise<Warmup> {
    this.warmups++;
    // A replica follows its warm-up calls with warm-up batches on the batch path (four): those answer at once,
    // zeros, and are not recorded in `runs`, so tests see only the batches of their own queries.
    this.#warmupRuns = 4;
    return { ms: 0, outputSize: this.outputSize };
  }

  /** Warm-up batches still to answer at once (see {@link warmup}). */
  #warmupRuns = 0;
  /** Batches answered as warm-ups. */
  warmupBatches = 0;

  run(batch: BatchRequest): Promise<BatchOutcome> {
    if (this.dead || this.closed !== undefined) return Promise.reject(new Error('fake worker is gone'));
    if (this.#warmupRuns > 0) {
      this.#warmupRuns--;
      this.warmupBatches++;
      const outputSize = this.outputSize;
      return Promise.resolve({ ok: true, output: new Float32Array(batch.rows * outputSize).buffer as ArrayBuffer, outputSize, computeMs: 0, stalledMs: 0 });
    }
    return new Promise<BatchOutcome>((resolve, reject) => {
      const input = batch.dtype === 'int32' ? new Int32Array(batch.input) : new Float32Array(batch.input);
      const features = input.length / batch.rows;
      let settled = false;
      const lose = (error: Error): void => {
        settled = true;
        reject(error);
      };
      this.#pending.add(lose);
      const settle = (outcome: BatchOutcome): void => {
        if (settled) throw new Error('this fake batch is settled already');
        settled = true;
        this.#pending.delete(lose);
        resolve(outcome);
      };
      this.runs.push({
        rows: batch.rows,
        input,
        timeLeftMs: batch.timeLeftMs,
        get settled() {
          return settled;
        },
        answer: ({ computeMs = 1, stalledMs = 0, outputOf = (row: number[]) => [row[0] ?? 0] } = {}) => {
          const rows = Array.from({ length: batch.rows }, (_, r) => outputOf(Array.from(input.subarray(r * features, (r + 1) * features))));
          const outputSize = rows[0]?.length ?? 0;
          const output = new Float32Array(rows.flat());
          settle({ ok: true, output: output.buffer as ArrayBuffer, outputSize, computeMs, stalledMs });
        },
        fail: (error, computeMs = 1) => settle({ ok: false, error, computeMs }),
      });
    });
  }

  async stats(): Promise<WorkerStats> {
    return { threadId: 0, models: this.spec === undefined ? [] : [this.spec.key], batches: this.runs.length, rows: 0, computeMs: 0, heapUsedBytes: 0 };
  }

  async close(options: { abandon?: boolean } = {}): Promise<void> {
    this.closed = { abandon: options.abandon === true };
  }

  onDied(listener: (error: Error) => void): void {
    this.#died.push(listener);
  }

  /**
   * The worker dies: listeners hear of it, and a batch in flight is lost (its run rejects). `order` says which
   * the replica hears first, as a thread's exit event and its task's rejection can come either way round.
   */
  die(error = new Error('fake worker died'), order: 'listeners-first' | 'run-first' = 'listeners-first'): void {
    this.dead = true;
    const tellListeners = (): void => {
      for (const listener of this.#died) listener(error);
    };
    if (order === 'listeners-first') tellListeners();
    for (const lose of this.#pending) lose(error);
    this.#pending.clear();
    if (order === 'run-first') void settle().then(tellListeners);
  }
}

/** Lets promise callbacks run (a settled fake batch reaching the replica's mailbox), with no timers involved. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
