import type { ReplicaCounters } from '../../src/api.js';
import type { ReplicaAnswer, ReplicaHandle, ReplicaHost, ReplicaQuery, ReplicaUnit } from '../../actors/contracts.js';
import { OverloadedError } from '../../src/errors.js';

/**
 * A replica without a worker: it holds what it is given until the test answers, fails or kills it. It keeps a
 * log of what the replica set did to it (submits, cancels, starts, stops) for the test to check.
 */
export class FakeReplica implements ReplicaHandle {
  readonly name: string;
  readonly host: ReplicaHost;
  status = 'idle';
  retired = false;
  outputSize = 0;
  batchLimit = 1;
  restarts = 0;
  readonly counters: ReplicaCounters = { batches: 0, rows: 0, admitted: 0, expired: 0, refused: 0, refusedQueueFull: 0, refusedTooLarge: 0, units: 0, cancelled: 0, failedBatches: 0, workerDeaths: 0, timeouts: 0 };
  /** Queries held and not yet answered, failed, handed back or cancelled, oldest first. */
  readonly held: ReplicaQuery[] = [];
  /** Every query ever submitted, in order. */
  readonly submitted: ReplicaQuery[] = [];
  /** Every query the set cancelled here. */
  readonly cancelled: ReplicaQuery[] = [];
  starts = 0;
  stops = 0;
  /** While set, start() waits for it (a slow model load); resolve it through {@link finishLoading}. */
  #loading: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | undefined;
  #holdLoads = false;

  constructor(name: string, host: ReplicaHost, options: { holdLoads?: boolean } = {}) {
    this.name = name;
    this.host = host;
    this.#holdLoads = options.holdLoads ?? false;
  }

  /**
   * What {@link hasRoom} answers: whether this replica's admission would take a query now (default: no), or
   * as a number the most rows of a client batch it would take.
   */
  room: boolean | number = false;
  /** Deadlines {@link hasRoom} was asked about. */
  readonly roomAsked: number[] = [];

  /** Rows {@link hasRoom} was asked about, beside {@link roomAsked}. */
  readonly roomRowsAsked: number[] = [];

  hasRoom(deadline: number, rows = 1): boolean {
    this.roomAsked.push(deadline);
    this.roomRowsAsked.push(rows);
    return typeof this.room === 'number' ? rows <= this.room : this.room;
  }

  /** Deadlines {@link refuseUnread} refused (and counted). */
  readonly refusedUnread: number[] = [];

  /** As a replica does: refuses (and counts) a query not yet read when it has no room for one row. */
  refuseUnread(deadline: number): OverloadedError | undefined {
    if (!this.ready || this.hasRoom(deadline)) return undefined;
    this.refusedUnread.push(deadline);
    this.counters.refused++;
    return new OverloadedError(`replica ${this.name} is full`, 2);
  }

  /** Client batches submitted whole, in order. */
  readonly units: ReplicaUnit[] = [];
  /** When set, the next unit is refused with it (once) instead of being held. */
  refuseNextUnit: unknown;

  submitUnit(unit: ReplicaUnit): void {
    this.units.push(unit);
    const refusal = this.refuseNextUnit;
    if (refusal !== undefined) {
      this.refuseNextUnit = undefined;
      unit.refuse(refusal);
      return;
    }
    for (const query of unit.queries) this.submit(query);
  }

  get ready(): boolean {
    return this.status === 'running' && !this.retired;
  }

  get outstanding(): number {
    return this.held.length;
  }

  submit(query: ReplicaQuery): void {
    this.submitted.push(query);
    this.held.push(query);
  }

  cancel(query: ReplicaQuery): void {
    this.cancelled.push(query);
    query.cancelled = true;
    this.#release(query);
  }

  async start(): Promise<void> {
    this.starts++;
    this.status = 'starting';
    if (this.#holdLoads) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#loading = { promise, resolve, reject };
      try {
        await promise;
      } catch (error) {
        this.status = 'failed';
        throw error;
      } finally {
        this.#loading = undefined;
      }
    }
    this.status = 'running';
  }

  /** Ends a held load (see `holdLoads`): successfully, or with `error`. */
  finishLoading(error?: unknown): void {
    if (this.#loading === undefined) throw new Error(`${this.name} is not loading`);
    if (error === undefined) this.#loading.resolve();
    else this.#loading.reject(error);
  }

  get loading(): boolean {
    return this.#loading !== undefined;
  }

  async stop(): Promise<void> {
    this.stops++;
    this.status = 'stopped';
  }

  /** Answers a held query (the oldest by default) with `scores`. */
  answer(query: ReplicaQuery | undefined = this.held[0], scores: number[] = [1]): ReplicaAnswer {
    if (query === undefined) throw new Error(`${this.name} holds no query`);
    this.#release(query);
    const answer: ReplicaAnswer = { scores: Float32Array.from(scores), queueMs: 0, batchMs: 0, batchSize: 1, replica: this.name };
    query.resolve(answer);
    return answer;
  }

  /** Rejects a held query (the oldest by default) with `error`. */
  fail(error: unknown, query: ReplicaQuery | undefined = this.held[0]): void {
    if (query === undefined) throw new Error(`${this.name} holds no query`);
    this.#release(query);
    query.reject(error);
  }

  /** The worker dies: the replica fails and hands everything it holds back to its host. */
  die(error: unknown = new Error('worker thread exited with code 1')): void {
    this.status = 'failed';
    this.counters.workerDeaths++;
    const orphans = this.held.splice(0);
    this.host.orphaned(orphans, this.name, error);
  }

  #release(query: ReplicaQuery): void {
    const at = this.held.indexOf(query);
    if (at >= 0) this.held.splice(at, 1);
  }
}

/** A replica factory that makes {@link FakeReplica}s and remembers every one it made. */
export function fakeReplicaFactory(prefix = 'm@1', options: { holdLoads?: boolean } = {}): {
  factory: (index: number, host: ReplicaHost) => FakeReplica;
  made: FakeReplica[];
} {
  const made: FakeReplica[] = [];
  return {
    made,
    factory: (index, host) => {
      const replica = new FakeReplica(`${prefix}#${index}`, host, options);
      made.push(replica);
      return replica;
    },
  };
}
