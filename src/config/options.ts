/**
 * Every option of clipper-ts in one place, as piscina keeps its own: each group has its options type (all
 * optional), one frozen defaults object, its known keys derived from that object, and one resolver that
 * validates every value (messages name the option) and returns the frozen, fully resolved form. Defaults
 * used inside the actors (the feedback timeout, a version's budget before any link, retry attempts,
 * warm-up rows) are here too, so a reader finds every number in one file.
 */
import type { Tracer } from '@opentelemetry/api';
import { elementCount } from './shape.js';
import type { Clock } from '../kernel/clock.js';
import type { RestartPolicyOptions } from '../kernel/restart-policy.js';
import { InvalidOptionError } from '../errors.js';
import type { InputType } from '../api.js';
import { checkBoolean, checkInteger, checkKnownKeys, checkName, checkNumber, checkObject, checkOneOf, fail } from './validate.js';

export { checkName } from './validate.js';

/** The options given, without keys set to undefined (which the optional types allow and which mean "default"). */
function defined<T extends object>(given: T): Partial<T> {
  return Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Most replicas one model version may have. */
export const MAX_REPLICAS = 64;

/** How a model's replicas form batches. */
export type BatchingMode = 'aimd' | 'fixed' | 'none';

/**
 * Batching knobs for one deployed model (each replica applies them to its own queue).
 * Names follow Triton and Ray Serve where one exists.
 */
export interface BatchingOptions {
  /**
   * `aimd` (default): the batch limit adapts as in Clipper (grow by `additiveStep` while batches finish within
   * the latency budget, shrink by `backoffFactor` after a miss). `fixed`: batches take up to `maxBatchSize`.
   * `none`: one query per batch.
   */
  mode?: BatchingMode;
  /** Upper bound on a batch (Ray Serve `max_batch_size`). Default 256. */
  maxBatchSize?: number;
  /** AIMD's first batch limit. Default 1. */
  initialBatchSize?: number;
  /** AIMD additive increase. Default 2 (Clipper's logs show +2 steps). */
  additiveStep?: number;
  /** AIMD multiplicative decrease after a batch over budget. Default 0.9 (b -> floor(0.9 b)). */
  backoffFactor?: number;
  /**
   * The compute time a batch may take before AIMD backs off. Default: half the smallest SLO among the
   * applications the model is linked to (a query may wait for the batch ahead of it, then run in its own),
   * or 10 ms before any link.
   */
  latencyBudgetMs?: number;
  /**
   * Delayed batching: how long an idle replica waits for a batch to fill before it runs a partial one
   * (Triton `max_queue_delay_microseconds`, Ray Serve `batch_wait_timeout_s`). Default 0: no wait; queries
   * that arrive while a batch runs still batch together.
   */
  maxQueueDelayMicroseconds?: number;
  /** Queries a replica holds (queued, not running) before refusing more with 503. Default 1024. */
  maxQueueSize?: number;
}

/** `Clipper.infer` (the Open Inference Protocol's infer): how long its rows may take, unless the call says. */
export const inferDefaults = Object.freeze({ timeoutMs: 1000 });

/** Feedback evaluates the linked models the cache does not hold; each evaluation may take this long. */
export const feedbackDefaults = Object.freeze({ timeoutMs: 1000 });

/**
 * A model version's replica set: the batch-time budget AIMD aims under before the model is linked to any
 * application (after that, half the tightest linked SLO, `budgetShareOfSlo`), and how many replicas a query
 * may be tried on when workers die under it (the first and one retry).
 */
export const replicaSetDefaults = Object.freeze({ latencyBudgetMs: 10, budgetShareOfSlo: 0.5, maxAttempts: 2 });

/** A replica: rows of zeros run once through a freshly loaded model, so the first real batch pays no warm-up. */
export const replicaDefaults = Object.freeze({ warmupRows: 8 });

export type ResolvedBatchingOptions = Required<Omit<BatchingOptions, 'latencyBudgetMs'>> & { latencyBudgetMs: number | undefined };

export const batchingDefaults: Readonly<ResolvedBatchingOptions> = Object.freeze({
  mode: 'aimd',
  maxBatchSize: 256,
  initialBatchSize: 1,
  additiveStep: 2,
  backoffFactor: 0.9,
  latencyBudgetMs: undefined,
  maxQueueDelayMicroseconds: 0,
  maxQueueSize: 1024,
});

/** Fault injection, for tests and benchmarks: one replica that stalls or dies on some batches. */
export interface FaultOptions {
  /** Probability that a batch is held back `stallMs` before it runs. */
  stallProbability?: number;
  stallMs?: number;
  /** Seed for the fault dice, so runs repeat. */
  seed?: number;
}

/**
 * Speculative duplication (hedged requests): a query a replica has not answered within `delayMs` is also sent
 * to another replica of the same model; the first answer wins and the other copy is dropped (never killed:
 * see README, failures). Needs two or more replicas.
 */
export interface HedgingOptions {
  /** Default true. */
  enabled?: boolean;
  /** How long to wait before hedging. Default: the observed 95th percentile of this model's response times. */
  delayMs?: number;
  /**
   * Hedges as a share of queries, at most. Default 0.1 (10% extra load): with the default p95 delay about 5% of
   * queries are due for a hedge with no fault at all, so a 5% budget would be spent before any straggler came
   * (measured by bench:stragglers).
   */
  maxExtraLoad?: number;
}

export interface ResolvedHedgingOptions {
  enabled: boolean;
  delayMs: number | undefined;
  maxExtraLoad: number;
}

export const hedgingDefaults: Readonly<ResolvedHedgingOptions> = Object.freeze({ enabled: true, delayMs: undefined, maxExtraLoad: 0.1 });

export const faultDefaults: Readonly<Required<FaultOptions>> = Object.freeze({ stallProbability: 0, stallMs: 0, seed: 1 });

/** `idleMs` has no default: scaling to zero is asked for by giving it. */
export const scaleToZeroDefaults = Object.freeze({ idleMs: undefined, coldStart: 'wait' as 'wait' | 'default' });

/** No limits by default: a worker gets Node's. */
export const resourceLimitsDefaults = Object.freeze({ maxOldGenerationSizeMb: undefined, maxYoungGenerationSizeMb: undefined, stackSizeMb: undefined });

/** A model version to deploy. */
export interface DeployModelOptions {
  name: string;
  version: string;
  /** `models/<name>/<version>/model.onnx`, or a `.js`/`.mjs` module exporting `predict` (JS model). */
  path: string;
  /** Replica actors (each owns one worker thread). Default 1. */
  replicas?: number;
  batching?: BatchingOptions;
  /** onnxruntime intra-op threads per replica. Default 1: workers share 2 cores with the main thread. */
  intraOpNumThreads?: number;
  /** What the output row means: `classification` (argmax is the label) or `regression`. Default from config.json, else classification. */
  outputKind?: 'classification' | 'regression';
  /** One query's input shape; default from the config.json beside the model (required for JS models without one). */
  inputShape?: number[];
  /** Element type of the input; default from config.json, else float32. */
  inputType?: InputType;
  hedging?: HedgingOptions;
  /**
   * A batch running longer than this counts as a hang. A JS model's worker is then recycled (terminated and
   * restarted; its queries retried elsewhere); an onnxruntime run cannot be killed safely, so its replica stops
   * taking queries until the run returns. Default 10,000 ms.
   */
  batchTimeoutMs?: number;
  /**
   * Sporadic models: after `idleMs` without a query the replicas stop (scale to zero) and the next query
   * loads the model again. `coldStart: 'wait'` (default) makes that query wait for the load; `'default'`
   * answers it with the application's default output when the last measured cold start would break its SLO.
   */
  scaleToZero?: { idleMs: number; coldStart?: 'wait' | 'default' };
  /**
   * Share the system's bounded model slots (`Clipper.start({ multiplex: { maxActiveModels } })`) instead of
   * holding workers for good: loading this version may stop the least recently used multiplexed one.
   */
  multiplexed?: boolean;
  /**
   * Where each replica runs its model: `'thread'` (default), a worker thread of this process; or `'process'`, a
   * child process, so that a native crash of the model runtime (onnxruntime aborting) ends only that child and
   * its replica restarts. A process costs a pipe hop per batch (README, "Running on more than one machine").
   */
  isolation?: 'thread' | 'process';
  /**
   * Run the model in model containers over NATS instead (`clipper-ts container`): each replica claims one
   * container of this version announced in the `clipper-containers` bucket and sends it whole batches. `path`
   * still names the model in this server's repository (for its config.json). README, "Running on more than
   * one machine".
   */
  remote?: RemoteOptions;
  /** Memory limits for each replica's worker thread (Node's `resourceLimits`); a worker over them dies alone and restarts. */
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; stackSizeMb?: number };
  /** Fault injection per replica index (`{ 0: { stallProbability: 0.1, stallMs: 50 } }`). */
  faults?: Record<number, FaultOptions>;
}

