import { leastOutstanding } from '../src/routing/balancer.js';
import type { Clock } from '../src/kernel/clock.js';
import type { TimerHandle } from '../src/kernel/clock.js';
import { DeadlineExceededError, ModelLoadError, NoReplicaAvailableError, ReplicaFailedError } from '../src/errors.js';
import { HedgeBudget, LatencyWindow } from '../src/routing/hedge-budget.js';
import type { ResolvedDeployModelOptions } from '../src/config/options.js';
import type { Supervisor } from '../src/kernel/supervisor.js';
import type { ModelSpec } from './worker/protocol.js';
import type { MultiplexPool } from '../src/routing/multiplex-pool.js';
import { Replica } from './replica.js';
import type { BatchEvent, ReplicaStatus } from '../src/api.js';
import type { ReplicaAnswer, ReplicaHost, ReplicaQuery } from './contracts.js';


/** Attempts a query gets when replicas die under it: the first, and one retry on another replica. */
const MAX_ATTEMPTS = 2;

/**
 * The replicas of one model version. It sends each query to the ready replica with the least outstanding
 * work, scales the replica count at run time, and takes back the queries of a replica whose worker died:
 * each is retried once on another replica, or rejected with {@link ReplicaFailedError} (which the router
 * turns into the default output and an explanation).
 */
export class ReplicaSet implements ReplicaHost {
  readonly model: string;
  readonly version: string;
  readonly spec: ModelSpec;
  readonly options: ResolvedDeployModelOptions;
  readonly #clock: Clock;
  readonly #supervisor: Supervisor;
  #replicas: Replica[] = [];
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

  constructor(options: ResolvedDeployModelOptions, spec: ModelSpec, clock: Clock, supervisor: Supervisor, onBatch?: (event: BatchEvent) => void, pool?: MultiplexPool) {
    this.#onBatch = onBatch;
    this.#pool = pool;
    this.#budget = new HedgeBudget(options.hedging.maxExtraLoad);
    this.model = options.name;
    this.version = options.version;
    this.options = options;
    this.spec = spec;
    this.#clock = clock;
    this.#supervisor = supervisor;
  }

  get key(): string {
    return `${this.model}@${this.version}`;
  }

  get replicas(): readonly Replica[] {
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
    return this.options.batching.latencyBudgetMs ?? this.#linkedBudgetMs ?? 10;
  }

