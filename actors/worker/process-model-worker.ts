import { type ChildProcess, fork } from 'node:child_process';
import type { Socket } from 'node:net';
import { decodeFrame, encodeFrame, FrameReader, lengthPrefix, ownBuffer } from './batch-frame.js';
import type { BatchOutcome, BatchRequest, ModelWorker, Warmup, WorkerFaults } from './model-worker.js';
import type { ControlReply, ControlRequest } from './process-protocol.js';
import { BATCH_PIPE_FD } from './process-protocol.js';
import type { InjectedFault, ModelSpec, WireError, WorkerStats } from './protocol.js';

const entryFile = new URL('./process-worker-entry.js', import.meta.url);

/** How long a drained child may take to exit before it is killed. */
const EXIT_GRACE_MS = 2_000;

export interface ProcessModelWorkerOptions {
  /** Old-generation heap limit of the child, MB (`--max-old-space-size`). */
  maxOldGenerationSizeMb?: number;
}

/** An error the child reported, as an Error of this process (the name, code and cause survive). */
function revive(wire: WireError): Error {
  const error = new Error(wire.message, wire.cause === undefined ? {} : { cause: revive(wire.cause) });
  error.name = wire.name;
  if (wire.code !== undefined) (error as { code?: string }).code = wire.code;
  return error;
}

/**
 * A model worker in a child process of this one (`deployModel({ isolation: 'process' })`): a native crash
 * of the model runtime (onnxruntime aborting, a segfault, SIGKILL) ends only the child; the replica hands
 * its batch back and the supervisor starts a new child.
 *
 * Batches cross a pipe as length-prefixed binary frames (batch-frame.ts: a small header, then the raw
 * tensor); load, warm-up, stats and faults go over the IPC channel as small JSON messages. Unlike a thread,
 * a process can be killed mid-run safely, so it is always {@link interruptible}.
 */
export class ProcessModelWorker implements ModelWorker {
  readonly interruptible = true;
  readonly #options: ProcessModelWorkerOptions;
  #spec: ModelSpec | undefined;
  #child: ChildProcess | undefined;
  #pipe: Socket | undefined;
  #exited: Promise<void> | undefined;
  #nextId = 1;
  readonly #control = new Map<number, { resolve: (reply: ControlReply) => void; reject: (error: Error) => void }>();
  readonly #batches = new Map<number, { resolve: (outcome: BatchOutcome) => void; reject: (error: Error) => void }>();
  #inFlight: Promise<void> | undefined;
  #closed = false;
  #dead = false;
  readonly #diedListeners: ((error: Error) => void)[] = [];
  readonly faults: WorkerFaults = {
    inject: async (fault: InjectedFault) => {
      await this.#call({ id: 0, op: 'inject', fault });
    },
  };

  constructor(options: ProcessModelWorkerOptions = {}) {
    this.#options = options;
  }

  /** The child's process id (undefined before load). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async load(spec: ModelSpec): Promise<void> {
    if (this.#child !== undefined) throw new Error(`worker already holds ${this.#spec?.key}; a process model worker loads one model`);
    this.#spec = spec;
    const execArgv = this.#options.maxOldGenerationSizeMb === undefined ? [] : [`--max-old-space-size=${Math.ceil(this.#options.maxOldGenerationSizeMb)}`];
    const child = fork(entryFile, [spec.key], { stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'], execArgv, serialization: 'json' });
    this.#child = child;
    const pipe = child.stdio[BATCH_PIPE_FD] as Socket;
    this.#pipe = pipe;
    const reader = new FrameReader();
    pipe.on('data', (chunk: Buffer) => {
      for (const bytes of reader.push(chunk)) this.#onFrame(bytes);
    });
    pipe.on('error', () => {});
    child.on('message', (reply: ControlReply) => {
      const waiting = this.#control.get(reply.id);
      this.#control.delete(reply.id);
      waiting?.resolve(reply);
    });
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const error = new Error(`model process ${child.pid ?? '?'} of ${spec.key} ${signal === null ? `exited with code ${code}` : `was killed by ${signal}`}`);
        for (const waiting of [...this.#control.values(), ...this.#batches.values()]) waiting.reject(error);
        this.#control.clear();
        this.#batches.clear();
        this.#died(error);
        resolve();
      });
    });
    child.on('error', (error) => this.#died(error));
    await this.#call({ id: 0, op: 'load', spec });
  }

  async warmup(rows: number): Promise<Warmup> {
    return (await this.#call({ id: 0, op: 'warmup', key: this.#loaded().key, rows })) as Warmup;
  }

  run(batch: BatchRequest): Promise<BatchOutcome> {
    const pipe = this.#pipe;
    if (pipe === undefined || this.#closed || this.#dead) return Promise.reject(new Error('the worker is closed'));
    const id = this.#nextId++;
    const frame = encodeFrame({ kind: 'request', id, modelKey: this.#loaded().key, rows: batch.rows, dtype: batch.dtype, timeLeftMs: batch.timeLeftMs, payload: new Uint8Array(batch.input) });
    const outcome = new Promise<BatchOutcome>((resolve, reject) => this.#batches.set(id, { resolve, reject }));
    pipe.write(lengthPrefix(frame));
    pipe.write(frame);
    this.#inFlight = outcome.then(
      () => {},
      () => {},
    );
    return outcome;
  }

  async stats(): Promise<WorkerStats> {
    return (await this.#call({ id: 0, op: 'stats' })) as WorkerStats;
  }

  async close(options: { abandon?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const child = this.#child;
    if (child === undefined) return;
    if (!this.#dead && options.abandon !== true) await this.#inFlight;
    if (child.exitCode === null && child.signalCode === null) {
      if (options.abandon === true) child.kill('SIGKILL');
      else {
        // Drained: closing the pipe and the IPC channel makes the child exit on its own.
        this.#pipe?.end();
        if (child.connected) child.disconnect();
        const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
        timer.unref();
      }
    }
    await this.#exited;
  }

  onDied(listener: (error: Error) => void): void {
    this.#diedListeners.push(listener);
  }

  #onFrame(bytes: Buffer): void {
    let frame;
    try {
      frame = decodeFrame(bytes);
    } catch (error) {
      // A child that speaks garbage is as good as dead.
      this.#child?.kill('SIGKILL');
      this.#died(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    const waiting = this.#batches.get(frame.id);
    this.#batches.delete(frame.id);
    if (waiting === undefined) return;
    if (frame.kind === 'reply') {
      waiting.resolve({ ok: true, output: ownBuffer(frame.payload), outputSize: frame.outputSize, computeMs: frame.computeMs, stalledMs: frame.stalledMs });
    } else if (frame.kind === 'error') {
      waiting.resolve({ ok: false, error: frame.error, computeMs: frame.computeMs });
    }
  }

  async #call(request: ControlRequest): Promise<unknown> {
    const child = this.#child;
    if (child === undefined || this.#closed || this.#dead || !child.connected) throw new Error('the worker is not running (not loaded yet, closed, or dead)');
    const id = this.#nextId++;
    const reply = await new Promise<ControlReply>((resolve, reject) => {
      this.#control.set(id, { resolve, reject });
      child.send({ ...request, id });
    });
    if (!reply.ok) throw revive(reply.error);
    return reply.value;
  }

  #died(error: Error): void {
    if (this.#dead || this.#closed) return;
    this.#dead = true;
    for (const listener of this.#diedListeners) listener(error);
  }

  #loaded(): ModelSpec {
    if (this.#spec === undefined) throw new Error('the worker has no model loaded');
    return this.#spec;
  }
}