export interface RemoteOptions {
  /** NATS server URL(s), comma-separated (`nats://10.0.0.5:4222`). */
  nats: string;
  /** How long a replica waits for a container to be announced when it (re)starts, ms. Default 10,000. */
  claimWaitMs?: number;
  /** A container that has not answered a batch this long after the batch's deadline is taken for dead, ms. Default 250. */
  graceMs?: number;
}

export interface ResolvedDeployModelOptions {
  name: string;
  version: string;
  path: string;
  replicas: number;
  batching: ResolvedBatchingOptions;
  intraOpNumThreads: number;
  outputKind: 'classification' | 'regression' | undefined;
  inputShape: number[] | undefined;
  inputType: InputType | undefined;
  hedging: ResolvedHedgingOptions;
  batchTimeoutMs: number;
  scaleToZero: { idleMs: number; coldStart: 'wait' | 'default' } | undefined;
  multiplexed: boolean;
  isolation: 'thread' | 'process';
  remote: Readonly<Required<RemoteOptions>> | undefined;
  resourceLimits: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number; stackSizeMb?: number } | undefined;
  faults: Record<number, FaultOptions>;
}

/**
 * A deployment's defaults; `undefined` means the value comes from elsewhere: `batching` and `hedging` from their
 * own groups, `outputKind`, `inputShape` and `inputType` from the model's config.json, `scaleToZero`,
 * `resourceLimits` and `faults` off unless given.
 */
