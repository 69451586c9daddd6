import { leastOutstanding } from '../src/routing/balancer.js';
import type { Clock } from '../src/kernel/clock.js';
import type { TimerHandle } from '../src/kernel/clock.js';
import { DeadlineList, type DeadlineEntry } from '../src/kernel/deadline-list.js';
import { BatchTooLargeError, CancelledError, ModelLoadError, NoReplicaAvailableError, OverloadedError, ReplicaFailedError } from '../src/errors.js';
import { HedgeBudget } from '../src/routing/hedge-budget.js';
import { LatencyWindow } from '../src/routing/latency-window.js';
import { CopyTracker, type CopyDecision } from '../src/routing/copy-tracker.js';
import { replicaSetDefaults, type ResolvedDeployModelOptions } from '../src/config/options.js';
import type { Supervisor } from '../src/kernel/supervisor.js';
import type { ModelSpec } from './worker/protocol.js';
import type { MultiplexPool } from '../src/routing/multiplex-pool.js';
import { Replica } from './replica.js';
import type { BatchEvent, ReplicaStatus } from '../src/api.js';
import type { AnswerSink, CancelSignal, QueryTrace, ReplicaAnswer, ReplicaHandle, ReplicaHost, ReplicaQuery, ReplicaUnit } from './contracts.js';

/** How a copy's replica reaches its set: methods of the set, made once per set (no closure per query). */
interface CopyHooks<R> {
  answered(copy: SetCopy<R>, answer: ReplicaAnswer): void;
  failed(copy: SetCopy<R>, error: unknown): void;
}

/**
 * One query's run on a model version ({@link ReplicaSet.send}): its copies (the first; a hedge or a retry
 * after it), where its answer goes, and, while a hedge is due, its place in the set's hedge list. The
 * {@link CopyTracker} that decides between copies is made only when more than the first answer can happen: at
 * once when the query may be hedged, else at its first failure (until then, the first answer is the answer).
 */
class SetCall<R> implements DeadlineEntry {
  tracker: CopyTracker<R> | undefined = undefined;
  /** The copies sent, by number (0 the first). */
  readonly copies: SetCopy<R>[] = [];
  /** Answered or failed (or its caller went away): the sink has been called. */
  done = false;
  dueAt = 0;
  prevDue: DeadlineEntry | undefined = undefined;
  nextDue: DeadlineEntry | undefined = undefined;
  listed = false;

  constructor(
    readonly hooks: CopyHooks<R>,
    readonly input: Float32Array | Int32Array,
    readonly deadline: number,
    readonly started: number,
    readonly sink: AnswerSink,
    readonly priority: number | undefined,
    readonly trace: QueryTrace | undefined,
  ) {}
}

/** One copy of a query on one replica: what the replica queues and answers. */
class SetCopy<R> implements ReplicaQuery {
  failedOn: string[] | undefined = undefined;
  cancelled: boolean | undefined = undefined;
  aborted: boolean | undefined = undefined;
  unitRows: number | undefined = undefined;
  readonly input: Float32Array | Int32Array;
  readonly deadline: number;
  readonly trace: QueryTrace | undefined;
  readonly priority: number | undefined;

  constructor(
    readonly call: SetCall<R>,
    readonly index: number,
    readonly enqueuedAt: number,
    /** The replica holding it (the one a losing copy is cancelled on); updated when a dead replica's copy is retried. */
    public holder: R,
  ) {
    this.input = call.input;
    this.deadline = call.deadline;
    this.trace = call.trace;
    this.priority = call.priority;
  }

  resolve(answer: ReplicaAnswer): void {
    this.call.hooks.answered(this, answer);
  }

  reject(error: unknown): void {
    this.call.hooks.failed(this, error);
  }
}

/**
 * The replicas of one model version. It sends each query to the ready replica with the least outstanding
 * work, scales the replica count at run time, and takes back the queries of a replica whose worker died:
 * each is retried once on another replica, or rejected with {@link ReplicaFailedError} (which the router
 * turns into the default output and an explanation).
 *
 * The replicas come from a factory and are used only through {@link ReplicaHandle}, so unit tests run the set
 * on fake replicas and a ManualClock. `R` is the factory's replica type: {@link Replica} (worker threads) by
 * default, so callers of {@link replicas} that need more than the handle (fault injection in tests) keep it.
 */