  /** Called when the set of linked applications changes, with their tightest SLO. */
  setLinkedSlo(minSloMs: number | undefined): void {
    this.#linkedSloMs = minSloMs;
    this.#linkedBudgetMs = minSloMs === undefined ? undefined : minSloMs / 2;
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
      const replica = this.#replicas.pop() as Replica;
      await replica.stop();
      this.#supervisor.forget(replica.name);
    }
    const starting: Replica[] = [];
    while (this.#replicas.length + starting.length < count) starting.push(this.#newReplica());
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
   * answer wins and the other copy is dropped.
   */
  predict(input: Float32Array | Int32Array, deadline: number): Promise<ReplicaAnswer> {
    this.#lastQueryAt = this.#clock.now();
    this.#pool?.touch(this);
    if (this.scaledToZero) return this.#coldPredict(input, deadline);
    return new Promise<ReplicaAnswer>((resolve, reject) => {
      const started = this.#clock.now();
      const primary = this.#choose(undefined);
      if (primary === undefined) {
        // Caught mid scale-down: wake the model rather than turn the query away.
        if (this.#canScaleToZero && this.#replicas.length < this.#desired && !this.#stopped) this.#coldPredict(input, deadline).then(resolve, reject);
        else reject(new NoReplicaAvailableError(`model ${this.key} has no ready replica (${this.#describe()})`));
        return;
      }
      this.#budget.earn();
      // Every copy of the query (the first, a hedge, a retry on an idle sibling) settles through here: the first
      // answer wins and cancels the rest; the query fails only when no copy is left.
      const copies: ReplicaQuery[] = [];
      let settled = false;
      let outstanding = 0;
      let lastError: unknown;
      let retried = false;
      let timer: TimerHandle | undefined;
      const submit = (replica: Replica): void => {
        outstanding++;
        const query: ReplicaQuery = {
          input,
          enqueuedAt: this.#clock.now(),
          deadline,
          resolve: (answer) => {
            if (settled) return;
            settled = true;
            timer?.cancel();
            for (const c of copies) c.cancelled = true;
            this.#responseTimes.observe(this.#clock.now() - started);
            if (query !== copies[0] && !retried) this.#hedgesWon++;
            resolve(answer);
          },
          reject: (error) => {
            if (settled) return;
            outstanding--;
            if (retried || lastError === undefined) lastError = error;
            if (outstanding > 0) return;
            // A replica that dropped the query on its own latency estimate while time remains: an idle sibling
            // may well make it, so the query goes there, once.
            const sibling = copies.length === 1 ? this.#idleSibling(error, replica, deadline) : undefined;
            timer?.cancel();
            timer = undefined;
            if (sibling !== undefined) {
              retried = true;
              submit(sibling);
              return;
            }
            settled = true;
            reject(lastError);
          },
        };
        copies.push(query);
        replica.submit(query);
      };
      submit(primary);
      const delay = this.#replicas.length > 1 ? this.hedgeDelayMs : undefined;
      if (delay === undefined) return;
      timer = this.#clock.setTimeout(() => {
        timer = undefined;
        if (settled || this.#clock.now() >= deadline) return;
        const other = this.#choose([primary.name]);
        if (other === undefined || !this.#budget.trySpend()) return;
        submit(other);
      }, delay);
    });
  }

  /**
   * Where to retry a query a replica dropped on its batch-time estimate (its batches look too slow to make the
   * deadline) while time remains: another ready replica with nothing queued, if there is one.
   */
  #idleSibling(error: unknown, from: Replica, deadline: number): Replica | undefined {
    if (!(error instanceof DeadlineExceededError) || this.#clock.now() >= deadline) return undefined;
    return this.#replicas.find((r) => r !== from && r.ready && r.outstanding === 0);
  }

  orphaned(queries: ReplicaQuery[], from: string, error: unknown): void {
    for (const query of queries) {
      const failedOn = (query.failedOn ??= []);
      failedOn.push(from);
      const retry = failedOn.length < MAX_ATTEMPTS ? this.#choose(failedOn) : undefined;
      if (retry === undefined) {
        const why = error instanceof Error ? ` (${error.message})` : '';
        query.reject(
          new ReplicaFailedError(
            `replica ${from} of model ${this.key} failed while holding the query${why}` +
              (failedOn.length < MAX_ATTEMPTS ? ' and no other replica was ready to retry it' : `, after ${failedOn.length} attempts`),
            { cause: error },
          ),
        );
      } else {
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
  async #coldPredict(input: Float32Array | Int32Array, deadline: number): Promise<ReplicaAnswer> {
    const waking = this.#wake();
    const expected = this.#coldStarts.at(-1);
    if (this.options.scaleToZero?.coldStart === 'default' && (expected === undefined || this.#clock.now() + expected > deadline)) {
      waking.catch(() => {});
      throw new NoReplicaAvailableError(
        `model ${this.key} is scaled to zero and is loading; ${expected === undefined ? 'its cold start is not yet measured' : `a cold start takes ~${expected.toFixed(0)} ms`}, past this query's deadline`,
      );
    }
    await waking;
    return this.predict(input, deadline);
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

  /** Scale to zero after `idleMs` without queries: checked at most once per idle period. */
  #watchIdle(): void {
    const idle = this.options.scaleToZero;
    if (idle === undefined || this.#idleTimer !== undefined || this.#stopped) return;
    const due = Math.max(0, this.#lastQueryAt + idle.idleMs - this.#clock.now());
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

  #choose(exclude: readonly string[] | undefined): Replica | undefined {
    const replicas = this.#replicas;
    const skip = exclude === undefined ? undefined : new Set(replicas.flatMap((r, i) => (exclude.includes(r.name) ? [i] : [])));
    const index = leastOutstanding(replicas, this.#rotate++, skip);
    return index < 0 ? undefined : replicas[index];
  }

  #newReplica(): Replica {
    const index = this.#nextIndex++;
    return new Replica({
      name: `${this.key}#${index}`,
      spec: this.spec,
      batching: this.options.batching,
      faults: this.options.faults[index],
      clock: this.#clock,
      host: this,
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