export const deployModelDefaults = Object.freeze({
  replicas: 1,
  batching: undefined,
  intraOpNumThreads: 1,
  outputKind: undefined,
  inputShape: undefined,
  inputType: undefined,
  hedging: undefined,
  batchTimeoutMs: 10_000,
  scaleToZero: undefined,
  multiplexed: false,
  isolation: 'thread',
  remote: undefined,
  resourceLimits: undefined,
  faults: undefined,
});

export type { InputType } from '../api.js';

/** An application: the thing queries are addressed to. */
export interface RegisterAppOptions {
  name: string;
  inputType: InputType;
  /** Shape of one query's input, without the batch dimension: `[784]` or `[28, 28]`. */
  inputShape: number[];
  /** Returned, with an explanation, when no model answers in time. */
  defaultOutput: number | string | null;
  /** Latency objective per query, milliseconds. Default 20 (Clipper's examples). */
  latencySloMs?: number;
  /** Prediction cache bound in bytes of input and output data. Default 64 MiB; 0 disables the cache. */
  cacheMaxBytes?: number;
  /**
   * Below this confidence (the share of an ensemble agreeing with its answer) the default output is returned
   * instead, with the reason. Default 0: always answer.
   */
  confidenceThreshold?: number;
  /** An ensemble answers this long before the SLO with the models that made it. Default min(2 ms, SLO / 10). */
  deadlineMarginMs?: number;
}

