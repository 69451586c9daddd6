/**
 * The public types of clipper-ts: what a caller of {@link Clipper} sends and gets back. Types only; the actors
 * and the HTTP adapter import them from here, so nothing outside the package needs to reach into actors/.
 */

/** An application's answer to one query. */
export interface Answer {
  queryId: number;
  /** The label (argmax) for a classifier, the value for a one-output regressor, else the output row. */
  output: number | string | null | number[];
  /** True when this is the application's default output, not a model's. */
  isDefault: boolean;
  /** Why the default output was returned. */
  explanation?: string;
  /** The model and version that answered (absent for a default answer). */
  model?: string;
  version?: string;
  /** The model's output row (class probabilities for the bundled MNIST models). */
  scores?: Float32Array;
  /** Served from the prediction cache. */
  cached: boolean;
  /** Share of the contributing models that agree with the answer's label (1 for a single model). */
  confidence?: number;
  /** The models whose outputs made the answer. */
  contributors?: string[];
  /** Selected models that did not contribute: stragglers at the deadline, or failures. */
  missing?: string[];
  latencyMs: number;
  /** Where the time went, when a replica ran the query. */
  timings?: { queueMs: number; batchMs: number; batchSize: number; replica: string };
}

/** What one feedback event did. */
export interface FeedbackResult {
  /** Each linked model's loss in [0, 1] on the input (0-1 loss for classifiers). */
  losses: Record<string, number>;
  /** Models that had to run because the cache did not hold their prediction for this input. */
  evaluated: string[];
  /** Models that could not be evaluated (no ready replica, a failure); the policy did not hear about them. */
  skipped: string[];
}

/** A replica's counters since it was created. */
export interface ReplicaCounters {
  batches: number;
  rows: number;
  expired: number;
  refused: number;
  failedBatches: number;
  workerDeaths: number;
  timeouts: number;
}

/** A replica's state, for stats and the admin API. */
export interface ReplicaStatus {
  name: string;
  status: string;
  ready: boolean;
  retired: boolean;
  batchLimit: number;
  outstanding: number;
  restarts: number;
  counters: ReplicaCounters;
}

/** One finished batch, for metrics. */
export interface BatchEvent {
  model: string;
  version: string;
  replica: string;
  size: number;
  /** Dispatch to answer, main thread's view (ms). */
  batchMs: number;
  /** Time inside the model (ms). */
  computeMs: number;
  /** The replica's AIMD limit after this batch. */
  limit: number;
}
