/**
 * What a replica needs from whatever runs its model: a thread in this process today
 * ({@link ThreadModelWorker}), a child process or a remote worker over NATS next, a fake in the unit tests.
 *
 * It is shaped for a batch that crosses a process or a network: bytes in (one contiguous typed array), bytes
 * out, and the compute time measured where the model ran, so the replica's AIMD controller sees the model's
 * time and not the transport's.
 */
import type { InjectedFault, ModelSpec, TensorDtype, WireError, WorkerStats } from './protocol.js';

export type { InjectedFault, ModelSpec, TensorDtype, WireError, WorkerStats } from './protocol.js';

/** One batch, as it crosses to the worker. */
export interface BatchRequest {
  /** rows x features of `dtype`, row-major. Transferred (or sent): the caller's copy may be detached. */
  input: ArrayBuffer;
  rows: number;
  dtype: TensorDtype;
  /**
   * How long the caller will wait for this batch, ms from dispatch. Relative, because clocks are not shared
   * across processes or machines; a remote worker may drop a batch it cannot start in time. The thread worker
   * ignores it (the replica's watchdog handles a batch that overruns).
   */
  timeLeftMs: number;
}

/**
 * How a batch ended when the worker survived it. A model that throws or returns the wrong number of values
 * fails only its batch, with a {@link WireError}: plain data any transport carries, whose top level names the
 * catalogue code (MODEL_RUNTIME_ERROR, MODEL_LOAD_FAILED) and whose `cause` is what the model threw (name,
 * code, message, stack). The replica turns it into the catalogue error (actors/worker-error.ts).
 */
export type BatchOutcome =
  | {
      ok: true;
      /** rows x outputSize float32 values. */
      output: ArrayBuffer;
      outputSize: number;
      /** Time inside the model, measured by the worker, ms. */
      computeMs: number;
      /** Time held back by an injected stall, ms (0 normally). */
      stalledMs: number;
      /**
       * The request's input buffer, handed back once the model is done with it (a thread worker transfers it
       * back), so the replica reuses it for its next batch instead of allocating one (fresh pages each batch).
       */
      input?: ArrayBuffer;
    }
  | { ok: false; error: WireError; computeMs: number };

/** What a warm-up learned. */
export interface Warmup {
  ms: number;
  /** Values per output row. */
  outputSize: number;
}

/** The fault-injection part of a worker, for tests and benchmarks only. */
export interface WorkerFaults {
  /** Arms a fault in the worker: `exit`/`throw` kill it during its next batch, `stall` holds batches back. */
  inject(fault: InjectedFault): Promise<void>;
}

export interface ModelWorker {
  /**
   * Whether a running batch can be abandoned by closing the worker. False for an onnxruntime session in a
   * thread: terminating the thread mid-run aborts the whole process (DESIGN, known hazards), so a slow run
   * must be waited out. True for JS models in a thread, and for any model in its own process.
   */
  readonly interruptible: boolean;
  /** Starts the worker and loads the model; rejects (with the runtime's reason) if it cannot. */
  load(spec: ModelSpec): Promise<void>;
  /** Runs `rows` zero rows through the model once, so the first real batch pays no warm-up. */
  warmup(rows: number): Promise<Warmup>;
  /**
   * Runs one batch. Resolves with its outcome, a model failure included; rejects only when the worker itself
   * died while holding the batch (its listeners registered with {@link onDied} hear of it too).
   */
  run(batch: BatchRequest): Promise<BatchOutcome>;
  /** The worker's own counters. */
  stats(): Promise<WorkerStats>;
  /**
   * Shuts the worker down. It drains first: a batch in flight is waited for, never cut off, unless `abandon`
   * is set and the worker is {@link interruptible} (recycling a hung JS model). After close, no death is
   * reported.
   */
  close(options?: { abandon?: boolean }): Promise<void>;
  /** Calls `listener` once if the worker dies, between batches or during one. */
  onDied(listener: (error: Error) => void): void;
  /** Present on workers that support fault injection (tests and benchmarks). */
  readonly faults?: WorkerFaults;
}

/** Makes the worker for one replica: a new one on each (re)start. */
export type CreateModelWorker = (spec: ModelSpec) => ModelWorker;