export type ResolvedAppOptions = Required<RegisterAppOptions>;

/**
 * An application's defaults. `deadlineMarginMs` depends on the SLO: min(2 ms, SLO / 10)
 * ({@link defaultDeadlineMarginMs}).
 */
export const appDefaults = Object.freeze({
  latencySloMs: 20,
  cacheMaxBytes: 64 * 1024 * 1024,
  confidenceThreshold: 0,
  deadlineMarginMs: undefined,
});

/** An ensemble answers this long before its SLO: room for the timer's own lateness. */
export function defaultDeadlineMarginMs(latencySloMs: number): number {
  return Math.min(2, latencySloMs / 10);
}

/** The whole system. */
export interface ClipperOptions {
  /** Where models live; model paths must resolve inside it. Default: the package's `models/`. */
  modelRepository?: string;
  supervision?: Partial<RestartPolicyOptions>;
  /** Injected time (tests). */
  clock?: Clock;
  /** Model multiplexing: at most `maxActiveModels` multiplexed model versions hold workers at once. */
  multiplex?: { maxActiveModels: number };
  /**
   * OpenTelemetry traces: spans for each query (`clipper.route`), each model it asks (`clipper.model`), its wait
   * in a replica's queue and the batch it ran in, made with this tracer (from your TracerProvider; `clipper-ts
   * serve --otlp-endpoint` makes one). Without it no span is made.
   */
  tracer?: Tracer;
}

/** The system's defaults: the repository is the package's `models/`, time is the system clock, no multiplexing, no traces. */
export const clipperDefaults = Object.freeze({ modelRepository: undefined, supervision: undefined, clock: undefined, multiplex: undefined, tracer: undefined });

/** `maxActiveModels` has no default: multiplexing is asked for by giving it. */
export const multiplexDefaults = Object.freeze({ maxActiveModels: undefined });

export interface ResolvedClipperOptions {
  modelRepository: string | undefined;
  supervision: Readonly<RestartPolicyOptions>;
  clock: Clock | undefined;
  multiplex: Readonly<{ maxActiveModels: number }> | undefined;
  tracer: Tracer | undefined;
}

export const supervisionDefaults: Readonly<RestartPolicyOptions> = Object.freeze({
  maxRestarts: 5,
  windowMs: 60_000,
  backoffBaseMs: 100,
  backoffMaxMs: 5_000,
});

function checkShape(what: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || shape.length === 0 || shape.length > 8 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    fail(what, 'a non-empty array of positive integers (one query, no batch dimension), e.g. [784]', shape);
  }
  const elements = elementCount(shape as number[]);
  if (elements > 16_777_216) fail(what, 'at most 2^24 elements per query', shape);
  return Object.freeze([...(shape as number[])]) as number[];
}

export function resolveBatchingOptions(input: BatchingOptions | undefined, what = 'batching'): Readonly<ResolvedBatchingOptions> {
  const given = checkObject(what, input ?? {});
  checkKnownKeys(what, given, Object.keys(batchingDefaults));
  const o = { ...batchingDefaults, ...defined(given as BatchingOptions) };
  const resolved: ResolvedBatchingOptions = {
    mode: checkOneOf(`${what}.mode`, o.mode, ['aimd', 'fixed', 'none'] as const),
    maxBatchSize: checkInteger(`${what}.maxBatchSize`, o.maxBatchSize, 1, 65_536),
    initialBatchSize: checkInteger(`${what}.initialBatchSize`, o.initialBatchSize, 1, 65_536),
    additiveStep: checkInteger(`${what}.additiveStep`, o.additiveStep, 1, 65_536),
    backoffFactor: checkNumber(`${what}.backoffFactor`, o.backoffFactor, 0, 1, { exclusiveMin: true }),
    latencyBudgetMs: o.latencyBudgetMs === undefined ? undefined : checkNumber(`${what}.latencyBudgetMs`, o.latencyBudgetMs, 0, 600_000, { exclusiveMin: true }),
    maxQueueDelayMicroseconds: checkInteger(`${what}.maxQueueDelayMicroseconds`, o.maxQueueDelayMicroseconds, 0, 10_000_000),
    maxQueueSize: checkInteger(`${what}.maxQueueSize`, o.maxQueueSize, 1, 10_000_000),
  };
  if (resolved.backoffFactor >= 1) fail(`${what}.backoffFactor`, 'a number in (0, 1)', resolved.backoffFactor);
  if (resolved.initialBatchSize > resolved.maxBatchSize) {
    throw new InvalidOptionError(`${what}.initialBatchSize (${resolved.initialBatchSize}) must not exceed ${what}.maxBatchSize (${resolved.maxBatchSize})`);
  }
  return Object.freeze(resolved);
}