export class ReplicaSet<R extends ReplicaHandle = Replica> implements ReplicaHost {
  readonly model: string;
  readonly version: string;
  readonly spec: ModelSpec;
  readonly options: ResolvedDeployModelOptions;
  readonly #clock: Clock;
  readonly #supervisor: Supervisor;
  readonly #factory: (index: number, host: ReplicaHost) => R;
  #replicas: R[] = [];
  /** The replica holding each row sent by {@link predictMany} (a copy sent by {@link send} knows its own). */
  readonly #holders = new WeakMap<ReplicaQuery, R>();
  /** Queries waiting for their hedge delay, on one timer. */
  readonly #hedges: DeadlineList<SetCall<R>>;
  readonly #hooks: CopyHooks<R> = {
    answered: (copy, answer) => this.#answered(copy, answer),
    failed: (copy, error) => this.#failed(copy, error),
  };
  #nextIndex = 0;
  #rotate = 0;
  readonly #budget: HedgeBudget;
  readonly #responseTimes = new LatencyWindow();
  #hedgesWon = 0;
  /** The replica count asked for, kept while suspended. */
  #desired = 0;
  #scaling: Promise<void> = Promise.resolve();
  #stopped = false;
  #lastQueryAt = 0;
  #idleTimer: TimerHandle | undefined;
  #waking: Promise<void> | undefined;
  readonly #coldStarts: number[] = [];
  /** Half the tightest SLO among linked applications, unless the model sets its own budget. */
  #linkedBudgetMs: number | undefined;
  #linkedSloMs: number | undefined;

  readonly #onBatch: ((event: BatchEvent) => void) | undefined;

  readonly #pool: MultiplexPool | undefined;

  /**
   * @param factory builds replica `index` of this version; by default a {@link Replica} on its own worker
   * thread, running `spec` with `options` (a custom factory must return replicas of type `R`).
   */
  constructor(
    options: ResolvedDeployModelOptions,
    spec: ModelSpec,
    clock: Clock,
    supervisor: Supervisor,
    onBatch?: (event: BatchEvent) => void,
    pool?: MultiplexPool,
    factory?: (index: number, host: ReplicaHost) => R,
  ) {
    // Without a factory R is its default, Replica, so the cast below only names what TypeScript cannot infer.
    this.#factory = factory ?? ((index, host) => this.#newReplica(index, host) as ReplicaHandle as R);
    this.#onBatch = onBatch;
    this.#pool = pool;
    this.#budget = new HedgeBudget(options.hedging.maxExtraLoad);
    this.model = options.name;
    this.version = options.version;
    this.options = options;
    this.spec = spec;
    this.#clock = clock;
    this.#supervisor = supervisor;
    this.#hedges = new DeadlineList<SetCall<R>>(clock, (call) => this.#hedgeDue(call));
  }

  get key(): string {
    return `${this.model}@${this.version}`;
  }

  /** The replicas, newest last. */
  get replicas(): readonly R[] {
    return this.#replicas;
  }

  /** Values per output row (10 class probabilities for the MNIST models). */
  get outputSize(): number {
    return this.#replicas.find((r) => r.outputSize > 0)?.outputSize ?? 0;
  }

  get readyCount(): number {
    return this.#replicas.filter((r) => r.ready).length;
  }

  latencyBudgetMs(): number {
    return this.options.batching.latencyBudgetMs ?? this.#linkedBudgetMs ?? replicaSetDefaults.latencyBudgetMs;
  }

  /** Called when the set of linked applications changes, with their tightest SLO. */
  setLinkedSlo(minSloMs: number | undefined): void {
    this.#linkedSloMs = minSloMs;
    this.#linkedBudgetMs = minSloMs === undefined ? undefined : minSloMs * replicaSetDefaults.budgetShareOfSlo;
  }

  /** The tightest SLO among the applications this model is linked to, if any. */
  get linkedSloMs(): number | undefined {
    return this.#linkedSloMs;
  }

  /**
   * Stops every replica after it drains (a version that is no longer current), remembering how many there
   * were for {@link resume}.
   */
  suspend(): Promise<void> {
    return this.#serially(() => this.#scaleTo(0));
  }

  /** Starts the replicas a {@link suspend} stopped (each loads and warms up its model first). */
  resume(): Promise<void> {
    return this.#serially(() => (this.#replicas.length < this.#desired ? this.#scaleTo(this.#desired) : Promise.resolve()));
  }

  /** Starts replicas until there are `count`, or drains and stops the newest until there are `count`. */
  setReplicas(count: number): Promise<void> {
    return this.#serially(() => {
      this.#desired = count;
      return this.#scaleTo(count);
    });
  }

  /** Scaling steps run one after another, so a wake-up never races a scale-down. */
  #serially(step: () => Promise<void>): Promise<void> {
    const run = this.#scaling.then(step);
    this.#scaling = run.catch(() => {});
    return run;
  }

  async #scaleTo(count: number): Promise<void> {
    const pool = this.#pool;
    if (pool === undefined || this.#stopped) return this.#resize(count);
    if (count === 0) {
      await this.#resize(0);
      pool.released(this);
      return;
    }
    await pool.admit(this);
    try {
      await this.#resize(count);
      pool.loaded(this);
    } catch (error) {
      pool.released(this);
      throw error;
    }
  }

  async #resize(count: number): Promise<void> {
    while (this.#replicas.length > count) {
      const replica = this.#replicas.pop() as R;
      await replica.stop();
      this.#supervisor.forget(replica.name);
    }
    const starting: R[] = [];
    while (this.#replicas.length + starting.length < count) starting.push(this.#factory(this.#nextIndex++, this));
    const results = await Promise.allSettled(starting.map((r) => r.start()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(starting.map((r) => r.stop()));
      const reason = failed.reason instanceof Error ? failed.reason.message : String(failed.reason);
      throw new ModelLoadError(`model ${this.key}: ${reason}`, { cause: failed.reason });
    }
    this.#replicas.push(...starting);
    if (this.#replicas.length > 0) {
      this.#lastQueryAt = Math.max(this.#lastQueryAt, this.#clock.now());
      this.#watchIdle();
    }
  }

  /** Hedges sent, and those whose copy answered first. */
  get hedges(): { sent: number; won: number; denied: number } {
    return { sent: this.#budget.sent, won: this.#hedgesWon, denied: this.#budget.denied };
  }

  /** The delay after which a query is hedged now, or undefined when hedging is off or not yet calibrated. */
  get hedgeDelayMs(): number | undefined {
    const h = this.options.hedging;
    if (!h.enabled || h.maxExtraLoad === 0) return undefined;
    if (h.delayMs !== undefined) return h.delayMs;
    return this.#responseTimes.count >= 20 ? this.#responseTimes.p95 : undefined;
  }

  /**
   * Runs one query on this model version: on the ready replica with the least outstanding work, and, if it
   * has not answered within the hedge delay, also on a second replica (within the hedge budget); the first
   * answer wins and the other copy is cancelled. The decisions are the {@link CopyTracker}'s; this applies them.
   */
  predict(input: Float32Array | Int32Array, deadline: number, signal?: CancelSignal, priority?: number, trace?: QueryTrace): Promise<ReplicaAnswer> {
    return new Promise<ReplicaAnswer>((resolve, reject) => this.send(input, deadline, { resolve, reject }, signal, priority, trace));
  }

  /**
   * {@link predict} without a promise: the answer (or the error) goes to `sink`, once. The router's hot path:
   * per query one {@link SetCall} and one {@link SetCopy} per copy, no closure, no promise, no timer (hedges
   * wait in one {@link DeadlineList}).
   */
  send(input: Float32Array | Int32Array, deadline: number, sink: AnswerSink, signal?: CancelSignal, priority?: number, trace?: QueryTrace): void {
    const now = this.#clock.now();
    this.#lastQueryAt = now;
    this.#pool?.touch(this);
    if (signal?.aborted === true) {
      sink.reject(cancelled(this.key, 1));
      return;
    }
    const primary = this.scaledToZero ? undefined : this.#choose(undefined);
    if (primary === undefined) {
      // Scaled to zero, or caught mid scale-down: wake the model rather than turn the query away.
      if (this.scaledToZero || (this.#canScaleToZero && this.#replicas.length < this.#desired && !this.#stopped)) {
        this.#coldPredict(input, deadline, signal, trace).then(
          (answer) => sink.resolve(answer),
          (error: unknown) => sink.reject(error),
        );
      } else sink.reject(new NoReplicaAvailableError(`model ${this.key} has no ready replica (${this.#describe()})`));
      return;
    }
    this.#budget.earn();
    const delay = this.#replicas.length > 1 ? this.hedgeDelayMs : undefined;
    const call = new SetCall<R>(this.#hooks, input, deadline, now, sink, priority, trace);
    if (delay !== undefined) call.tracker = new CopyTracker<R>({ now, deadline, hedging: true, budget: this.#budget });
    this.#sendCopy(call, primary, 0);
    // The caller went away: every copy still queued is dropped unrun (a running one finishes, ignored).
    if (signal !== undefined) {
      this.#onAbort(signal, () => {
        if (call.done) return;
        call.done = true;
        this.#hedges.remove(call);
        this.#abort(call.copies);
        sink.reject(cancelled(this.key, 1));
      });
    }
    if (delay !== undefined && !call.done) {
      call.dueAt = this.#clock.now() + delay;
      this.#hedges.add(call);
    }
  }

  #sendCopy(call: SetCall<R>, to: R, index: number): void {
    const copy = new SetCopy<R>(call, index, this.#clock.now(), to);
    call.copies[index] = copy;
    to.submit(copy);
  }

  #answered(copy: SetCopy<R>, answer: ReplicaAnswer): void {
    const call = copy.call;
    if (call.done) return;
    const tracker = call.tracker;
    // No tracker: not hedged and nothing failed, so this is the first and only copy, and what a tracker would
    // decide is to answer with it, with nothing to cancel.
    if (tracker === undefined) this.#resolve(call, this.#clock.now() - call.started, false, answer);
    else this.#apply(call, tracker.on({ type: 'answered', copy: copy.index, now: this.#clock.now() }), answer);
  }

  #failed(copy: SetCopy<R>, error: unknown): void {
    const call = copy.call;
    if (call.done) return;
    const holder = copy.holder;
    const idleSibling = this.#replicas.find((r) => r !== holder && r.ready && r.outstanding === 0);
    const roomySibling = error instanceof OverloadedError ? this.#withRoom(holder, call.deadline) : undefined;
    // Made now if the query was not hedged: no event came before this one, so it decides as if it had been there all along.
    const tracker = (call.tracker ??= new CopyTracker<R>({ now: call.started, deadline: call.deadline, hedging: false, budget: this.#budget }));
    this.#apply(call, tracker.on({ type: 'failed', copy: copy.index, error, now: this.#clock.now(), idleSibling, roomySibling }));
  }

  #hedgeDue(call: SetCall<R>): void {
    if (call.done || call.tracker === undefined) return;
    const first = call.copies[0]?.holder;
    this.#apply(call, call.tracker.on({ type: 'hedgeDue', now: this.#clock.now(), candidate: this.#choose(first === undefined ? [] : [first.name]) }));
  }

  /** Applies a {@link CopyTracker} decision; every decision but `none` ends the wait for a hedge. */
  #apply(call: SetCall<R>, decision: CopyDecision<R>, answer?: ReplicaAnswer): void {
    if (decision.kind === 'none') return;
    this.#hedges.remove(call);
    switch (decision.kind) {
      case 'submit':
        this.#sendCopy(call, decision.to, decision.copy);
        return;
      case 'resolve':
        for (const i of decision.cancel) {
          const copy = call.copies[i] as SetCopy<R>;
          copy.holder.cancel(copy);
        }
        this.#resolve(call, decision.elapsedMs, decision.hedgeWon, answer as ReplicaAnswer);
        return;
      case 'reject':
        call.done = true;
        call.sink.reject(decision.error);
        return;
    }
  }

  #resolve(call: SetCall<R>, elapsedMs: number, hedgeWon: boolean, answer: ReplicaAnswer): void {
    call.done = true;
    this.#hedges.remove(call);
    this.#responseTimes.observe(elapsedMs);
    if (hedgeWon) this.#hedgesWon++;
    call.sink.resolve(answer);
  }

  /**
   * Runs a client's batch of rows, all due at `deadline`, admitted as one unit: the ready replica with the
   * least outstanding work decides once for all the rows ({@link ReplicaHandle.submitUnit}); refused as busy
   * (OverloadedError), the unit goes whole to a sibling whose admission has room for it, if any; else (busy
   * everywhere, or too large for one replica: BatchTooLargeError) it is split across the fewest replicas with
   * room for an even share each, every share admitted whole on its replica; with no such split the refusal
   * stands (a share refused after all drops the others' queued rows). Admitted, its rows run in
   * batches of their own (or with others) and the answers come back in order. A row that fails fails the
   * unit, and the rows still queued are dropped. Not hedged. `signal`: the caller went away, the rows still
   * queued are dropped unrun (counted by the replica) and the promise rejects with CancelledError.
   */
  predictMany(inputs: readonly (Float32Array | Int32Array)[], deadline: number, signal?: CancelSignal, priority?: number, trace?: QueryTrace): Promise<ReplicaAnswer[]> {
    if (inputs.length === 1) return this.predict(inputs[0] as Float32Array | Int32Array, deadline, signal, priority, trace).then((a) => [a]);
    this.#lastQueryAt = this.#clock.now();
    this.#pool?.touch(this);
    if (signal?.aborted === true) return Promise.reject(cancelled(this.key, inputs.length));
    if (this.scaledToZero) return this.#wake().then(() => this.predictMany(inputs, deadline, signal, priority, trace));
    return new Promise<ReplicaAnswer[]>((resolve, reject) => {
      const primary = this.#choose(undefined);
      if (primary === undefined) {
        reject(new NoReplicaAvailableError(`model ${this.key} has no ready replica (${this.#describe()})`));
        return;
      }
      const answers: ReplicaAnswer[] = new Array<ReplicaAnswer>(inputs.length);
      let left = inputs.length;
      let settled = false;
      const tried = new Set<R>();
      const fail = (error: unknown): void => {
        if (settled) return;
        settled = true;
        this.#abort(queries.filter((_, i) => answers[i] === undefined), false);
        reject(error);
      };
      const enqueuedAt = this.#clock.now();
      const queries: ReplicaQuery[] = inputs.map((input, i) => {
        const query: ReplicaQuery = {
          input,
          enqueuedAt,
          deadline,
          trace,
          ...(priority === undefined ? {} : { priority }),
          resolve: (answer) => {
            if (settled || answers[i] !== undefined) return;
            answers[i] = answer;
            if (--left === 0) {
              settled = true;
              resolve(answers);
            }
          },
          reject: fail,
        };
        return query;
      });
      /** Hands `part` (all the rows, or one replica's share of a split) to `to`; `refused` hears a refusal. */
      const submitPart = (to: R, part: ReplicaQuery[], refused: (error: unknown) => void): void => {
        tried.add(to);
        for (const query of part) this.#holders.set(query, to);
        if (to.submitUnit === undefined) {
          for (const query of part) to.submit(query);
          return;
        }
        const unit: ReplicaUnit = { queries: part, deadline, refuse: refused };
        to.submitUnit(unit);
      };
      const send = (to: R): void =>
        submitPart(to, queries, (error) => {
          if (settled) return;
          const sibling = error instanceof OverloadedError ? this.#withRoom(to, deadline, queries.length, tried) : undefined;
          if (sibling !== undefined) {
            send(sibling);
            return;
          }
          // No one replica can take all the rows in time: split them across replicas with room for a share each.
          const shares = error instanceof OverloadedError || error instanceof BatchTooLargeError ? this.#split(queries.length, deadline) : undefined;
          if (shares === undefined) {
            // Refused whole: none of its rows was queued, none needs dropping.
            settled = true;
            reject(error);
            return;
          }
          let at = 0;
          for (const [replica, rows] of shares) {
            if (settled) return;
            const part = queries.slice(at, (at += rows));
            submitPart(replica, part, (partError) => {
              if (settled) return;
              // This share was never queued; the others' rows still queued are dropped unrun.
              for (const query of part) this.#holders.delete(query);
              fail(partError);
            });
          }
        });
      send(primary);
      this.#onAbort(signal, () => {
        if (settled) return;
        settled = true;
        this.#abort(queries.filter((_, i) => answers[i] === undefined));
        reject(cancelled(this.key, inputs.length));
      });
    });
  }

  /** Calls `then` once if `signal` aborts (at once if it has). */
  #onAbort(signal: CancelSignal | undefined, then: () => void): void {
    if (signal === undefined) return;
    if (signal.aborted) then();
    else signal.addEventListener('abort', then, { once: true });
  }

  /**
   * Drops the copies still queued on their replicas, unrun; `aborted` (their caller went away) makes the
   * replica count them as cancelled.
   */
  #abort(queries: readonly ReplicaQuery[], aborted = true): void {
    for (const query of queries) {
      if (query === undefined || query.cancelled === true) continue;
      if (aborted) query.aborted = true;
      const holder = query instanceof SetCopy ? (query.holder as R) : this.#holders.get(query);
      if (holder === undefined) query.cancelled = true;
      else holder.cancel(query);
    }
  }

  orphaned(queries: ReplicaQuery[], from: string, error: unknown): void {
    for (const query of queries) {
      const failedOn = (query.failedOn ??= []);
      failedOn.push(from);
      const retry = failedOn.length < replicaSetDefaults.maxAttempts ? this.#choose(failedOn) : undefined;
      if (retry === undefined) {
        const why = error instanceof Error ? ` (${error.message})` : '';
        query.reject(
          new ReplicaFailedError(
            `replica ${from} of model ${this.key} failed while holding the query${why}` +
              (failedOn.length < replicaSetDefaults.maxAttempts ? ' and no other replica was ready to retry it' : `, after ${failedOn.length} attempts`),
            { cause: error },
          ),
        );
      } else {
        if (query instanceof SetCopy) query.holder = retry;
        else if (this.#holders.has(query)) this.#holders.set(query, retry);
        retry.submit(query);
      }
    }
  }

  status(): ReplicaStatus[] {
    return this.#replicas.map((r) => ({
      name: r.name,
      status: r.status,
      ready: r.ready,
      retired: r.retired,
      batchLimit: r.batchLimit,
      outstanding: r.outstanding,
      restarts: r.restarts,
      counters: { ...r.counters },
    }));
  }

  /** True while the model is scaled to zero: no replicas, but some wanted, so the next query loads it. */
  get scaledToZero(): boolean {
    return this.#canScaleToZero && this.#replicas.length === 0 && this.#desired > 0 && !this.#stopped;
  }

  /** Idle scale-down or a multiplexing pool can leave this version without replicas until its next query. */
  get #canScaleToZero(): boolean {
    return this.options.scaleToZero !== undefined || this.#pool !== undefined;
  }

  /** Cold starts measured so far (ms from the first query to warm replicas). */
  get coldStarts(): readonly number[] {
    return this.#coldStarts;
  }

  /** A query for a model scaled to zero: wake it, then run the query, or answer by default if that is too slow. */
  async #coldPredict(input: Float32Array | Int32Array, deadline: number, signal: CancelSignal | undefined, trace: QueryTrace | undefined): Promise<ReplicaAnswer> {
    const waking = this.#wake();
    const expected = this.#coldStarts.at(-1);
    if (this.options.scaleToZero?.coldStart === 'default' && (expected === undefined || this.#clock.now() + expected > deadline)) {
      waking.catch(() => {});
      throw new NoReplicaAvailableError(
        `model ${this.key} is scaled to zero and is loading; ${expected === undefined ? 'its cold start is not yet measured' : `a cold start takes ~${expected.toFixed(0)} ms`}, past this query's deadline`,
      );
    }
    await waking;
    return this.predict(input, deadline, signal, undefined, trace);
  }

  #wake(): Promise<void> {
    this.#waking ??= (async () => {
      const started = this.#clock.now();
      try {
        await this.resume();
        this.#coldStarts.push(this.#clock.now() - started);
      } finally {
        this.#waking = undefined;
      }
    })();
    return this.#waking;
  }

  /**
   * Scale to zero after `idleMs` without queries and with nothing outstanding: checked at most once per idle
   * period. Replicas still busy when the period is over count as in use, so the next look is one idle period
   * later: re-checking at once (a 0 ms timer) would spin for as long as a slow query ran.
   */
  #watchIdle(): void {
    const idle = this.options.scaleToZero;
    if (idle === undefined || this.#idleTimer !== undefined || this.#stopped) return;
    const left = this.#lastQueryAt + idle.idleMs - this.#clock.now();
    const due = left > 0 ? left : idle.idleMs;
    this.#idleTimer = this.#clock.setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#stopped || this.#replicas.length === 0) return;
      const quiet = this.#clock.now() - this.#lastQueryAt >= idle.idleMs && this.#replicas.every((r) => r.outstanding === 0);
      if (quiet) void this.suspend();
      else this.#watchIdle();
    }, due);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#pool?.remove(this);
    this.#idleTimer?.cancel();
    const replicas = this.#replicas;
    this.#replicas = [];
    await Promise.all(replicas.map((r) => r.stop()));
    for (const r of replicas) this.#supervisor.forget(r.name);
  }

  /**
   * For a query not yet read (the HTTP edge asks before it parses a request's body): when this version has a
   * ready replica and none would admit a query due at `deadline` now, the one a query sent now would go to (the
   * least outstanding work, ties in turn) counts it as arrived and refused (as its admission would have, had
   * the query been sent) and the refusal is returned. Otherwise undefined and nothing is counted: the query
   * takes the normal path, which also wakes a version scaled to zero and retries a sibling.
   */
  refuseUnread(deadline: number): OverloadedError | undefined {
    if (this.#stopped || this.scaledToZero) return undefined;
    // The one a query sent now would go to (ties taken in turn, as `send` takes them), so refused arrivals
    // spread over the replicas as sent ones do; and, as `send` does after a refusal, a sibling with room wins.
    const least = this.#choose(undefined);
    if (least === undefined || this.#withRoom(least, deadline) !== undefined) return undefined;
    const refusal = least.refuseUnread?.(deadline);
    if (refusal !== undefined) {
      this.#lastQueryAt = this.#clock.now();
      this.#pool?.touch(this);
    }
    return refusal;
  }

  /**
   * After `refused`'s admission turned a query away: the ready sibling with the least outstanding work whose own
   * admission would take it now, if any. Asked in place (no message), so a query no replica has room for is
   * refused at once, without a second hop.
   */
  #withRoom(refused: R | undefined, deadline: number, rows = 1, tried?: ReadonlySet<R>): R | undefined {
    let best: R | undefined;
    for (const r of this.#replicas) {
      if (r === refused || tried?.has(r) === true || !r.ready || (rows === 1 ? r.hasRoom?.(deadline) : r.hasRoom?.(deadline, rows)) !== true) continue;
      if (best === undefined || r.outstanding < best.outstanding) best = r;
    }
    return best;
  }

  /**
   * A split of `rows` rows across the fewest ready replicas (2 or more, least outstanding first) whose admission
   * has room for an even share each by `deadline`; undefined when no split fits. Only replicas that admit
   * client batches as units take part, so every share is admitted (or refused) whole.
   */
  #split(rows: number, deadline: number): [R, number][] | undefined {
    const ready = this.#replicas.filter((r) => r.ready && r.submitUnit !== undefined && r.hasRoom !== undefined).sort((a, b) => a.outstanding - b.outstanding);
    for (let k = 2; k <= Math.min(ready.length, rows); k++) {
      const shares = ready.slice(0, k).map((r, i): [R, number] => [r, Math.floor(rows / k) + (i < rows % k ? 1 : 0)]);
      if (shares.every(([r, n]) => r.hasRoom?.(deadline, n) === true)) return shares;
    }
    return undefined;
  }

  #choose(exclude: readonly string[] | undefined): R | undefined {
    const replicas = this.#replicas;
    const skip = exclude === undefined ? undefined : new Set(replicas.flatMap((r, i) => (exclude.includes(r.name) ? [i] : [])));
    const index = leastOutstanding(replicas, this.#rotate++, skip);
    return index < 0 ? undefined : replicas[index];
  }

  /** The default factory: a {@link Replica} actor on its own worker thread, supervised with its siblings. */
  #newReplica(index: number, host: ReplicaHost): Replica {
    return new Replica({
      name: `${this.key}#${index}`,
      spec: this.spec,
      batching: this.options.batching,
      faults: this.options.faults[index],
      clock: this.#clock,
      host,
      supervisor: this.#supervisor,
      batchTimeoutMs: this.options.batchTimeoutMs,
      isolation: this.options.isolation,
      ...(this.options.remote === undefined ? {} : { remote: this.options.remote }),
      ...(this.options.resourceLimits === undefined ? {} : { resourceLimits: this.options.resourceLimits }),
      ...(this.#onBatch === undefined ? {} : { onBatch: this.#onBatch }),
    });
  }

  #describe(): string {
    if (this.#replicas.length === 0) return 'it has 0 replicas';
    return this.#replicas.map((r) => `${r.name}: ${r.retired ? 'retired' : r.status}`).join(', ');
  }
}

/** What a caller that went away is answered (no one reads it but logs and metrics). */
function cancelled(key: string, rows: number): CancelledError {
  return new CancelledError(`the caller went away: ${rows === 1 ? 'its query' : `its ${rows} rows`} for model ${key} still queued were dropped unrun`);
}
