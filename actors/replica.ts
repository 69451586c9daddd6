import type { ResourceLimits } from 'node:worker_threads';
import { Actor, type FailureSink } from '../src/kernel/actor.js';
import { decideAdmission, decideUnitAdmission, type AdmissionDecision, type AdmissionState } from '../src/batching/admission.js';
import { AimdController } from '../src/batching/aimd-controller.js';
import { ArrivalRate } from '../src/batching/arrival-rate.js';
import { BatchLatencyModel } from '../src/batching/batch-latency-model.js';
import { BatchQueue, urgency } from '../src/batching/batch-queue.js';
import { FinishMargin } from '../src/batching/finish-margin.js';
import type { Clock, TimerHandle } from '../src/kernel/clock.js';
import { BatchTooLargeError, DeadlineExceededError, InvalidOptionError, ModelLoadError, OverloadedError, ReplicaFailedError, ShuttingDownError, withoutStack } from '../src/errors.js';
import { replicaDefaults, type FaultOptions, type ResolvedBatchingOptions } from '../src/config/options.js';
import type { Supervised } from '../src/kernel/supervisor.js';
import type { BatchOutcome, CreateModelWorker, InjectedFault, ModelSpec, ModelWorker } from './worker/model-worker.js';
import { NatsModelWorker } from '../src/cluster/nats-model-worker.js';
import { ProcessModelWorker } from './worker/process-model-worker.js';
import { ThreadModelWorker } from './worker/thread-model-worker.js';
import { reviveWireError } from './worker-error.js';
import type { BatchEvent } from '../src/api.js';
import type { ReplicaHandle, ReplicaHost, ReplicaQuery, ReplicaUnit } from './contracts.js';
import { ROOT_CONTEXT, SpanStatusCode, trace, type Link, type Span, type Tracer } from '@opentelemetry/api';

type ReplicaMessage =
  | { type: 'query'; query: ReplicaQuery }
  | { type: 'unit'; unit: ReplicaUnit }
  | { type: 'cancel'; query: ReplicaQuery }
  | { type: 'wake' }
  | { type: 'batchDone'; batch: ReplicaQuery[]; outcome: BatchOutcome; startedAt: number }
  /** A batch ran longer than the batch timeout. */
  | { type: 'batchTimeout'; worker: ModelWorker; batch: ReplicaQuery[] }
  /** The worker died: its batch was lost (`batch` is what it held) or it died between batches (`batch` absent). */
  | { type: 'workerDied'; worker: ModelWorker; batch: ReplicaQuery[] | undefined; error: unknown };

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
  /** Worker thread memory limits (Node's `resourceLimits`) for the default thread worker. */
  resourceLimits?: ResourceLimits;
  /** Makes the worker that runs the model, on each (re)start. Default: a {@link ThreadModelWorker}. */
  createWorker?: CreateModelWorker;
  /** Where the default worker runs the model: a thread of this process, or a child process (survives native crashes). */
  isolation?: 'thread' | 'process';
  /** When set, the default worker is a model container over NATS (src/cluster/nats-model-worker.ts). */
  remote?: { nats: string; claimWaitMs: number; graceMs: number };
  onBatch?: (event: BatchEvent) => void;
}

/**
 * Admission's margin for an answer to leave: from the batch's return to this replica's mailbox until the
 * router hears of it (synchronous mailboxes and promise callbacks: well under a millisecond, unless the event
 * loop is busy, which is when it matters).
 */
const ANSWER_LEAVE_MS = 0.5;
/** The arrival rate's time constant: about ten batches of a model near the 20 ms SLO's budget. */
const ARRIVAL_TAU_MS = 100;

/**
 * A model replica actor. It owns one {@link ModelWorker} (by default a worker thread holding an onnxruntime
 * session or a JS model); its mailbox feeds its batch queue, and it runs its own AIMD controller.
 *
 * One batch runs at a time. Queries that arrive meanwhile queue up and form the next batch, so batching
 * happens by itself under load; `maxQueueDelayMicroseconds` adds Clipper's delayed batching when idle.
 *
 * If the worker dies mid-batch, the batch and the queue are handed back to the host (which retries them on
 * another replica) and the supervisor restarts this replica: a fresh worker, model reloaded and warmed up.
 * A batch that overruns `batchTimeoutMs` is a hang: an interruptible worker (a JS model) is recycled the same
 * way; an onnxruntime run cannot be cut off, so its queries are handed back and the replica takes no more
 * until the run returns.
 */
