/**
 * The public types of clipper-ts: what a caller of {@link Clipper} sends and gets back. Types only; the actors
 * and the HTTP adapter import them from here, so nothing outside the package needs to reach into actors/.
 */
import type { Context } from '@opentelemetry/api';

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

/** What a query carries besides its input. */
export interface PredictOptions {
  /** A user key, for policies that learn per user (Clipper personalised per `uid`). */
  uid?: string;
  /**
   * The OpenTelemetry context whose span is the parent of this query's spans, when the system was started with
   * a `tracer`. Default: the active context (`context.active()`), so a caller inside a span of its own needs
   * nothing more.
   */
  trace?: Context;
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

/**
 * One feedback event as a relay carries it (`Clipper.relayFeedback`): the application, the input row, the label,
 * the query context, and the bandit draw it answers, taken by the frontend that received it (undefined when that
 * frontend holds none, or the policy learns from every model).
 */
export interface RelayedFeedback {
  app: string;
  input: Float32Array | Int32Array;
  label: number;
  context: { uid?: string };
  selection: { models: readonly string[]; probability: number } | undefined;
}

/** Carries feedback to where it is applied in one order for every frontend, and answers with its result there. */
export type FeedbackRelay = (feedback: RelayedFeedback) => Promise<FeedbackResult>;

/** A replica's counters since it was created. */
export interface ReplicaCounters {
  batches: number;
  rows: number;
  /** Queries admission took. */
  admitted: number;
  /** Admitted queries dropped unrun: they could no longer make their deadline. */
  expired: number;
  /** Queries admission refused (503); `refusedQueueFull` of them at maxQueueSize, the rest would have been late. */
  refused: number;
  refusedQueueFull: number;
  /** Rows of client batches refused (400) because even an idle replica could not answer them in time. */
  refusedTooLarge: number;
  /** Client batches admitted whole (their rows count in `admitted`). */
  units: number;
  /** Queued queries dropped unrun because their caller went away (disconnect, gRPC cancel, abort). */
  cancelled: number;
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
  /** Per query, its actual finish minus the finish admission predicted for it (ms; absent where none was). */
  finishErrorsMs?: number[];
}

/** Element types a query's input may have. */
export type InputType = 'float32' | 'int32';

/** What a model's output row means: `classification` (argmax is the label) or `regression`. */
export type OutputKind = 'classification' | 'regression';

/** An application's query counters since it was registered. */
export interface AppCounters {
  queries: number;
  answered: number;
  defaults: number;
  refused: number;
  lowConfidence: number;
  /** Queries answered by default because the selection policy threw (in select or combine). */
  policyErrors: number;
  /**
   * Queries answered by default because they were admitted and their model's answer came too late (or the
   * replica dropped them unrun as too late): the misses admission control is there to prevent.
   */
  lateDefaults: number;
}

/** An application as the management API reports it. */
export interface AppInfo {
  name: string;
  inputType: InputType;
  inputShape: number[];
  defaultOutput: number | string | null;
  latencySloMs: number;
  cacheMaxBytes: number;
  confidenceThreshold: number;
  deadlineMarginMs: number;
  linkedModels: string[];
  /** The selection policy's name (`static`, `exp3`, `exp4`, `ab`, `perUser(...)`). */
  policy: string;
  counters: AppCounters;
  /** `bytes`: what the entries count for; `heldBytes`: the slabs and index the cache really holds (<= cacheMaxBytes). */
  cache: { hits: number; misses: number; shared: number; entries: number; bytes: number; heldBytes: number };
}

/**
 * What a protocol adapter needs to answer infer for one model version ({@link Clipper.modelSignature}): a
 * slice of {@link ModelVersionInfo} that does not read the replicas, cheap enough for every request. The input
 * shape is the model's own array: do not change it.
 */
export type ModelSignatureInfo = Pick<ModelVersionInfo, 'model' | 'version' | 'platform' | 'linkedSloMs'> & {
  input: { name: string | undefined; dtype: InputType; shape: readonly number[] };
  output: { name: string | undefined; size: number };
};

/**
 * One deployed version of a model: what it takes and gives (for the Open Inference Protocol's metadata),
 * whether it serves, and its replicas, batching and hedging as they are now.
 */
export interface ModelVersionInfo {
  model: string;
  version: string;
  /** The version that takes the model's queries now. */
  current: boolean;
  /** The model file, resolved inside the repository. */
  path: string;
  platform: 'onnx' | 'js';
  /** One query's input: element type and shape without the batch dimension; the ONNX input name if known. */
  input: { name: string | undefined; dtype: InputType; shape: number[] };
  /**
   * One query's output: values per row (from config.json's `output.shape`, else learned at the first warm-up;
   * 0 until then), what it means, the ONNX output name if known.
   */
  output: { name: string | undefined; size: number; kind: OutputKind };
  /** At least one replica takes queries. */
  ready: boolean;
  readyReplicas: number;
  /** No replicas now, but the next query loads the model (scale to zero or multiplexing). */
  scaledToZero: boolean;
  replicas: ReplicaStatus[];
  /** The compute time a batch may take before AIMD backs off (ms). */
  latencyBudgetMs: number;
  /** The tightest SLO among the applications the model is linked to, if any. */
  linkedSloMs: number | undefined;
  /** Batch limits: the bound on any batch, and each replica's current AIMD limit. */
  batching: { mode: 'aimd' | 'fixed' | 'none'; maxBatchSize: number; maxQueueSize: number; limits: number[] };
  /** Hedged requests sent, won (the duplicate answered first) and denied by the budget; the current delay. */
  hedges: { sent: number; won: number; denied: number; delayMs: number | undefined };
  /** Measured cold starts (ms from the first query to warm replicas), oldest first. */
  coldStartsMs: number[];
}

/** A deployed model as the management API reports it. */
export interface ModelInfo {
  name: string;
  currentVersion: string;
  versions: ModelVersionInfo[];
  linkedApps: string[];
}

/**
 * Faults a test can arm in one replica's worker. `exit` and `throw` kill the worker in the middle of its next
 * batch; `stall` holds back a share of batches.
 */
export type Fault = { kind: 'exit' } | { kind: 'throw' } | { kind: 'stall'; ms: number; probability: number; seed: number };

/**
 * For tests and benchmarks only: reaches single replicas, which a caller of the serving API never needs.
 * Get it with `clipper.testing()`.
 */
export interface ClipperTestingHandle {
  /** The replicas of a model version (current by default), in index order. */
  replicas(model: string, version?: string): ReplicaStatus[];
  /**
   * Arms a fault in one replica's worker (index into {@link replicas}). Rejects when there is no such replica
   * or its worker cannot take the fault (not running).
   */
  injectFault(model: string, replicaIndex: number, fault: Fault, version?: string): Promise<void>;
}