/**
 * A deployment's options over the model's own batching defaults (its config.json `batching` block): the
 * deployment's batching options win key by key. The block is validated on its own first, so a bad value is
 * reported against the file it is in.
 */
export function withModelBatching(
  resolved: Readonly<ResolvedDeployModelOptions>,
  modelBatching: BatchingOptions,
  given: BatchingOptions | undefined,
  configFile: string,
): Readonly<ResolvedDeployModelOptions> {
  resolveBatchingOptions(modelBatching, `${configFile}: batching`);
  const batching = resolveBatchingOptions({ ...modelBatching, ...defined(checkObject('model.batching', given ?? {}) as BatchingOptions) }, 'model.batching');
  return Object.freeze({ ...resolved, batching });
}

function resolveFaults(what: string, value: unknown): Record<number, FaultOptions> {
  const given = checkObject(what, value ?? {});
  const out: Record<number, FaultOptions> = {};
  for (const [key, raw] of Object.entries(given)) {
    const index = checkInteger(`${what} key`, Number(key), 0, 1023);
    const f = checkObject(`${what}[${key}]`, raw);
    checkKnownKeys(`${what}[${key}]`, f, Object.keys(faultDefaults));
    const o = { ...faultDefaults, ...defined(f as FaultOptions) };
    out[index] = Object.freeze({
      stallProbability: checkNumber(`${what}[${key}].stallProbability`, o.stallProbability, 0, 1),
      stallMs: checkNumber(`${what}[${key}].stallMs`, o.stallMs, 0, 600_000),
      seed: checkInteger(`${what}[${key}].seed`, o.seed, 0, 2 ** 32 - 1),
    });
  }
  return Object.freeze(out);
}

export function resolveDeployModelOptions(input: DeployModelOptions): Readonly<ResolvedDeployModelOptions> {
  const given = checkObject('model', input);
  checkKnownKeys('model', given, ['name', 'version', 'path', ...Object.keys(deployModelDefaults)]);
  if (typeof given.path !== 'string' || given.path.length === 0) fail('model.path', 'a non-empty string path to a .onnx file or a JS module', given.path);
  const o: Record<string, unknown> = { ...deployModelDefaults, ...defined(given) };
  return Object.freeze({
    name: checkName('model.name', o.name),
    version: checkName('model.version', o.version),
    path: o.path as string,
    replicas: checkInteger('model.replicas', o.replicas, 0, MAX_REPLICAS),
    batching: resolveBatchingOptions(o.batching as BatchingOptions | undefined, 'model.batching'),
    intraOpNumThreads: checkInteger('model.intraOpNumThreads', o.intraOpNumThreads, 1, 64),
    outputKind: o.outputKind === undefined ? undefined : checkOneOf('model.outputKind', o.outputKind, ['classification', 'regression'] as const),
    inputShape: o.inputShape === undefined ? undefined : checkShape('model.inputShape', o.inputShape),
    inputType: o.inputType === undefined ? undefined : checkOneOf('model.inputType', o.inputType, ['float32', 'int32'] as const),
    hedging: resolveHedging('model.hedging', o.hedging),
    batchTimeoutMs: checkNumber('model.batchTimeoutMs', o.batchTimeoutMs, 0, 3_600_000, { exclusiveMin: true }),
    scaleToZero: o.scaleToZero === undefined ? undefined : resolveScaleToZero('model.scaleToZero', o.scaleToZero),
    multiplexed: checkBoolean('model.multiplexed', o.multiplexed),
    isolation: checkOneOf('model.isolation', o.isolation, ['thread', 'process'] as const),
    remote: o.remote === undefined ? undefined : resolveRemote('model.remote', o.remote),
    resourceLimits: o.resourceLimits === undefined ? undefined : resolveResourceLimits('model.resourceLimits', o.resourceLimits),
    faults: resolveFaults('model.faults', o.faults),
  });
}