export class Replica extends Actor<ReplicaMessage> implements Supervised, ReplicaHandle {
  readonly #settings: ReplicaSettings;
  readonly #queue = new BatchQueue<ReplicaQuery>();
  readonly #aimd: AimdController;
  readonly #latency = new BatchLatencyModel();
  #worker: ModelWorker | undefined;
  #running: ReplicaQuery[] | undefined;
  /** A batch input buffer a worker handed back, filled again by the next batch that fits in it. */
  #spare: ArrayBuffer | undefined;
  /** Spans of batches running with traced queries in them, ended when the batch comes back (or is lost). */
  readonly #batchSpans = new WeakMap<ReplicaQuery[], Span>();
  #runningStartedAt = 0;
  /** The finish time admission predicted for each query it admitted (for the prediction-error metric). */
  readonly #promised = new WeakMap<ReplicaQuery, number>();
  /** Admission's margin, from recent finish errors (actual minus predicted, ms): each batch's worst admitted query. */
  readonly #finishMargin = new FinishMargin();
  // Admission's state, refreshed in place per decision (see #admissionState).
  readonly #queuedDeadlines: number[] = [];
  readonly #queuedLevels: number[] = [];
  readonly #runningView = { rows: 0, startedAt: 0 };
  readonly #growthView = { step: 0, ceiling: 0 };
  readonly #state: AdmissionState = { queued: [], levels: [], running: undefined, limit: 1, growth: undefined, latency: this.#latency, leaveMs: ANSWER_LEAVE_MS, marginMs: 0, arrivalsPerMs: 0, saturated: false };
  /** When this replica last refused a query because its plan did not fit (not for leading a batch short): saturation. */
  #lateRefusalAt = Number.NEGATIVE_INFINITY;
  /** Queries (and a client batch's rows) arriving at this replica, admitted or not: admission's arrival rate. */
  readonly #arrivals = new ArrivalRate(ARRIVAL_TAU_MS);
  /** Queries of the running batch not cancelled since it started. */
  #runningLive = 0;
  #wake: TimerHandle | undefined;
  #wakeAt = Number.POSITIVE_INFINITY;
  #drained: (() => void) | undefined;
  #retired = false;
  #restarts = 0;
  #outputSize = 0;
  /** A batch overran its timeout and could not be cut off: take no queries until it returns. */
  #stuck = false;
  /** Batches already handed back after a death, so the late rejection of their run does not hand them back twice. */
  readonly #orphanedBatches = new WeakSet<ReplicaQuery[]>();
  /**
   * `admitted`/`refused` count admission's decisions (`refusedQueueFull` the refusals at maxQueueSize, the rest
   * would have been late); `expired` counts admitted queries dropped unrun because they could no longer make
   * their deadline; `cancelled` counts queued queries dropped unrun because their caller went away. A client
   * batch counts its rows (`units` the batches admitted whole; `refusedTooLarge` the rows of those that could
   * never fit).
   */
  readonly counters = { batches: 0, rows: 0, admitted: 0, expired: 0, refused: 0, refusedQueueFull: 0, refusedTooLarge: 0, units: 0, cancelled: 0, failedBatches: 0, workerDeaths: 0, timeouts: 0 };

  constructor(settings: ReplicaSettings) {
    super(settings.name, settings.supervisor);
    this.#settings = settings;
    this.#aimd = new AimdController(settings.batching);
  }

  /** Ready for queries: running, not retired, not stuck on a batch that overran. */
  get ready(): boolean {
    return this.status === 'running' && !this.#retired && !this.#stuck;
  }

  /** Whether the supervisor has given up on this replica. */
  get retired(): boolean {
    return this.#retired;
  }

