/**
 * The messages between a thread model worker (main thread, {@link ../worker/thread-model-worker.ts}) and its
 * worker thread (replica-worker.ts). Types only.
 *
 * Data plane: Piscina tasks. A batch crosses as one contiguous typed array in a transferred ArrayBuffer and
 * its output comes back the same way. Control plane: comlink calls on a MessagePort handed to the worker in
 * a `connect` task ({@link WorkerControl}).
 */
import type { MessagePort } from 'node:worker_threads';

export type TensorDtype = 'float32' | 'int32';

/** What a worker needs to load one model version. */
export interface ModelSpec {
  /** `<name>@<version>`; infer tasks name the model by it. */
  key: string;
  kind: 'onnx' | 'js';
  /** Absolute path, already confined to the repository by the main thread. */
  path: string;
  inputDtype: TensorDtype;
  /** One query's shape, no batch dimension. */
  featureShape: number[];
  /** ONNX input and output names; default the session's first. */
  inputName?: string;
  outputName?: string;
  intraOpNumThreads: number;
}

export interface ConnectTask {
  type: 'connect';
  port: MessagePort;
}

export interface InferTask {
  type: 'infer';
  modelKey: string;
  rows: number;
  dtype: TensorDtype;
  /** rows x features, row-major; transferred, so the sender's copy is detached. */
  input: ArrayBuffer;
}

export type WorkerTask = ConnectTask | InferTask;

/**
 * An error flattened to cross a thread, a process or a network: its own name, code (when it has one), message
 * and stack, and its cause chain. The top level of a failed batch is a catalogue error (`ModelRuntimeError`,
 * `ModelLoadError`, by `code`) made in the worker; its `cause` is what the model itself threw.
 */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  cause?: WireError;
}

export type InferResult =
  | {
      ok: true;
      /** rows x outputSize float32 values, transferred. */
      output: ArrayBuffer;
      outputSize: number;
      /** Time inside the model (session.run or predict), ms. */
      computeMs: number;
      /** Time held back by fault injection, ms (0 normally). */
      stalledMs: number;
      /** The task's input buffer, transferred back so the replica fills it again for its next batch. */
      input?: ArrayBuffer;
    }
  | { ok: false; error: WireError; computeMs: number };

export interface WorkerStats {
  threadId: number;
  models: string[];
  batches: number;
  rows: number;
  computeMs: number;
  heapUsedBytes: number;
}

/** Faults a test can arm in a worker. `exit` and `throw` kill the worker in the middle of its next batch. */
export type InjectedFault = { kind: 'exit' } | { kind: 'throw' } | { kind: 'stall'; ms: number; probability: number; seed: number };

/** The worker's control plane, called over comlink. */
export interface WorkerControl {
  load(spec: ModelSpec): Promise<void>;
  /** Runs `rows` zero rows through the model once, so the first real batch pays no warm-up. */
  warmup(key: string, rows: number): Promise<{ ms: number; outputSize: number }>;
  stats(): Promise<WorkerStats>;
  injectFault(fault: InjectedFault): Promise<void>;
}
