import { elementCount } from './config/shape.js';
import path from 'node:path';
import { ReplicaSet } from '../actors/replica-set.js';
import { FeedbackActor } from '../actors/feedback.js';
import { context as otelContext, SpanStatusCode, type Context, type Tracer } from '@opentelemetry/api';
import type { Answer, AppInfo, BatchEvent, ClipperTestingHandle, Fault, FeedbackRelay, FeedbackResult, ModelInfo, ModelSignatureInfo, ModelVersionInfo, OutputKind, PredictOptions, RelayedFeedback } from './api.js';
import { inputDigest } from './routing/prediction-cache.js';
import type { AnswerSink, CancelSignal, ModelDirectory, ModelVersion, QueryTrace, ReplicaAnswer } from '../actors/contracts.js';
import { DeadlineList, type DeadlineEntry } from './kernel/deadline-list.js';
import { MultiplexPool } from './routing/multiplex-pool.js';
import { Router } from '../actors/router.js';
import type { ModelSpec } from '../actors/worker/protocol.js';
import { systemClock, type Clock } from './kernel/clock.js';
import {
  AlreadyExistsError,
  DeadlineExceededError,
  IncompatibleModelError,
  InvalidInputError,
  InvalidOptionError,
  NoReplicaAvailableError,
  type OverloadedError,
  ShuttingDownError,
  UnknownApplicationError,
  UnknownModelError,
  UnknownVersionError,
} from './errors.js';
import { checkQueryContext, toInputRow } from './config/input.js';
import { checkInteger } from './config/validate.js';
import { readModelConfig, resolveModelPath } from './config/model-config.js';
import {
  checkName,
  feedbackDefaults,
  inferDefaults,
  MAX_REPLICAS,
  resolveAppOptions,
  resolveDeployModelOptions,
  resolveClipperOptions,
  withModelBatching,
  type ClipperOptions,
  type DeployModelOptions,
  type RegisterAppOptions,
  type ResolvedAppOptions,
} from './config/options.js';
import { modelsDir } from './paths.js';
import type { RestartPolicyOptions } from './kernel/restart-policy.js';
import { createPolicy, type PolicySpec } from './selection/policy-factory.js';
import { Exp4Policy } from './selection/exp4-policy.js';
import { KeyedPolicy } from './selection/keyed-policy.js';
import type { PolicySnapshot, QueryContext, SelectionPolicy } from './selection/selection-policy.js';
import { Supervisor, type SupervisionEvent } from './kernel/supervisor.js';

interface ModelEntry {
  name: string;
  versions: Map<string, ReplicaSet>;
  current: string;
  outputKind: OutputKind;
  /**
   * Values per output row of each version, known from its config.json's `output.shape` or its first warm-up,
   * and kept when the version scales to zero: the link check and feedback's label range need it with no
   * replica loaded.
   */
  outputSizes: Map<string, number>;
}

/**
 * Whether a policy combines the outputs of several models into one answer (so their rows must have one
 * width): Exp4, alone or per user. Policies that pick one model per query answer with that model's row.
 */
function combinesOutputs(policy: SelectionPolicy): boolean {
  if (policy instanceof Exp4Policy) return true;
  if (policy instanceof KeyedPolicy) {
    const shared = policy.policy();
    return shared !== undefined && combinesOutputs(shared);
  }
  return false;
}

/**
 * The serving system: applications, the models deployed for them, and the actors that serve queries.
 *
 * @example
 * const clipper = await Clipper.start();
 * await clipper.registerApp({ name: 'digits', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 20 });
 * await clipper.deployModel({ name: 'mnist-mlp', version: '1', path: 'models/mnist-mlp/1/model.onnx', replicas: 2 });
 * await clipper.linkModel('digits', 'mnist-mlp');
 * const answer = await clipper.predict('digits', input);
 * await clipper.stop();
 */