function resolveScaleToZero(what: string, value: unknown): ResolvedDeployModelOptions['scaleToZero'] {
  const given = checkObject(what, value);
  checkKnownKeys(what, given, Object.keys(scaleToZeroDefaults));
  const o = { ...scaleToZeroDefaults, ...defined(given) };
  return Object.freeze({
    idleMs: checkNumber(`${what}.idleMs`, o.idleMs, 0, 31_536_000_000, { exclusiveMin: true }),
    coldStart: checkOneOf(`${what}.coldStart`, o.coldStart, ['wait', 'default'] as const),
  });
}

function resolveRemote(what: string, value: unknown): ResolvedDeployModelOptions['remote'] {
  const given = checkObject(what, value);
  checkKnownKeys(what, given, ['nats', 'claimWaitMs', 'graceMs']);
  if (typeof given.nats !== 'string' || given.nats.length === 0) fail(`${what}.nats`, 'a NATS server URL such as "nats://127.0.0.1:4222"', given.nats);
  return Object.freeze({
    nats: given.nats as string,
    claimWaitMs: checkNumber(`${what}.claimWaitMs`, given.claimWaitMs ?? 10_000, 0, 3_600_000),
    graceMs: checkNumber(`${what}.graceMs`, given.graceMs ?? 250, 0, 600_000),
  });
}

function resolveResourceLimits(what: string, value: unknown): ResolvedDeployModelOptions['resourceLimits'] {
  const given = checkObject(what, value);
  const keys = Object.keys(resourceLimitsDefaults) as (keyof typeof resourceLimitsDefaults)[];
  checkKnownKeys(what, given, keys);
  const out: Record<string, number> = {};
  for (const key of keys) if (given[key] !== undefined) out[key] = checkNumber(`${what}.${key}`, given[key], 0, 1_048_576, { exclusiveMin: true });
  return Object.freeze(out);
}

function resolveHedging(what: string, value: unknown): ResolvedHedgingOptions {
  const given = checkObject(what, value ?? {});
  checkKnownKeys(what, given, Object.keys(hedgingDefaults));
  const o = { ...hedgingDefaults, ...defined(given) };
  return Object.freeze({
    enabled: checkBoolean(`${what}.enabled`, o.enabled),
    delayMs: o.delayMs === undefined ? undefined : checkNumber(`${what}.delayMs`, o.delayMs, 0, 600_000),
    maxExtraLoad: checkNumber(`${what}.maxExtraLoad`, o.maxExtraLoad, 0, 1),
  });
}