  /** Queued queries plus the rows of the running batch, cancelled copies excluded: the balancer's measure of load. */
  get outstanding(): number {
    return this.#queue.size + this.#runningLive;
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

  /** Testing: arms a fault in the worker, through its fault-injection part. */
  async injectFault(fault: InjectedFault): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined) throw new ShuttingDownError(`replica ${this.name} has no worker`);
    if (worker.faults === undefined) throw new InvalidOptionError(`replica ${this.name}'s worker takes no injected faults`);
    await worker.faults.inject(fault);
  }

  /**
   * Whether admission would take a query due at `deadline` now (no side effects): the replica set asks before
   * sending a query another replica refused, so a refusal costs no second hop when no replica has room.
   */
  hasRoom(deadline: number, rows = 1): boolean {
    if (!this.ready) return false;
    const now = this.#settings.clock.now();
    if (rows === 1) return this.#decide(now, deadline).admit;
    return decideUnitAdmission(now, deadline, rows, this.#admissionState(now), this.#settings.batching).admit;
  }

  /**
   * Admission for a query not yet read (the HTTP edge asks before it parses a request): when this replica's
   * admission would refuse a query due at `deadline` now, the query is counted as arrived and refused, as
   * {@link submit} would have counted it, and the refusal is returned; when it would admit it, nothing is counted
   * and the query comes through {@link submit}. Decided before the arrival is counted, so an admitted query
   * arrives once.
   */
  refuseUnread(deadline: number): OverloadedError | undefined {
    if (!this.ready) return undefined;
    const now = this.#settings.clock.now();
    const decision = this.#decide(now, deadline);
    if (decision.admit) return undefined;
    this.#arrivals.arrive(now);
    return this.#refused(decision, now);
  }

  /** Enqueues a query; it settles through its own resolve/reject. */
  submit(query: ReplicaQuery): void {
    this.tell({ type: 'query', query });
  }

  /** Admits a client batch whole or refuses it whole (see {@link decideUnitAdmission}); its rows then queue unadmitted. */
  submitUnit(unit: ReplicaUnit): void {
    this.tell({ type: 'unit', unit });
  }

  /**
   * Drops a copy answered elsewhere: it stops counting as queued or outstanding at once, and is never run if
   * still queued (a copy already running finishes; its answer is ignored by whoever cancelled it).
   */
  cancel(query: ReplicaQuery): void {
    query.cancelled = true;
    this.post({ type: 'cancel', query });
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
    void this.#closeWorker();
  }

  protected override async onStart(): Promise<void> {
    await this.#closeWorker();
    const settings = this.#settings;
    const limits = settings.resourceLimits;
    const create: CreateModelWorker =
      settings.createWorker ??
      (settings.remote !== undefined
        ? (_spec: ModelSpec) => new NatsModelWorker(settings.remote as { nats: string; claimWaitMs: number; graceMs: number })
        : settings.isolation === 'process'
        ? (_spec: ModelSpec) => new ProcessModelWorker(limits?.maxOldGenerationSizeMb === undefined ? {} : { maxOldGenerationSizeMb: limits.maxOldGenerationSizeMb })
        : (_spec: ModelSpec) => new ThreadModelWorker(limits === undefined ? {} : { resourceLimits: limits }));
    const worker = create(settings.spec);
    this.#worker = worker;
    this.#stuck = false;
    worker.onDied((error) => this.post({ type: 'workerDied', worker, batch: undefined, error }));
    try {
      await worker.load(settings.spec);
      const faults = settings.faults;
      if (faults !== undefined && (faults.stallProbability ?? 0) > 0 && worker.faults === undefined) {
        throw new InvalidOptionError(`faults are configured for replica ${this.name}, and its worker takes no injected faults`);
      }
      this.#outputSize = await this.#warmUp(worker, settings.warmupRows ?? replicaDefaults.warmupRows);
      // After the warm-ups: they measure the model for the latency model; the injected stalls are for served batches.
      if (faults !== undefined && (faults.stallProbability ?? 0) > 0) {
        await worker.faults?.inject({ kind: 'stall', ms: faults.stallMs ?? 0, probability: faults.stallProbability ?? 0, seed: faults.seed ?? 1 });
      }
    } catch (error) {
      throw new ModelLoadError(`replica ${this.name} could not load ${settings.spec.path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
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
    await this.#closeWorker();
  }

  protected override undeliverable(message: ReplicaMessage, error: unknown): void {
    if (message.type === 'query' || message.type === 'unit') {
      const failure = error instanceof ShuttingDownError ? new ReplicaFailedError(`replica ${this.name} is not taking queries (${this.status})`, { cause: error }) : error;
      if (message.type === 'query') message.query.reject(failure);
      else message.unit.refuse(failure);
    } else if (message.type === 'batchDone') {
      // The batch finished after the replica failed or stopped: its answers are still good.
      this.#finish(message.batch, message.outcome, message.startedAt);
    } else if (message.type === 'workerDied') {
      this.#handBack(message.batch, message.error);
    } else if (message.type === 'cancel') {
      this.#cancel(message.query);
    }
  }

  protected receive(message: ReplicaMessage): void {
    switch (message.type) {
      case 'query':
        this.#admit(message.query);
        return;
      case 'unit':
        this.#admitUnit(message.unit);
        return;
      case 'cancel':
        this.#cancel(message.query);
        return;
      case 'wake':
        this.#wakeAt = Number.POSITIVE_INFINITY;
        this.#wake = undefined;
        this.#pump();
        return;
      case 'batchDone':
        this.#finish(message.batch, message.outcome, message.startedAt);
        this.#pump();
        return;
      case 'batchTimeout': {
        if (message.worker !== this.#worker || this.#running !== message.batch) return;
        this.counters.timeouts++;
        const error = new ReplicaFailedError(`replica ${this.name}: a batch of ${message.batch.length} ran past the ${this.#settings.batchTimeoutMs} ms batch timeout`);
        if (message.worker.interruptible) {
          // A hung JS model: recycle the worker. Cutting it off is safe, no native run is in flight.
          this.post({ type: 'workerDied', worker: message.worker, batch: undefined, error });
          return;
        }
        // A slow onnxruntime run cannot be cut off (terminating its thread aborts the process): hand its queries
        // to the other replicas and take no more until the run comes back.
        this.#stuck = true;
        this.#orphanedBatches.add(message.batch);
        this.#settings.host.orphaned([...message.batch, ...this.#queue.drainAll()], this.name, error);
        return;
      }
      case 'workerDied': {
        if (message.worker !== this.#worker) {
          // A worker this replica already replaced or closed; only its batch, if any, needs handing back.
          this.#handBack(message.batch, message.error);
          return;
        }
        this.counters.workerDeaths++;
        const running = this.#running;
        this.#endBatchSpan(running ?? message.batch, undefined, message.error);
        this.#running = undefined;
        this.#runningLive = 0;
        // A batch stuck past its timeout was handed back already; its queries must not be handed back twice.
        const lost = running === undefined || this.#orphanedBatches.has(running) ? [] : running;
        if (running !== undefined) this.#orphanedBatches.add(running);
        const orphans = [...lost, ...this.#queue.drainAll()];
        this.#wake?.cancel();
        this.fail(new ReplicaFailedError(`replica ${this.name}'s worker died: ${message.error instanceof Error ? message.error.message : String(message.error)}`, { cause: message.error }));
        this.#settings.host.orphaned(orphans, this.name, message.error);
        this.#drained?.();
        return;
      }
    }
  }

  /**
   * Runs warm-up batches at several sizes (the configured rows, 1, and in between), twice each, through the
   * worker's warm-up call and then its batch path, and seeds the latency model with their round trips: the first run of each size is discounted (it pays one-off costs), the second
   * measures. A fresh replica then neither admits a flood on no estimate nor refuses on its first slow batch.
   * Returns the values per output row.
   */
  async #warmUp(worker: ModelWorker, rows: number): Promise<number> {
    const sizes = [...new Set([rows, 1, Math.max(1, Math.round(rows / 2))])];
    const runs: [number, number][] = [];
    let outputSize = 0;
    for (let round = 0; round < 2; round++) {
      for (const size of sizes) {
        // Timed here, round trip included (the thread hop costs a real batch too), not the worker's own compute time.
        const started = this.#settings.clock.now();
        const warm = await worker.warmup(size);
        outputSize = warm.outputSize;
        runs.push([size, this.#settings.clock.now() - started]);
      }
    }
    // The data plane (the batch path real queries take) has cold parts of its own that the control plane's
    // warm-up does not touch: its first batch took 23 ms for a model that answers in 0.05 ms. Two batches of
    // each size through it, timed the same way; a model failure here fails the load like any warm-up error.
    const features = this.#settings.spec.featureShape.reduce((a, b) => a * b, 1);
    const dtype = this.#settings.spec.inputDtype;
    for (let round = 0; round < 2; round++) {
      for (const size of [1, rows]) {
        const input = (dtype === 'int32' ? new Int32Array(size * features) : new Float32Array(size * features)).buffer as ArrayBuffer;
        const started = this.#settings.clock.now();
        const outcome = await worker.run({ input, rows: size, dtype, timeLeftMs: this.#settings.batchTimeoutMs });
        if (!outcome.ok) throw reviveWireError(outcome.error);
        runs.push([size, this.#settings.clock.now() - started]);
      }
    }
    this.#latency.seed(runs);
    return outputSize;
  }

  /**
   * Admission's margin: a high quantile of how much later than planned recent batches' worst admitted queries
   * finished ({@link FinishMargin} says which, over how long, and how a stall counts). The plan is built from the
   * latency model's fit; how its errors add up over a query's path (the running batch, its own, the hops
   * between) is measured here on the whole path, not assumed per batch. Until FinishMargin has enough batches:
   * twice the per-batch residual quantile (two batches: the running one and its own).
   */
  #finishMarginMs(now: number): number {
    return this.#finishMargin.marginMs(now, 2 * this.#latency.slackMs);
  }

  /**
   * What admission knows now. One state object per replica, refreshed in place (the queue's deadlines and
   * levels written into kept arrays): admission runs on every query and is synchronous, so nothing holds the
   * state past the decision, and rebuilding it allocated about 2 KB a query on a deep queue (issue 10).
   */
  #admissionState(now: number): AdmissionState {
    const running = this.#running;
    const batching = this.#settings.batching;
    const state = this.#state;
    state.queued = this.#queue.deadlinesInto(this.#queuedDeadlines);
    state.levels = this.#queue.levelsInto(this.#queuedLevels);
    if (running === undefined) state.running = undefined;
    else {
      this.#runningView.rows = running.length;
      this.#runningView.startedAt = this.#runningStartedAt;
      state.running = this.#runningView;
    }
    state.limit = this.#aimd.limit;
    if (batching.mode === 'aimd') {
      this.#growthView.step = batching.additiveStep;
      this.#growthView.ceiling = Math.min(batching.maxBatchSize, this.#latency.rowsWithinHigh(this.#settings.host.latencyBudgetMs()));
      state.growth = this.#growthView;
    } else state.growth = undefined;
    state.marginMs = this.#finishMarginMs(now);
    state.arrivalsPerMs = this.#arrivals.perMs(now);
    state.saturated = now - this.#lateRefusalAt <= ARRIVAL_TAU_MS;
    return state;
  }

  #decide(now: number, deadline: number, level = Number.POSITIVE_INFINITY): AdmissionDecision {
    return decideAdmission(now, deadline, this.#admissionState(now), this.#settings.batching, level);
  }

  /** One decision for a client batch's rows; admitted, they queue without being admitted one by one. */
  #admitUnit(unit: ReplicaUnit): void {
    const live = unit.queries.filter((q) => q.cancelled !== true);
    if (live.length === 0) return;
    const rows = live.length;
    const now = this.#settings.clock.now();
    this.#arrivals.arrive(now, rows);
    const decision = decideUnitAdmission(now, unit.deadline, rows, this.#admissionState(now), this.#settings.batching, urgency(live[0] as ReplicaQuery));
    if (!decision.admit) {
      this.counters.refused += rows;
      if (decision.reason === 'queue-full') this.counters.refusedQueueFull += rows;
      if (decision.reason === 'too-late') this.#lateRefusalAt = now;
      if (decision.reason === 'never-fits') {
        this.counters.refusedTooLarge += rows;
        unit.refuse(new BatchTooLargeError(`replica ${this.name} ${decision.explanation}`, { largestRows: decision.largestRows }));
      } else {
        unit.refuse(new OverloadedError(`replica ${this.name} ${decision.explanation}`, decision.retryAfterSeconds));
      }
      return;
    }
    this.counters.admitted += rows;
    this.counters.units++;
    for (const query of live) {
      query.unitRows = rows;
      if (Number.isFinite(decision.finishAt)) this.#promised.set(query, decision.finishAt);
      this.#queue.push(query);
    }
    this.#pump();
  }

  #admit(query: ReplicaQuery): void {
    if (query.cancelled === true) return;
    const now = this.#settings.clock.now();
    this.#arrivals.arrive(now);
    const decision = this.#decide(now, query.deadline, urgency(query));
    if (!decision.admit) {
      query.reject(this.#refused(decision, now));
      return;
    }
    this.counters.admitted++;
    if (Number.isFinite(decision.finishAt)) this.#promised.set(query, decision.finishAt);
    this.#queue.push(query);
    this.#pump();
  }

  /** Counts one query refused by `decision` at `now` and returns the error it is refused with. */
  #refused(decision: Extract<AdmissionDecision, { admit: false }>, now: number): OverloadedError {
    this.counters.refused++;
    if (decision.reason === 'queue-full') this.counters.refusedQueueFull++;
    if (decision.reason === 'too-late' && decision.leadsShort !== true) this.#lateRefusalAt = now;
    return withoutStack(() => new OverloadedError(`replica ${this.name} ${decision.explanation}`, decision.retryAfterSeconds));
  }

  #cancel(query: ReplicaQuery): void {
    if (this.#queue.cancel(query)) {
      if (query.aborted === true) this.counters.cancelled++;
      return;
    }
    if (this.#running !== undefined && this.#runningLive > 0 && this.#running.includes(query)) this.#runningLive--;
  }

  /** Starts the next batch if the worker is free and the queue says so. */
  #pump(): void {
    if (this.#running !== undefined || this.#worker === undefined) return;
    const stopping = this.status === 'stopping';
    const now = this.#settings.clock.now();
    // A batch that starts with a client batch's rows takes them together (up to maxBatchSize), as admission planned.
    const unitRows = this.#queue.peek()?.unitRows ?? 0;
    const decision = this.#queue.take(now, {
      limit: unitRows > this.#aimd.limit ? Math.min(unitRows, this.#settings.batching.maxBatchSize) : this.#aimd.limit,
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
                `${(now - query.enqueuedAt).toFixed(1)} ms spent queued, a batch takes ~${this.#latency.estimateHigh(1).toFixed(1)} ms`,
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
    const worker = this.#worker as ModelWorker;
    const first = batch[0] as ReplicaQuery;
    const features = first.input.length;
    const dtype = this.#settings.spec.inputDtype;
    const rows = batch.length;
    // The buffer the worker handed back after the last batch, if this batch fits: a new 200 KB buffer per batch
    // is fresh pages to fault in and zero, and off-heap memory for the collector.
    const spare = this.#spare;
    this.#spare = undefined;
    const buffer = spare !== undefined && spare.byteLength >= rows * features * 4 ? spare : new ArrayBuffer(rows * features * 4);
    const data = dtype === 'int32' ? new Int32Array(buffer, 0, rows * features) : new Float32Array(buffer, 0, rows * features);
    let tightest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < rows; i++) {
      const query = batch[i] as ReplicaQuery;
      data.set(query.input, i * features);
      if (query.deadline < tightest) tightest = query.deadline;
    }
    this.#running = batch;
    this.#runningStartedAt = now;
    this.#runningLive = rows;
    this.#traceBatch(batch, now);
    const watchdog = this.#settings.clock.setTimeout(() => this.post({ type: 'batchTimeout', worker, batch }), this.#settings.batchTimeoutMs);
    worker.run({ input: buffer, rows, dtype, timeLeftMs: Math.max(0, tightest - now) }).then(
      (outcome) => {
        watchdog.cancel();
        this.post({ type: 'batchDone', batch, outcome, startedAt: now });
      },
      (error: unknown) => {
        watchdog.cancel();
        this.post({ type: 'workerDied', worker, batch, error });
      },
    );
  }

  /**
   * While tracing: each traced query's wait in this queue (`clipper.queue`, under its model span) and one span for
   * the batch (`clipper.batch`), linked from every traced query in it, as OpenTelemetry models batch work.
   */
  #traceBatch(batch: ReplicaQuery[], now: number): void {
    let links: Link[] | undefined;
    let tracer: Tracer | undefined;
    for (const query of batch) {
      if (query.trace === undefined) continue;
      tracer = query.trace.tracer;
      (links ??= []).push({ context: query.trace.parent });
      tracer
        .startSpan('clipper.queue', { startTime: query.enqueuedAt, attributes: { 'clipper.replica': this.name } }, trace.setSpanContext(ROOT_CONTEXT, query.trace.parent))
        .end(now);
    }
    if (tracer === undefined) return;
    this.#batchSpans.set(
      batch,
      tracer.startSpan('clipper.batch', { startTime: now, links, attributes: { 'clipper.model_key': this.#settings.spec.key, 'clipper.replica': this.name, 'clipper.batch_size': batch.length } }, ROOT_CONTEXT),
    );
  }

  /** Ends a traced batch's span: answered (with the model's compute time) or failed. */
  #endBatchSpan(batch: ReplicaQuery[] | undefined, computeMs: number | undefined, error?: unknown): void {
    const span = batch === undefined ? undefined : this.#batchSpans.get(batch);
    if (span === undefined) return;
    this.#batchSpans.delete(batch as ReplicaQuery[]);
    if (computeMs !== undefined) span.setAttribute('clipper.compute_ms', computeMs);
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    span.end(this.#settings.clock.now());
  }

  #finish(batch: ReplicaQuery[], outcome: BatchOutcome, startedAt: number): void {
    this.#endBatchSpan(batch, outcome.ok ? outcome.computeMs : undefined, outcome.ok ? undefined : outcome.error);
    // A late batch of a worker already replaced must not free the batch running on the new one.
    if (this.#running === batch) {
      this.#running = undefined;
      this.#runningLive = 0;
      this.#stuck = false;
    }
    const now = this.#settings.clock.now();
    const batchMs = now - startedAt;
    if (!outcome.ok) {
      this.counters.failedBatches++;
      // A batch handed back (it overran) is being retried elsewhere: its failure here must not fail the retry.
      if (this.#orphanedBatches.has(batch)) return;
      // A failed batch rejects its own members and nothing else; the error keeps the model's own under `cause`.
      const error = reviveWireError(outcome.error);
      for (const query of batch) query.reject(error);
      return;
    }
    if (outcome.input !== undefined) this.#spare = outcome.input;
    this.counters.batches++;
    this.counters.rows += batch.length;
    this.#latency.observe(batch.length, batchMs);
    // AIMD reads the model's own time (plus any injected stall), not the round trip: when the main thread is
    // slow to hear back (CPU contention, an event-loop stall), shrinking the batch would only cut throughput
    // when it is most needed. The round trip still feeds the latency model that deadlines use.
    // A batch past the limit was sized by a client's batch, not by AIMD: it says nothing of the limit.
    if (batch.length <= this.#aimd.limit) this.#aimd.observe(batch.length, outcome.computeMs + outcome.stalledMs, this.#settings.host.latencyBudgetMs());
    const [model = '', version = ''] = this.#settings.spec.key.split('@');
    const finishErrorsMs: number[] = [];
    let worstError = Number.NEGATIVE_INFINITY;
    for (const query of batch) {
      const promised = this.#promised.get(query);
      if (promised === undefined) continue;
      finishErrorsMs.push(now - promised);
      worstError = Math.max(worstError, now - promised);
    }
    // One sample per batch, its worst: a stall makes every query in flight late at once, and counted once per
    // query one stall filled the top of the window by itself.
    if (finishErrorsMs.length > 0) this.#finishMargin.observe(worstError, now);
    this.#settings.onBatch?.({ model, version, replica: this.name, size: batch.length, batchMs, computeMs: outcome.computeMs, limit: this.#aimd.limit, finishErrorsMs });
    const output = new Float32Array(outcome.output);
    const k = outcome.outputSize;
    for (let i = 0; i < batch.length; i++) {
      const query = batch[i] as ReplicaQuery;
      // A view per row into the batch's one output buffer (transferred from the worker, never written again), not
      // a copy: a copy is a new ArrayBuffer per query for the collector to track. The prediction cache copies
      // what it keeps into its own slabs, so it holds no batch buffer; a caller that keeps an answer's scores
      // keeps its batch's output (outputSize x batch size floats) alive with them.
      query.resolve({ scores: output.subarray(i * k, (i + 1) * k), queueMs: startedAt - query.enqueuedAt, batchMs, batchSize: batch.length, replica: this.name });
    }
  }

  #handBack(batch: ReplicaQuery[] | undefined, error: unknown): void {
    this.#endBatchSpan(batch, undefined, error);
    if (batch === undefined || this.#orphanedBatches.has(batch)) return;
    this.#orphanedBatches.add(batch);
    if (this.#running === batch) {
      this.#running = undefined;
      this.#runningLive = 0;
    }
    this.#settings.host.orphaned(batch, this.name, error);
  }

  /**
   * Closes the worker. Only ever called with no batch running that matters: a dead worker, one that hung in JS
   * (abandoned: safe, no native run), or after draining. An onnxruntime run in flight is waited for by the
   * worker's own close, since cutting it off aborts the whole process (DESIGN, known hazards).
   */
  async #closeWorker(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker !== undefined) await worker.close({ abandon: true });
  }
}