export class Clipper {
  readonly repository: string;
  readonly clock: Clock;
  readonly supervision: Readonly<RestartPolicyOptions>;
  readonly #supervisor: Supervisor;
  readonly #apps = new Map<string, Router>();
  readonly #feedback = new Map<string, FeedbackActor>();
  readonly #models = new Map<string, ModelEntry>();
  readonly #listeners = new Set<(event: SupervisionEvent) => void>();
  readonly #batchListeners = new Set<(event: BatchEvent) => void>();
  readonly #multiplex: MultiplexPool | undefined;
  /** What the routers and feedback actors see of the models: each model's current version, as an interface. */
  readonly #directory: ModelDirectory = {
    current: (model: string): ModelVersion | undefined => this.#currentOrUndefined(model),
    outputKind: (model: string): OutputKind => this.#models.get(model)?.outputKind ?? 'classification',
  };
  #deploying = 0;
  #stopping = false;
  readonly #tracer: Tracer | undefined;
  /** Where feedback goes instead of the local actors (relayFeedback); undefined: applied here. */
  #feedbackRelay: FeedbackRelay | undefined;
  /** The infer calls waiting for their answers, a deadline list (one timer) per timeout. */
  readonly #inferCalls = new Map<number, InferCalls>();
  /** Per application: the draw a relayed feedback being applied carries, and the relayed feedback applied in turn. */
  readonly #relayed = new Map<string, { selection: RelayedFeedback['selection'] | null; tail: Promise<unknown> }>();

  private constructor(given: ClipperOptions) {
    const options = resolveClipperOptions(given);
    this.repository = path.resolve(options.modelRepository ?? modelsDir);
    this.clock = options.clock ?? systemClock;
    this.supervision = options.supervision;
    this.#tracer = options.tracer;
    if (options.multiplex !== undefined) this.#multiplex = new MultiplexPool(options.multiplex.maxActiveModels);
    this.#supervisor = new Supervisor('supervisor', this.supervision, {
      clock: this.clock,
      onEvent: (event) => {
        for (const listener of this.#listeners) listener(event);
      },
    });
  }

  /** Starts an empty system; register applications and deploy models next. */
  static async start(options: ClipperOptions = {}): Promise<Clipper> {
    const clipper = new Clipper(options);
    await clipper.#supervisor.start();
    return clipper;
  }

  /** Subscribes to supervision events (restarts scheduled, done, given up). Returns the unsubscribe function. */
  onSupervisionEvent(listener: (event: SupervisionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Subscribes to finished batches (for metrics). Returns the unsubscribe function. */
  onBatch(listener: (event: BatchEvent) => void): () => void {
    this.#batchListeners.add(listener);
    return () => this.#batchListeners.delete(listener);
  }

  /** True when no deployment is in progress and every model's current version has a ready replica. */
  get ready(): boolean {
    if (this.#stopping || this.#deploying > 0) return false;
    return [...this.#models.values()].every((m) => {
      const set = m.versions.get(m.current);
      // A model scaled to zero serves (after a cold start), so it does not make the server unready.
      return set !== undefined && (set.readyCount > 0 || set.scaledToZero);
    });
  }

  /** Whether one model (current version, or the one named) can take queries. */
  isModelReady(modelName: string, version?: string): boolean {
    const entry = this.#models.get(modelName);
    const set = entry?.versions.get(version ?? entry.current);
    return set !== undefined && set.readyCount > 0;
  }

  /**
   * Runs rows straight through one model version, without an application, a policy or default outputs (the
   * Open Inference Protocol's `infer`). The rows share one deadline, `timeoutMs` away, and are admitted as one
   * unit (one decision for all of them, on one replica). Rejects with {@link OverloadedError} when the replicas
   * are busy (retry later), {@link BatchTooLargeError} (400, with the largest number of rows that would fit) when
   * even an idle replica could not answer that many rows in time, {@link DeadlineExceededError} when the model
   * cannot answer in time, or {@link CancelledError} once `signal` aborts (the rows still queued are dropped unrun).
   * `priority` is Triton's: 1 most urgent, larger numbers less, 0 or absent the default level (after every named
   * one); a more urgent query is batched first and may make less urgent queued ones late, never the reverse.
   */
  async infer(
    modelName: string,
    rows: readonly unknown[],
    options: { version?: string; timeoutMs?: number; trace?: Context; signal?: CancelSignal; priority?: number } = {},
  ): Promise<Float32Array[]> {
    if (this.#stopping) throw new ShuttingDownError('the system is stopping and takes no new queries');
    const set = this.#set(modelName, options.version);
    const shapeApp = { name: `model ${set.key}`, inputType: set.spec.inputDtype, inputShape: set.spec.featureShape } as ResolvedAppOptions;
    const typed = rows.map((row) => toInputRow(shapeApp, row));
    const timeoutMs = options.timeoutMs ?? inferDefaults.timeoutMs;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new InvalidInputError(`infer's timeoutMs is ${String(timeoutMs)}; it must be a finite number of milliseconds above 0`);
    }
    const deadline = this.clock.now() + timeoutMs;
    if (this.#tracer === undefined) return this.#inferRows(set, typed, deadline, timeoutMs, options.signal, options.priority, undefined);
    const span = this.#tracer.startSpan('clipper.infer', { attributes: { 'clipper.model': set.model, 'clipper.version': set.version, 'clipper.rows': typed.length } }, options.trace ?? otelContext.active());
    try {
      return await this.#inferRows(set, typed, deadline, timeoutMs, options.signal, options.priority, { tracer: this.#tracer, parent: span.spanContext() });
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  }

  /**
   * {@link infer}'s rows on `set`, answered by `deadline` at the latest: a lone row goes through the replica
   * set's sink path (no promise per hop), several as one unit; the call waits in a deadline list instead of a
   * timer and a `Promise.race` each: one list per timeout, since calls with the same timeout come in due order
   * (a list's insertion walks back past every entry due later), dropped when it empties.
   */
  #inferRows(
    set: ReplicaSet,
    typed: (Float32Array | Int32Array)[],
    deadline: number,
    timeoutMs: number,
    signal: CancelSignal | undefined,
    priority: number | undefined,
    trace: QueryTrace | undefined,
  ): Promise<Float32Array[]> {
    return new Promise<Float32Array[]>((resolve, reject) => {
      const calls = this.#inferCalls.get(timeoutMs) ?? this.#inferCallsFor(timeoutMs);
      const call = new InferCall(calls, set.key, deadline, resolve, reject);
      calls.list.add(call);
      try {
        if (typed.length === 1) set.send(typed[0] as Float32Array | Int32Array, deadline, call, signal, priority, trace);
        else set.predictMany(typed, deadline, signal, priority, trace).then((answers) => call.answered(answers), (error: unknown) => call.reject(error));
      } catch (error) {
        call.reject(error);
      }
    });
  }

  /** A new list for the infer calls with `timeoutMs`, forgotten once it holds none (gRPC deadlines vary per call). */
  #inferCallsFor(timeoutMs: number): InferCalls {
    const calls: InferCalls = {
      timeoutMs,
      list: new DeadlineList<InferCall>(this.clock, (call) => {
        call.expire();
        calls.release();
      }),
      release: () => {
        if (calls.list.size === 0 && this.#inferCalls.get(timeoutMs) === calls) this.#inferCalls.delete(timeoutMs);
      },
    };
    this.#inferCalls.set(timeoutMs, calls);
    return calls;
  }

  /** Stops and removes every version of a model, unlinking it from its applications (repository `unload`). */
  async removeModel(modelName: string): Promise<void> {
    const entry = this.#model(modelName);
    this.#models.delete(modelName);
    for (const router of this.#apps.values()) router.unlink(modelName);
    await Promise.all([...entry.versions.values()].map((set) => set.stop()));
    // The cache keys a prediction by model@version and input; a file deployed later under the same name and
    // version must not be answered with this one's predictions. Cleared after the drain, so no evaluation
    // that finishes during it can put an old answer back. Removing a model is rare: every cache is cleared.
    for (const router of this.#apps.values()) router.cache.clear();
  }

  /** Registers an application (Clipper's `register_application`). */
  async registerApp(options: RegisterAppOptions & { policy?: PolicySpec }): Promise<void> {
    this.#checkRunning();
    const { policy: _policy, ...appOptions } = options;
    const app = resolveAppOptions(appOptions);
    if (this.#apps.has(app.name)) throw new AlreadyExistsError(`application ${app.name} is already registered`);
    // Supervised like replicas: a crash in the router (a bug, not a policy's exception) restarts it with backoff.
    const router = new Router(app, this.#directory, this.clock, options.policy === undefined ? undefined : createPolicy(options.policy), this.#supervisor, this.#tracer);
    await router.start();
    // Feedback relayed from another frontend learns from the draw it carries, not from this router's log.
    const relayed = { selection: null as RelayedFeedback['selection'] | null, tail: Promise.resolve() as Promise<unknown> };
    this.#relayed.set(app.name, relayed);
    const feedbackRouter = {
      get app() { return router.app; },
      get cache() { return router.cache; },
      get linkedModels() { return router.linkedModels; },
      get policy() { return router.policy; },
      takeSelection: (digest: string, context: QueryContext | undefined) => (relayed.selection === null ? router.takeSelection(digest, context) : relayed.selection),
    };
    const feedback = new FeedbackActor(feedbackRouter, this.#directory, this.clock, feedbackDefaults.timeoutMs);
    await feedback.start();
    this.#apps.set(app.name, router);
    this.#feedback.set(app.name, feedback);
  }

  /**
   * Deploys a model version (Clipper's `deploy_model`): starts its replicas, loads and warms up the model in
   * each, and makes it the model's current version.
   */
  async deployModel(options: DeployModelOptions): Promise<void> {
    this.#checkRunning();
    const resolved = resolveDeployModelOptions(options);
    const existing = this.#models.get(resolved.name);
    if (existing?.versions.has(resolved.version)) {
      throw new AlreadyExistsError(`model ${resolved.name} version ${resolved.version} is already deployed; deploy a new version or set_model_version`);
    }
    const file = resolveModelPath(this.repository, resolved.path);
    const ext = path.extname(file).toLowerCase();
    if (!['.onnx', '.js', '.mjs'].includes(ext)) {
      throw new InvalidOptionError(`model.path must name a .onnx file or a .js/.mjs module; got ${JSON.stringify(resolved.path)}`);
    }
    const config = readModelConfig(file);
    const deploy = config?.batching === undefined ? resolved : withModelBatching(resolved, config.batching, options.batching, path.join(path.dirname(file), 'config.json'));
    const featureShape = resolved.inputShape ?? config?.input.shape;
    if (featureShape === undefined) {
      throw new InvalidOptionError(`model ${resolved.name}: pass inputShape, or put a config.json with input.shape beside ${file}`);
    }
    const spec: ModelSpec = {
      key: `${resolved.name}@${resolved.version}`,
      kind: ext === '.onnx' ? 'onnx' : 'js',
      path: file,
      inputDtype: resolved.inputType ?? config?.input.dtype ?? 'float32',
      featureShape: [...featureShape],
      ...(config?.input.name === undefined ? {} : { inputName: config.input.name }),
      ...(config?.output.name === undefined ? {} : { outputName: config.output.name }),
      intraOpNumThreads: resolved.intraOpNumThreads,
    };
    if (resolved.multiplexed && this.#multiplex === undefined) {
      throw new InvalidOptionError(`model ${resolved.name} asks to be multiplexed, but the system has no pool: start it with Clipper.start({ multiplex: { maxActiveModels } })`);
    }
    const set = new ReplicaSet(
      deploy,
      spec,
      this.clock,
      this.#supervisor,
      (event) => {
        for (const listener of this.#batchListeners) listener(event);
      },
      resolved.multiplexed ? this.#multiplex : undefined,
    );
    this.#deploying++;
    try {
      await set.setReplicas(resolved.replicas);
    } finally {
      this.#deploying--;
    }
    const entry: ModelEntry = existing ?? {
      name: resolved.name,
      versions: new Map(),
      current: resolved.version,
      outputKind: resolved.outputKind ?? config?.output.kind ?? 'classification',
      outputSizes: new Map(),
    };
    entry.versions.set(resolved.version, set);
    const configured = config?.output.shape === undefined ? undefined : elementCount(config.output.shape);
    const outputSize = set.outputSize > 0 ? set.outputSize : configured;
    if (outputSize !== undefined && outputSize > 0) entry.outputSizes.set(resolved.version, outputSize);
    const previous = existing === undefined ? undefined : entry.versions.get(entry.current);
    entry.current = resolved.version;
    this.#models.set(resolved.name, entry);
    this.#refreshBudgets(resolved.name);
    // The new version is loaded and warm (setReplicas waits for that) before it takes traffic; the old one
    // finishes what it holds, then its workers stop. Rolling back starts them again.
    await previous?.suspend();
  }

  /** Links a model to an application (Clipper's `link_model_to_app`); its input must fit the application's. */
  async linkModel(appName: string, modelName: string): Promise<void> {
    const router = this.#router(appName);
    const set = this.#currentSet(modelName);
    const appSize = elementCount(router.app.inputShape);
    const modelSize = elementCount(set.spec.featureShape);
    if (appSize !== modelSize || router.app.inputType !== set.spec.inputDtype) {
      throw new InvalidInputError(
        `model ${modelName} takes ${set.spec.inputDtype} [${set.spec.featureShape.join(', ')}]; application ${appName} sends ${router.app.inputType} [${router.app.inputShape.join(', ')}]`,
      );
    }
    if (combinesOutputs(router.policy)) this.#checkOutputWidths(appName, [...router.linkedModels, modelName], router.policy.name);
    router.link(modelName);
    this.#refreshBudgets(modelName);
  }

  /** Removes a link; queries stop going to that model. */
  async unlinkModel(appName: string, modelName: string): Promise<void> {
    this.#router(appName).unlink(modelName);
    this.#refreshBudgets(modelName);
  }

  /**
   * Sets the application's selection policy: a policy object, or a spec such as `{ kind: 'exp4' }`,
   * `{ kind: 'exp3', eta: 0.1 }`, `{ kind: 'ab', weights: { a: 0.9, b: 0.1 } }`, with `perUser` for one
   * learned policy per query `uid`. Default: `static` (the first linked model).
   */
  setPolicy(appName: string, policy: SelectionPolicy | PolicySpec): void {
    const router = this.#router(appName);
    const chosen = 'select' in policy ? policy : createPolicy(policy);
    if (combinesOutputs(chosen)) this.#checkOutputWidths(appName, router.linkedModels, chosen.name);
    router.setPolicy(chosen);
  }

  /** The application's learned policy state as JSON (weights per model, per user), to inspect or save. */
  getPolicyState(appName: string): PolicySnapshot | null {
    return this.#router(appName).policy.snapshot?.() ?? null;
  }

  /** Restores a saved policy state, so learning survives a restart. The policy must be of the same kind. */
  restorePolicyState(appName: string, snapshot: PolicySnapshot): void {
    const policy = this.#router(appName).policy;
    if (policy.restore === undefined) throw new InvalidOptionError(`application ${appName}'s policy (${policy.name}) keeps no state to restore`);
    policy.restore(snapshot);
  }

  /** Rolls a model forward or back (Clipper's `set_model_version`). Takes effect for the next query. */
  async setModelVersion(modelName: string, version: string): Promise<void> {
    const entry = this.#model(modelName);
    if (!entry.versions.has(version)) {
      throw new UnknownVersionError(`model ${modelName} has no version ${JSON.stringify(version)}; it has ${[...entry.versions.keys()].join(', ')}`);
    }
    const target = entry.versions.get(version) as ReplicaSet;
    const previous = entry.versions.get(entry.current);
    if (target === previous) return;
    // Warm the target first, so no query meets a cold model; then switch; then drain the old version.
    await target.resume();
    entry.current = version;
    this.#refreshBudgets(modelName);
    await previous?.suspend();
  }

  /** Scales the current version of a model to `count` replicas (Clipper's `set_num_replicas`). */
  async setNumReplicas(modelName: string, count: number): Promise<void> {
    checkInteger('replicas', count, 0, MAX_REPLICAS);
    await this.#currentSet(modelName).setReplicas(count);
  }

  /**
   * Answers one query: the models' output, or the application's default output with an explanation when no
   * model could answer within the SLO. Rejects with a typed error for bad input, an unknown application, or
   * overload (a full queue).
   */
  predict(appName: string, input: unknown, options: PredictOptions = {}): Promise<Answer> {
    // Not an async function (one promise fewer per query): every error thrown here is returned as a rejection.
    try {
      const router = this.#router(appName);
      if (this.#stopping) throw new ShuttingDownError('the system is stopping and takes no new queries');
      const context = checkQueryContext(options);
      const traceContext = context.trace;
      // The trace context is not the policy's business: policies see the uid alone.
      return router.predict(toInputRow(router.app, input), traceContext === undefined ? context : { uid: context.uid }, this.#tracer === undefined ? undefined : (traceContext ?? otelContext.active()));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Admission for a query not yet read: the HTTP edge asks before it parses a predict request's body, so a query
   * refused under overload costs no parse. Returns undefined (and counts nothing) unless the application has no
   * cache and one linked model that its policy is sure to select, and no ready replica of that model's current
   * version would admit a query arriving now; then the query is counted as refused, in the application's and
   * the replica's counters as a refusal at admission is, and the {@link OverloadedError} to answer it with (its
   * `retryAfterSeconds` from the replica's queue) is returned. Also undefined for an unknown application or
   * while stopping: the normal path answers those. The request is unread, so one that holds several queries
   * (Clipper REST's `input_batch`) is refused, and counted, as one.
   *
   * @example
   * const refusal = clipper.refuseUnread('digits');
   * if (refusal !== undefined) return reply.code(503).header('retry-after', String(refusal.retryAfterSeconds)).send(refusal.toJSON());
   */
  refuseUnread(appName: string): OverloadedError | undefined {
    if (this.#stopping) return undefined;
    return this.#apps.get(appName)?.refuseUnread();
  }

  /**
   * Answers many queries of one application at once, for callers that already hold the inputs (Clipper REST's
   * `input_batch`): every input is validated before any runs (the first bad one rejects the call with its
   * index), then each is answered as {@link predict} answers it (cache, policy, default outputs under the SLO),
   * in the inputs' order, in one promise.
   */
  async predictBatch(appName: string, inputs: readonly unknown[], options: PredictOptions = {}): Promise<Answer[]> {
    const router = this.#router(appName);
    if (this.#stopping) throw new ShuttingDownError('the system is stopping and takes no new queries');
    if (!Array.isArray(inputs) || inputs.length === 0) throw new InvalidInputError(`predictBatch takes a non-empty array of inputs for application ${appName}; got ${Array.isArray(inputs) ? 'an empty array' : typeof inputs}`);
    const context = checkQueryContext(options);
    const rows = inputs.map((input, i) => {
      try {
        return toInputRow(router.app, input);
      } catch (error) {
        if (error instanceof InvalidInputError) throw new InvalidInputError(`inputs[${i}]: ${error.message}`, { cause: error });
        throw error;
      }
    });
    const traceContext = context.trace;
    const queryContext = traceContext === undefined ? context : { uid: context.uid };
    const trace = this.#tracer === undefined ? undefined : (traceContext ?? otelContext.active());
    return Promise.all(rows.map((row) => router.predict(row, queryContext, trace)));
  }

  /**
   * Feedback (Clipper's `update`): the true label for an input answered earlier. Each linked model's
   * prediction for it comes from the prediction cache (models that miss are evaluated), becomes a loss, and
   * updates the application's selection policy. Applied per application in arrival order, off the query path.
   */
  async feedback(appName: string, input: unknown, label: unknown, context: QueryContext = {}): Promise<FeedbackResult> {
    const router = this.#router(appName);
    const actor = this.#feedback.get(appName) as FeedbackActor;
    if (this.#stopping) throw new ShuttingDownError('the system is stopping and takes no feedback');
    if (typeof label !== 'number' || !Number.isFinite(label)) {
      throw new InvalidInputError(`label must be a finite number (a class index for classifiers); got ${JSON.stringify(label) ?? String(label)}`);
    }
    const classifiers = router.linkedModels.filter((m) => this.#models.get(m)?.outputKind === 'classification');
    if (classifiers.length > 0) {
      // The width is known per version even while no replica is loaded (scaled to zero), so the range check
      // applies once a version has a config.json output shape or has warmed up once.
      const classes = Math.max(...classifiers.map((m) => this.#outputSize(m) ?? 0));
      if (!Number.isInteger(label) || label < 0 || (classes > 0 && label >= classes)) {
        throw new InvalidInputError(`label ${label} is not a class of application ${appName}; expected an integer in [0, ${classes > 0 ? classes - 1 : 'classes - 1'}]`);
      }
    }
    const row = toInputRow(router.app, input);
    const checked = checkQueryContext(context);
    const relay = this.#feedbackRelay;
    if (relay === undefined) return actor.feedback(row, label, checked);
    // The draw this feedback answers is in this frontend's log: taken here, once, and carried with it.
    const selection = router.policy.learnsFrom === 'selected' ? router.takeSelection(inputDigest(row), checked) : undefined;
    return relay({ app: appName, input: row, label, context: { ...checked }, selection: selection === undefined ? undefined : { models: [...selection.models], probability: selection.probability } });
  }

  /**
   * Sends every feedback event through `relay` (a log every frontend applies in one order, so that their
   * policies learn the same weights) instead of applying it here; the relay applies each with
   * {@link applyRelayedFeedback}. `undefined` applies feedback here again.
   */
  relayFeedback(relay: FeedbackRelay | undefined): void {
    this.#feedbackRelay = relay;
  }

  /**
   * Applies one relayed feedback event here, with the draw it carries; events of one application are applied
   * one at a time, in the order of the calls.
   */
  applyRelayedFeedback(feedback: RelayedFeedback): Promise<FeedbackResult> {
    const router = this.#router(feedback.app);
    const actor = this.#feedback.get(feedback.app) as FeedbackActor;
    const relayed = this.#relayed.get(feedback.app) as { selection: RelayedFeedback['selection'] | null; tail: Promise<unknown> };
    const row = toInputRow(router.app, feedback.input);
    const run = relayed.tail.then(async () => {
      const context = checkQueryContext(feedback.context);
      // A bandit meets its linked models when it draws among them: on the frontend that answered the query it
      // has; here it may not have, and would learn from a table that lacks them. A draw (its result unused)
      // makes the tables the same everywhere.
      if (router.policy.learnsFrom === 'selected') router.policy.select(router.linkedModels, context);
      relayed.selection = feedback.selection;
      try {
        return await actor.feedback(row, feedback.label, context);
      } finally {
        relayed.selection = null;
      }
    });
    relayed.tail = run.catch(() => {});
    return run;
  }

  /** Every registered application, with its links, policy, counters and cache figures. */
  getApps(): AppInfo[] {
    return [...this.#apps.values()].map((r) => ({
      ...r.app,
      linkedModels: [...r.linkedModels],
      policy: r.policy.name,
      counters: { ...r.counters },
      cache: { hits: r.cache.hits, misses: r.cache.misses, shared: r.cache.shared, ...r.cache.size },
    }));
  }

  /** One application; throws {@link UnknownApplicationError} for a name not registered. */
  getApp(appName: string): AppInfo {
    const info = this.getApps().find((a) => a.name === appName);
    if (info === undefined) throw new UnknownApplicationError(`no application named ${JSON.stringify(appName)}`);
    return info;
  }

  /** The models linked to an application, in link order. */
  getLinkedModels(appName: string): string[] {
    return [...this.#router(appName).linkedModels];
  }

  /** Every deployed model, each with all its versions (see {@link describeModel}). */
  getModels(): ModelInfo[] {
    return [...this.#models.keys()].map((name) => this.getModel(name));
  }

  /**
   * One deployed model: its versions (current marked), each described as {@link describeModel} does, and the
   * applications it is linked to. Throws {@link UnknownModelError} for a name not deployed.
   */
  getModel(modelName: string): ModelInfo {
    const entry = this.#model(modelName);
    return {
      name: entry.name,
      currentVersion: entry.current,
      versions: [...entry.versions.keys()].map((version) => this.describeModel(entry.name, version)),
      linkedApps: [...this.#apps.values()].filter((r) => r.linkedModels.includes(entry.name)).map((r) => r.app.name),
    };
  }

  /**
   * A model version's metadata and state (current version by default): input dtype and shape, output width
   * and kind, readiness, replicas, batch limits, hedging counters, cold starts. Throws
   * {@link UnknownModelError} or {@link UnknownVersionError}.
   *
   * @example
   * const { input, output } = clipper.describeModel('mnist-mlp'); // { dtype: 'float32', shape: [784] }, { size: 10 }
   */
  describeModel(modelName: string, version?: string): ModelVersionInfo {
    const entry = this.#model(modelName);
    const set = this.#set(modelName, version);
    const signature = this.modelSignature(modelName, version);
    const replicas = set.status();
    const hedges = set.hedges;
    return {
      model: entry.name,
      version: set.version,
      current: entry.current === set.version,
      path: set.spec.path,
      platform: signature.platform,
      input: { ...signature.input, shape: [...signature.input.shape] },
      output: { ...signature.output, kind: entry.outputKind },
      ready: set.readyCount > 0,
      readyReplicas: set.readyCount,
      scaledToZero: set.scaledToZero,
      replicas,
      latencyBudgetMs: set.latencyBudgetMs(),
      linkedSloMs: signature.linkedSloMs,
      batching: {
        mode: set.options.batching.mode,
        maxBatchSize: set.options.batching.maxBatchSize,
        maxQueueSize: set.options.batching.maxQueueSize,
        limits: replicas.map((r) => r.batchLimit),
      },
      hedges: { sent: hedges.sent, won: hedges.won, denied: hedges.denied, delayMs: set.hedgeDelayMs },
      coldStartsMs: [...set.coldStarts],
    };
  }

  /**
   * What a protocol adapter needs to answer `infer` for a model version (current by default): the version, the
   * input's name, dtype and shape, the output's name and width, and the tightest SLO of the applications it is
   * linked to. {@link describeModel} without the replicas' state, so cheap enough to call per request. Throws as
   * {@link describeModel} does.
   *
   * @example
   * const { version, input, linkedSloMs } = clipper.modelSignature('mnist-mlp'); // '1', { shape: [784], ... }, 20
   */
  modelSignature(modelName: string, version?: string): ModelSignatureInfo {
    const set = this.#set(modelName, version);
    return {
      model: set.model,
      version: set.version,
      platform: set.spec.kind,
      input: { name: set.spec.inputName, dtype: set.spec.inputDtype, shape: set.spec.featureShape },
      output: { name: set.spec.outputName, size: this.#outputSize(modelName, set.version) ?? 0 },
      linkedSloMs: set.linkedSloMs,
    };
  }

  /** Model versions holding a multiplexing slot now, and how many were evicted so far. */
  get multiplexing(): { maxActiveModels: number; active: string[]; evictions: number } | undefined {
    const pool = this.#multiplex;
    return pool === undefined ? undefined : { maxActiveModels: pool.maxActive, active: pool.active, evictions: pool.evictions };
  }

  /**
   * For tests and benchmarks only: a handle that reaches single replicas (their status, fault injection).
   * Serving code never needs it; the HTTP adapter does not use it.
   */
  testing(): ClipperTestingHandle {
    return {
      replicas: (model, version) => this.#set(model, version).status(),
      injectFault: async (model: string, replicaIndex: number, fault: Fault, version?: string): Promise<void> => {
        const set = this.#set(model, version);
        const replica: { name: string; injectFault?: (fault: Fault) => Promise<void> } | undefined = set.replicas[replicaIndex];
        if (replica === undefined) throw new NoReplicaAvailableError(`model ${set.key} has no replica ${replicaIndex}; it has ${set.replicas.length}`);
        if (typeof replica.injectFault !== 'function') throw new InvalidOptionError(`replica ${replica.name} takes no injected faults`);
        await replica.injectFault(fault);
      },
    };
  }

  /** Stops taking queries, drains every router and replica, and stops the workers. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    await Promise.all([...this.#apps.values()].map((r) => r.stop()));
    await Promise.all([...this.#feedback.values()].map((f) => f.stop()));
    await Promise.all([...this.#models.values()].flatMap((m) => [...m.versions.values()].map((s) => s.stop())));
    await this.#supervisor.stop();
  }

  #checkRunning(): void {
    if (this.#stopping) throw new ShuttingDownError('the system is stopping');
  }

  #router(appName: string): Router {
    const router = this.#apps.get(appName);
    if (router === undefined) {
      throw new UnknownApplicationError(`no application named ${JSON.stringify(appName)}; registered: ${JSON.stringify([...this.#apps.keys()])}`);
    }
    return router;
  }

  #model(modelName: string): ModelEntry {
    const entry = this.#models.get(modelName);
    if (entry === undefined) {
      throw new UnknownModelError(`no model named ${JSON.stringify(modelName)}; deployed: ${JSON.stringify([...this.#models.keys()])}`);
    }
    return entry;
  }

  #currentSet(modelName: string): ReplicaSet {
    checkName('model name', modelName);
    return this.#set(modelName);
  }

  /** The replica set of a model version (current by default); throws for unknown names. Never handed out. */
  #set(modelName: string, version?: string): ReplicaSet {
    const entry = this.#model(modelName);
    const v = version ?? entry.current;
    const set = entry.versions.get(v);
    if (set === undefined) throw new UnknownVersionError(`model ${modelName} has no version ${JSON.stringify(v)}; it has ${[...entry.versions.keys()].join(', ')}`);
    return set;
  }

  #currentOrUndefined(model: string): ReplicaSet | undefined {
    const entry = this.#models.get(model);
    return entry?.versions.get(entry.current);
  }

  /** Values per output row of a model version (current by default), once known; remembered per version. */
  #outputSize(modelName: string, version?: string): number | undefined {
    const entry = this.#models.get(modelName);
    if (entry === undefined) return undefined;
    const v = version ?? entry.current;
    const learned = entry.versions.get(v)?.outputSize ?? 0;
    if (learned > 0) entry.outputSizes.set(v, learned);
    return entry.outputSizes.get(v);
  }

  /**
   * A policy that combines its models' rows (Exp4) needs one width across them: refuses, naming the widths,
   * when the models' known widths differ. A width not known yet (no config.json shape, never warmed up) is
   * not checked.
   */
  #checkOutputWidths(appName: string, models: readonly string[], policy: string): void {
    const widths = models.flatMap((m) => {
      const size = this.#outputSize(m);
      return size === undefined ? [] : [[m, size] as const];
    });
    const first = widths[0];
    const other = widths.find(([, size]) => size !== first?.[1]);
    if (first !== undefined && other !== undefined) {
      throw new IncompatibleModelError(
        `application ${appName}'s policy ${policy} combines its models' outputs, but model ${other[0]} gives ${other[1]} values per row and model ${first[0]} gives ${first[1]}; link models of one output width, or use a policy that picks one model per query`,
      );
    }
  }

  /** Each version's AIMD budget follows the tightest SLO among the applications its model is linked to. */
  #refreshBudgets(modelName: string): void {
    const entry = this.#models.get(modelName);
    if (entry === undefined) return;
    const slos = [...this.#apps.values()].filter((r) => r.linkedModels.includes(modelName)).map((r) => r.app.latencySloMs);
    const min = slos.length === 0 ? undefined : Math.min(...slos);
    for (const set of entry.versions.values()) set.setLinkedSlo(min);
  }
}

/** The infer calls with one timeout: their deadline list (one timer), shared by every call with that timeout. */
interface InferCalls {
  readonly timeoutMs: number;
  readonly list: DeadlineList<InferCall>;
  /** Forgets this list once it is empty (called after a call leaves it). */
  readonly release: () => void;
}

/** One {@link Clipper.infer} call waiting for its answers: an answer sink, and an entry in its timeout's deadline list. */
class InferCall implements AnswerSink, DeadlineEntry {
  done = false;
  prevDue: DeadlineEntry | undefined = undefined;
  nextDue: DeadlineEntry | undefined = undefined;
  listed = false;

  constructor(
    readonly calls: InferCalls,
    readonly key: string,
    readonly dueAt: number,
    readonly onAnswers: (outputs: Float32Array[]) => void,
    readonly onError: (error: unknown) => void,
  ) {}

  resolve(answer: ReplicaAnswer): void {
    this.answered([answer]);
  }

  answered(answers: readonly ReplicaAnswer[]): void {
    if (this.#leave()) this.onAnswers(answers.map((a) => a.scores));
  }

  reject(error: unknown): void {
    if (this.#leave()) this.onError(error);
  }

  /** The deadline passed first (the list has already let go of this call). */
  expire(): void {
    if (this.done) return;
    this.done = true;
    this.onError(new DeadlineExceededError(`model ${this.key} did not answer within ${this.calls.timeoutMs} ms`));
  }

  /** Settles this call once: false when it already was. */
  #leave(): boolean {
    if (this.done) return false;
    this.done = true;
    this.calls.list.remove(this);
    this.calls.release();
    return true;
  }
}