export function resolveAppOptions(input: RegisterAppOptions): Readonly<ResolvedAppOptions> {
  const given = checkObject('app', input);
  checkKnownKeys('app', given, ['name', 'inputType', 'inputShape', 'defaultOutput', ...Object.keys(appDefaults)]);
  const o: Record<string, unknown> = { ...appDefaults, ...defined(given) };
  const shape = checkShape('app.inputShape', o.inputShape);
  const slo = checkNumber('app.latencySloMs', o.latencySloMs, 0, 3_600_000, { exclusiveMin: true });
  const def = o.defaultOutput;
  if (def !== null && typeof def !== 'string' && !(typeof def === 'number' && Number.isFinite(def))) {
    fail('app.defaultOutput', 'a finite number, a string or null', def);
  }
  return Object.freeze({
    name: checkName('app.name', o.name),
    inputType: checkOneOf('app.inputType', o.inputType, ['float32', 'int32'] as const),
    inputShape: shape,
    defaultOutput: def as number | string | null,
    latencySloMs: slo,
    cacheMaxBytes: checkInteger('app.cacheMaxBytes', o.cacheMaxBytes, 0, 2 ** 40),
    confidenceThreshold: checkNumber('app.confidenceThreshold', o.confidenceThreshold, 0, 1),
    deadlineMarginMs: checkNumber('app.deadlineMarginMs', o.deadlineMarginMs ?? defaultDeadlineMarginMs(slo), 0, slo / 2),
  });
}

export function resolveSupervisionOptions(input: Partial<RestartPolicyOptions> | undefined): Readonly<RestartPolicyOptions> {
  const given = checkObject('supervision', input ?? {});
  checkKnownKeys('supervision', given, Object.keys(supervisionDefaults));
  const o = { ...supervisionDefaults, ...defined(given as Partial<RestartPolicyOptions>) };
  const resolved = {
    maxRestarts: checkInteger('supervision.maxRestarts', o.maxRestarts, 0, 1_000_000),
    windowMs: checkNumber('supervision.windowMs', o.windowMs, 0, 86_400_000, { exclusiveMin: true }),
    backoffBaseMs: checkNumber('supervision.backoffBaseMs', o.backoffBaseMs, 0, 3_600_000),
    backoffMaxMs: checkNumber('supervision.backoffMaxMs', o.backoffMaxMs, 0, 3_600_000),
  };
  if (resolved.backoffMaxMs < resolved.backoffBaseMs) {
    throw new InvalidOptionError(`supervision.backoffMaxMs (${resolved.backoffMaxMs}) must be >= supervision.backoffBaseMs (${resolved.backoffBaseMs})`);
  }
  return Object.freeze(resolved);
}

/**
 * The system's options, validated once in `Clipper.start` (unknown keys refused, each value named in its
 * message), then frozen.
 */
export function resolveClipperOptions(input: ClipperOptions | undefined): Readonly<ResolvedClipperOptions> {
  const given = checkObject('options', input ?? {});
  checkKnownKeys('options', given, Object.keys(clipperDefaults));
  const o = { ...clipperDefaults, ...defined(given as ClipperOptions) };
  if (o.modelRepository !== undefined && (typeof o.modelRepository !== 'string' || o.modelRepository.length === 0)) {
    fail('options.modelRepository', 'a non-empty path', o.modelRepository);
  }
  const clock = o.clock as unknown;
  if (clock !== undefined && (typeof clock !== 'object' || clock === null || typeof (clock as Clock).now !== 'function' || typeof (clock as Clock).setTimeout !== 'function')) {
    fail('options.clock', 'a Clock (an object with now() and setTimeout())', clock);
  }
  const tracer = o.tracer as unknown;
  if (tracer !== undefined && (typeof tracer !== 'object' || tracer === null || typeof (tracer as Tracer).startSpan !== 'function')) {
    fail('options.tracer', 'an OpenTelemetry Tracer (an object with startSpan())', tracer);
  }
  let multiplex: ResolvedClipperOptions['multiplex'];
  if (o.multiplex !== undefined) {
    const m = checkObject('options.multiplex', o.multiplex);
    checkKnownKeys('options.multiplex', m, Object.keys(multiplexDefaults));
    multiplex = Object.freeze({ maxActiveModels: checkInteger('options.multiplex.maxActiveModels', m.maxActiveModels, 1, 1024) });
  }
  return Object.freeze({
    modelRepository: o.modelRepository as string | undefined,
    supervision: resolveSupervisionOptions(o.supervision),
    clock: clock as Clock | undefined,
    multiplex,
    tracer: tracer as Tracer | undefined,
  });
}
