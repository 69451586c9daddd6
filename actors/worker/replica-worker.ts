/**
 * The code that runs inside a replica's worker thread (a Piscina worker). Its {@link ModelHost} holds the model
 * sessions and runs the batches (the same host a child process or a model container uses); this file answers
 * `infer` tasks (the data plane) and serves {@link WorkerControl} over comlink (the control plane).
 * It imports only the model runtimes and the wire protocol.
 *
 * Model errors are returned as `{ ok: false }` results, never thrown: a rejected Piscina task therefore always
 * means the worker itself died, which is the replica actor's signal to fail over and be restarted.
 */
import { threadId } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { ModelHost } from './model-host.js';
import type { InferResult, InferTask, WorkerControl, WorkerStats, WorkerTask } from './protocol.js';

const host = new ModelHost();

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
  const result = await host.runBatch(task.modelKey, task.dtype, task.rows, task.input);
  if (!result.ok) return result;
  const { output, outputSize, computeMs, stalledMs } = result;
  // An output that is a view into a larger buffer is copied, so exactly its bytes are transferred.
  const own = output.byteOffset === 0 && output.byteLength === output.buffer.byteLength ? output : output.slice();
  const buffer = own.buffer as ArrayBuffer;
  // The input goes back too (the model is done with it), for the replica's next batch. Not if the output is a
  // view of it (a JS model may answer in place): then it travels once, as the output.
  const input = task.input;
  if (input === buffer || input.byteLength === 0) {
    return move(new TransferredResult({ ok: true, output: buffer, outputSize, computeMs, stalledMs }, [buffer]) as never) as unknown as TransferredResult;
  }
  return move(new TransferredResult({ ok: true, output: buffer, outputSize, computeMs, stalledMs, input }, [buffer, input]) as never) as unknown as TransferredResult;
}

const control: WorkerControl = {
  load: (spec) => host.load(spec),
  warmup: (key, rows) => host.warmup(key, rows),
  async stats(): Promise<WorkerStats> {
    return { ...host.stats(), threadId };
  },
  async injectFault(fault) {
    host.inject(fault);
  },
};

export default async function handle(task: WorkerTask): Promise<unknown> {
  if (task.type === 'infer') return infer(task);
  Comlink.expose(control, nodeEndpoint(task.port as never));
  return true;
}
