import { performance } from 'node:perf_hooks';
import { decodeFrame, encodeFrame, ownBuffer } from '../../actors/worker/batch-frame.js';
import type { BatchOutcome, BatchRequest, ModelSpec, ModelWorker, Warmup, WorkerStats } from '../../actors/worker/model-worker.js';
import { ContainerDirectory } from './container-directory.js';
import type { ContainerAnnouncement } from './container-protocol.js';

export interface NatsModelWorkerOptions {
  /** NATS server URL(s), comma-separated. */
  nats: string;
  /** How long loading waits for a container of the version to be announced, ms. */
  claimWaitMs: number;
  /**
   * Added to a batch's time left to make its request timeout, ms: a container that has not answered by then
   * is taken for dead (SIGKILLed mid-batch, or cut off), and the batch is handed back.
   */
  graceMs: number;
}

/**
 * A model worker that is a model container somewhere on NATS (`deployModel({ remote: { nats } })`). The replica
 * (queue, AIMD, admission, deadlines) stays in this process; each batch is one NATS request to the container's
 * own subject, as a binary frame (actors/worker/batch-frame.ts).
 *
 * A container that stops answering is a dead worker, exactly as a thread that dies: "no responders" (nobody on
 * the subject), a request timeout (the batch's time left plus `graceMs`), or its announcement gone from the
 * bucket. The replica hands the batch back (each query retried once elsewhere, or answered with the default
 * output) and the supervisor restarts it, which claims a container again.
 */
export class NatsModelWorker implements ModelWorker {
  readonly interruptible = true;
  readonly #options: NatsModelWorkerOptions;
  #directory: ContainerDirectory | undefined;
  #container: ContainerAnnouncement | undefined;
  #spec: ModelSpec | undefined;
  #stopWatching: (() => void) | undefined;
  #inFlight: Promise<unknown> | undefined;
  #closed = false;
  #dead = false;
  /** Rejects the warm-up in hand, if any, when the container's announcement goes. */
  #abandonWarmup: ((error: Error) => void) | undefined;
  readonly #diedListeners: ((error: Error) => void)[] = [];
  readonly #stats = { batches: 0, rows: 0, computeMs: 0 };

  constructor(options: NatsModelWorkerOptions) {
    this.#options = options;
  }

  /** The container this worker sends to (after load). */
  get container(): ContainerAnnouncement | undefined {
    return this.#container;
  }

  async load(spec: ModelSpec): Promise<void> {
    if (this.#directory !== undefined) throw new Error(`worker already holds ${this.#spec?.key}; a remote model worker loads one model`);
    this.#spec = spec;
    const directory = await ContainerDirectory.acquire(this.#options.nats);
    if (this.#closed) {
      directory.release();
      throw new Error('the worker was closed while loading');
    }
    this.#directory = directory;
    const at = spec.key.lastIndexOf('@');
    const container = await directory.claim(spec.key.slice(0, at), spec.key.slice(at + 1), this.#options.claimWaitMs);
    this.#container = container;
    if (container.inputDtype !== spec.inputDtype || container.featureShape.join(',') !== spec.featureShape.join(',')) {
      throw new Error(`container ${container.id} of ${spec.key} takes ${container.inputDtype} [${container.featureShape.join(',')}]; this frontend sends ${spec.inputDtype} [${spec.featureShape.join(',')}]`);
    }
    this.#stopWatching = directory.onGone(container.id, () => {
      const death = new Error(`container ${container.id} of ${spec.key} is no longer announced (stopped, or its heartbeat expired)`);
      // A warm-up need not wait: a container cut off (its heartbeat expired) would hold it for its whole timeout.
      this.#abandonWarmup?.(death);
      // A batch in hand is still answered by a draining container: die once it settles.
      if (this.#inFlight === undefined) this.#died(death);
      else void this.#inFlight.finally(() => this.#died(death));
    });
  }

  async warmup(rows: number): Promise<Warmup> {
    const features = this.#loaded().featureShape.reduce((a, b) => a * b, 1);
    const started = performance.now();
    const gone = new Promise<never>((_, reject) => {
      this.#abandonWarmup = reject;
    });
    let outcome: BatchOutcome;
    try {
      outcome = await Promise.race([this.run({ input: new ArrayBuffer(rows * features * 4), rows, dtype: this.#loaded().inputDtype, timeLeftMs: 10_000 }), gone]);
    } finally {
      this.#abandonWarmup = undefined;
    }
    if (!outcome.ok) throw new Error(`warm-up on container ${this.#container?.id} failed: ${outcome.error.message}`);
    return { ms: performance.now() - started, outputSize: outcome.outputSize };
  }

  run(batch: BatchRequest): Promise<BatchOutcome> {
    const directory = this.#directory;
    const container = this.#container;
    if (directory === undefined || container === undefined || this.#closed || this.#dead) return Promise.reject(new Error('the worker is closed'));
    if (!directory.connected) {
      const death = new Error(`container ${container.id} of ${container.model}@${container.version} is out of reach: the NATS connection is down`);
      this.#died(death);
      return Promise.reject(death);
    }
    const frame = encodeFrame({ kind: 'request', id: 0, modelKey: this.#loaded().key, rows: batch.rows, dtype: batch.dtype, timeLeftMs: batch.timeLeftMs, payload: new Uint8Array(batch.input) });
    const outcome = directory.nc.request(container.subject, frame, { timeout: Math.max(1, Math.ceil(batch.timeLeftMs + this.#options.graceMs)) }).then(
      (reply): BatchOutcome => {
        const answer = decodeFrame(reply.data);
        if (answer.kind === 'reply') {
          this.#stats.batches++;
          this.#stats.rows += batch.rows;
          this.#stats.computeMs += answer.computeMs;
          return { ok: true, output: ownBuffer(answer.payload), outputSize: answer.outputSize, computeMs: answer.computeMs, stalledMs: answer.stalledMs };
        }
        if (answer.kind === 'error') return { ok: false, error: answer.error, computeMs: answer.computeMs };
        throw new Error(`container ${container.id} answered with a ${answer.kind} frame`);
      },
      (error: unknown) => {
        // No responders, a timeout, a closed connection: the container is as good as dead for this replica.
        const cause = error instanceof Error ? error : new Error(String(error));
        // Cut off, killed or hung: the next claim (this replica's restart, too) prefers another container.
        directory.suspect(container.id);
        const death = new Error(`container ${container.id} of ${container.model}@${container.version} did not answer a batch of ${batch.rows}: ${describe(cause)}`, { cause });
        this.#died(death);
        throw death;
      },
    );
    const settled = outcome.then(
      () => {},
      () => {},
    );
    this.#inFlight = settled;
    void settled.then(() => {
      if (this.#inFlight === settled) this.#inFlight = undefined;
    });
    return outcome;
  }

  async stats(): Promise<WorkerStats> {
    return { threadId: 0, models: this.#spec === undefined ? [] : [this.#spec.key], ...this.#stats, heapUsedBytes: 0 };
  }

  async close(options: { abandon?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#dead && options.abandon !== true) await this.#inFlight;
    this.#stopWatching?.();
    if (this.#container !== undefined) this.#directory?.unclaim(this.#container.id);
    this.#directory?.release();
    this.#directory = undefined;
  }

  onDied(listener: (error: Error) => void): void {
    this.#diedListeners.push(listener);
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

function describe(error: Error): string {
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`;
}
