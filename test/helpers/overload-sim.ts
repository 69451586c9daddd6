import { Replica } from '../../actors/replica.js';
import type { ReplicaQuery } from '../../actors/contracts.js';
import type { BatchOutcome, BatchRequest, ModelSpec, Warmup } from '../../actors/worker/model-worker.js';
import { resolveBatchingOptions, type BatchingOptions } from '../../src/config/options.js';
import { DeadlineExceededError, OverloadedError } from '../../src/errors.js';
import { ManualClock } from '../../src/kernel/clock.js';
import { FakeModelWorker, settle } from './fake-model-worker.js';
import type { BatchEvent } from '../../src/api.js';

/** A fake worker whose warm-ups (and the warm-up batches after them) take the model's time on the manual clock, as real ones do. */
export class TimedWarmups extends FakeModelWorker {
  #warmBatches = 0;
  constructor(
    readonly clock: ManualClock,
    readonly ms: (rows: number) => number,
  ) {
    super({ interruptible: true });
  }

  override async warmup(rows: number): Promise<Warmup> {
    this.clock.advance(this.ms(rows));
    this.#warmBatches = 4;
    return super.warmup(rows);
  }

  override run(batch: BatchRequest): Promise<BatchOutcome> {
    if (this.#warmBatches > 0) {
      this.#warmBatches--;
      this.clock.advance(this.ms(batch.rows));
    }
    return super.run(batch);
  }
}

export interface OverloadSimOptions {
  /** Queries offered per second, evenly spaced. */
  rate: number;
  seconds: number;
  /** Seconds at the start not counted (the replica's estimates are learning). */
  warmupSeconds?: number;
  /** The model: each batch takes fixedMs + perRowMs * rows, plus `extraMs()` (timer lateness, thread hops, a busy main thread). */
  fixedMs: number;
  perRowMs: number;
  extraMs?: (rows: number) => number;
  /** Each query's deadline, from its arrival (the router's SLO less its margin). */
  deadlineMs: number;
  batching?: BatchingOptions;
  /** The AIMD budget the replica set gives (half the SLO). */
  budgetMs: number;
  onBatch?: (event: BatchEvent) => void;
}

export interface OverloadSimResult {
  offered: number;
  admitted: number;
  refused: number;
  /** Admitted queries answered by the model by their deadline. */
  onTime: number;
  /** Admitted queries not answered by their deadline (the router answered them by default), or dropped unrun. */
  late: number;
  onTimePerSecond: number;
  lateShareOfAdmitted: number;
  meanBatch: number;
}

/**
 * A discrete-event simulation of one {@link Replica} (the real actor: admission, batch queue, latency model,
 * AIMD) on a ManualClock, offered an open-loop stream of queries, its fake worker taking `fixedMs + perRowMs *
 * rows + extraMs(rows)` per batch. Deterministic for a deterministic `extraMs`. Counts what was admitted,
 * refused, answered by the model by its deadline, and late.
 */
export async function simulateOverload(options: OverloadSimOptions): Promise<OverloadSimResult> {
  const clock = new ManualClock();
  let worker: FakeModelWorker | undefined;
  const spec: ModelSpec = { key: 'm@1', kind: 'js', path: '/models/m/1/model', inputDtype: 'float32', featureShape: [1], intraOpNumThreads: 1 };
  const replica = new Replica({
    name: 'm@1#0',
    spec,
    batching: resolveBatchingOptions({ mode: 'aimd', ...options.batching }),
    faults: undefined,
    clock,
    host: { latencyBudgetMs: () => options.budgetMs, orphaned: () => {} },
    supervisor: { tell: () => {} },
    batchTimeoutMs: 10_000,
    ...(options.onBatch === undefined ? {} : { onBatch: options.onBatch }),
    createWorker: () => (worker = new TimedWarmups(clock, (rows) => options.fixedMs + options.perRowMs * rows)),
  });
  await replica.start();
  const w = worker as FakeModelWorker;
  const warmupMs = (options.warmupSeconds ?? 0) * 1000;
  const endMs = warmupMs + options.seconds * 1000;
  const gap = 1000 / options.rate;
  const start = clock.now();
  const result = { offered: 0, admitted: 0, refused: 0, onTime: 0, late: 0 };
  let rows = 0;
  let batches = 0;
  let nextArrival = 0;
  let seen = 0;
  let running: { run: (typeof w.runs)[number]; doneAt: number } | undefined;
  for (;;) {
    if (running === undefined && w.runs.length > seen) {
      const run = w.runs[seen++] as (typeof w.runs)[number];
      running = { run, doneAt: clock.now() - start + options.fixedMs + options.perRowMs * run.rows + (options.extraMs?.(run.rows) ?? 0) };
    }
    const arrivalDue = nextArrival * gap;
    const arrivalsLeft = arrivalDue < endMs;
    if (!arrivalsLeft && running === undefined) break;
    if (running !== undefined && (!arrivalsLeft || running.doneAt <= arrivalDue)) {
      clock.advance(Math.max(0, running.doneAt - (clock.now() - start)));
      const { run } = running;
      running = undefined;
      if (clock.now() - start >= warmupMs) {
        rows += run.rows;
        batches++;
      }
      run.answer({ computeMs: options.fixedMs + options.perRowMs * run.rows });
      await settle();
      continue;
    }
    clock.advance(Math.max(0, arrivalDue - (clock.now() - start)));
    nextArrival++;
    const counted = arrivalDue >= warmupMs;
    if (counted) result.offered++;
    const deadline = clock.now() + options.deadlineMs;
    const query: ReplicaQuery = {
      input: new Float32Array([0]),
      enqueuedAt: clock.now(),
      deadline,
      resolve: () => {
        if (!counted) return;
        result.admitted++;
        if (clock.now() <= deadline) result.onTime++;
        else result.late++;
      },
      reject: (error) => {
        if (!counted) return;
        if (error instanceof OverloadedError) result.refused++;
        else if (error instanceof DeadlineExceededError) {
          result.admitted++;
          result.late++;
        } else throw error;
      },
    };
    replica.submit(query);
    await settle();
  }
  await replica.stop();
  return {
    ...result,
    onTimePerSecond: result.onTime / options.seconds,
    lateShareOfAdmitted: result.admitted === 0 ? 0 : result.late / result.admitted,
    meanBatch: batches === 0 ? 0 : rows / batches,
  };
}
