/**
 * The interfaces between the actors: what a replica set hands a replica (a query), what a replica answers,
 * what a replica needs of its set (the host), what a set needs of a replica (the handle), and what a router
 * needs of a model version. Types only, so each side can be tested against a fake of the other.
 */
import type { CancelSignal } from '../src/kernel/cancellation.js';
import type { SpanContext, Tracer } from '@opentelemetry/api';
import type { ReplicaCounters } from '../src/api.js';
import type { OverloadedError } from '../src/errors.js';

/** One model's answer for one query, with where the time went. */
export interface ReplicaAnswer {
  scores: Float32Array;
  queueMs: number;
  batchMs: number;
  batchSize: number;
  replica: string;
}

/**
 * What a traced query carries down to the replica that runs it: the system's tracer and the span (the query's
 * model span) that its queue wait hangs under and that its batch's span links to. Carried with the query, so
 * the replicas need no tracer of their own.
 */
export interface QueryTrace {
  readonly tracer: Tracer;
  readonly parent: SpanContext;
}

/** A query waiting in (or running on) a replica. */
export interface ReplicaQuery {
  readonly input: Float32Array | Int32Array;
  readonly enqueuedAt: number;
  readonly deadline: number;
  /** Replicas that held this query and died; a retry goes elsewhere. Absent until the first failure. */
  failedOn?: string[];
  /** Set when another copy of a hedged query answered first: the replica drops it unrun. */
  cancelled?: boolean;
  /** While tracing: where this query's queue wait and batch spans go. */
  readonly trace?: QueryTrace | undefined;
  /** Triton's priority: 1 most urgent, larger less; 0 or absent the default level, after every named one. */
  readonly priority?: number;
  /** Set (with `cancelled`) when its caller went away: dropped unrun, and counted as cancelled. */
  aborted?: boolean;
  /**
   * The rows of the client batch this query is one of (absent: a lone query). The replica lets a batch that
   * starts with such a query take up to that many rows (at most `maxBatchSize`), past the AIMD limit, as
   * admission planned it.
   */
  unitRows?: number;
  resolve(answer: ReplicaAnswer): void;
  reject(error: unknown): void;
}

/** A client's batch of rows, admitted as one unit: taken whole (each query then answered on its own) or refused whole. */
export interface ReplicaUnit {
  readonly queries: readonly ReplicaQuery[];
  /** The deadline every query of the unit shares. */
  readonly deadline: number;
  /** Refused whole: called once instead of answering any query of it (OverloadedError, BatchTooLargeError, ...). */
  refuse(error: unknown): void;
}

/** What a replica needs from its model version. */
export interface ReplicaHost {
  /** The compute time a batch may take before AIMD backs off. */
  latencyBudgetMs(): number;
  /** Queries left on a replica whose worker died: retry them elsewhere or answer them. */
  orphaned(queries: ReplicaQuery[], from: string, error: unknown): void;
}

/** What a replica set needs of one replica: {@link Replica} is the real one; unit tests use fakes. */
export interface ReplicaHandle {
  readonly name: string;
  /** Running, not retired, not stuck: takes queries. */
  readonly ready: boolean;
  readonly retired: boolean;
  /** The actor's lifecycle status (`running`, `failed`, ...). */
  readonly status: string;
  /** Queued queries plus the rows of the running batch (cancelled copies excluded). */
  readonly outstanding: number;
  /** Values per output row, learned at warm-up (0 before). */
  readonly outputSize: number;
  readonly batchLimit: number;
  readonly restarts: number;
  readonly counters: ReplicaCounters;
  /**
   * Whether the replica's admission would take a query due at `deadline` now, without side effects. Optional:
   * a handle without it is never offered a query another replica refused.
   */
  hasRoom?(deadline: number, rows?: number): boolean;
  /**
   * For a query not yet read: when admission would refuse one due at `deadline` now, counts it as arrived and
   * refused and returns the refusal; otherwise undefined, nothing counted. Optional: a set with a handle without
   * it never refuses a query unread.
   */
  refuseUnread?(deadline: number): OverloadedError | undefined;
  /** Enqueues a query; it settles through its own resolve/reject (or not at all once cancelled). */
  submit(query: ReplicaQuery): void;
  /**
   * Admits a client batch as one unit (one admission decision for its rows) and queues its rows. Optional: a
   * handle without it is sent the rows one by one.
   */
  submitUnit?(unit: ReplicaUnit): void;
  /** Drops a copy another replica answered first: unrun if still queued, no longer counted as queued. */
  cancel(query: ReplicaQuery): void;
  start(): Promise<void>;
  /** Drains (finishes what it holds), then stops. */
  stop(): Promise<void>;
}

/** Builds the replicas of one model version; the real factory makes {@link Replica}s on worker threads. */
export type ReplicaFactory = (index: number, host: ReplicaHost) => ReplicaHandle;

/**
 * Where one query's answer goes, without a promise: the model version calls exactly one of the two, once.
 * {@link ModelVersion.send}'s callers pass an object whose methods these are (no closure per query).
 */
export interface AnswerSink {
  resolve(answer: ReplicaAnswer): void;
  reject(error: unknown): void;
}

export type { CancelSignal };

/** What a router and the feedback actor need of one model version. */
export interface ModelVersion {
  readonly model: string;
  readonly version: string;
  /** Values per output row (0 until a replica has warmed up). */
  readonly outputSize: number;
  /** Runs one query; resolves with the model's answer or rejects (overload, deadline, replica failure). */
  predict(input: Float32Array | Int32Array, deadline: number, signal?: CancelSignal, priority?: number, trace?: QueryTrace): Promise<ReplicaAnswer>;
  /**
   * Runs one query as {@link predict} does, answering through `sink` instead of a promise (the router's hot
   * path: no promise, no closure per query). `sink` may be called before `send` returns. Optional: a version
   * without it is asked through `predict`.
   */
  send?(input: Float32Array | Int32Array, deadline: number, sink: AnswerSink, signal?: CancelSignal, priority?: number, trace?: QueryTrace): void;
  /**
   * For a query not yet read (its body unparsed): the refusal it would get, counted as one, when no ready
   * replica would admit a query due at `deadline` now; undefined (nothing counted) otherwise, and then the
   * query takes the normal path. Optional: a version without it never refuses a query unread.
   */
  refuseUnread?(deadline: number): OverloadedError | undefined;
}

/** Where a router finds the current version of a model. */
export interface ModelDirectory {
  current(model: string): ModelVersion | undefined;
  outputKind(model: string): 'classification' | 'regression';
}
