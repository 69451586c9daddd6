import { ROOT_CONTEXT, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { Actor, type FailureSink, type Reply } from '../src/kernel/actor.js';
import type { Clock } from '../src/kernel/clock.js';
import { DeadlineList, type DeadlineEntry } from '../src/kernel/deadline-list.js';
import type { Supervised } from '../src/kernel/supervisor.js';
import { ClipperError, DeadlineExceededError, OverloadedError } from '../src/errors.js';
import type { ResolvedAppOptions } from '../src/config/options.js';
import { argmax } from '../src/selection/losses.js';
import { inputDigest, PredictionCache, predictionKey, type Prediction } from '../src/routing/prediction-cache.js';
import { QueryAssembly } from '../src/routing/query-assembly.js';
import { decideAnswer, defaultAnswer, describeError, type AnswerBody, type AnswerRules, type ModelEvaluation } from '../src/routing/answer-decision.js';
import { StaticPolicy, type QueryContext, type Selection, type SelectionPolicy } from '../src/selection/selection-policy.js';
import { SelectionLog } from '../src/selection/selection-log.js';
import type { Answer, AppCounters } from '../src/api.js';
import type { AnswerSink, ModelDirectory, ModelVersion, QueryTrace, ReplicaAnswer } from './contracts.js';

/**
 * One query from its arrival to its answer. The router's messages about a query carry it; it waits for its
 * deadline in the router's {@link DeadlineList} (one timer for all queries, not one each).
 */
class PendingQuery implements DeadlineEntry {
  /** The input's digest, computed at most once (cache keys, selection log), and only if one is needed. */
  digest: string | undefined = undefined;
  assembly: QueryAssembly<ModelEvaluation> | undefined = undefined;
  settled = false;
  dueAt = 0;
  prevDue: DeadlineEntry | undefined = undefined;
  nextDue: DeadlineEntry | undefined = undefined;
  listed = false;

  constructor(
    readonly id: number,
    readonly started: number,
    readonly input: Float32Array | Int32Array,
    readonly context: QueryContext | undefined,
    readonly reply: Reply<Answer>,
    /** The policy when the query arrived: it selected the models, so it combines their answers. */
    readonly policy: SelectionPolicy,
    /** The query's span while tracing (`clipper.route`), ended with its answer. */
    readonly span: Span | undefined,
  ) {}
}

/** How a model's answer (or failure) reaches the router: a message to itself, as in {@link Router.receive}. */
interface ModelAnswers {
  arrived(query: PendingQuery, index: number, value: ModelEvaluation): void;
  failed(query: PendingQuery, index: number, error: unknown): void;
}

/**
 * One selected model's evaluation of one query, sent without a promise ({@link ModelVersion.send}): the
 * version answers through these methods, which post the router a message.
 */
class ModelCall implements AnswerSink {
  constructor(
    readonly answers: ModelAnswers,
    readonly query: PendingQuery,
    readonly index: number,
    readonly set: ModelVersion,
  ) {}

  resolve(answer: ReplicaAnswer): void {
    const set = this.set;
    this.answers.arrived(this.query, this.index, {
      prediction: { scores: answer.scores, model: set.model, version: set.version },
      outcome: 'disabled',
      timings: { queueMs: answer.queueMs, batchMs: answer.batchMs, batchSize: answer.batchSize, replica: answer.replica },
    });
  }

  reject(error: unknown): void {
    this.answers.failed(this.query, this.index, error);
  }
}

/**
 * A query from outside; then, from the router's own asynchronous work, one message per model answer (or
 * failure) and one when the deadline falls due. All per-query state changes happen in `receive`, one message at
 * a time, as in {@link Replica}; promise callbacks and timers only post.
 */
type RouterMessage =
  | { type: 'predict'; input: Float32Array | Int32Array; context: QueryContext | undefined; trace: Context | undefined; reply: Reply<Answer> }
  | { type: 'arrived'; query: PendingQuery; index: number; value: ModelEvaluation }
  | { type: 'failed'; query: PendingQuery; index: number; error: unknown }
  | { type: 'deadline'; query: PendingQuery };

/** A shared evaluation failed for the first caller's reasons: refused at admission, or past its deadline. */
function deadlineBound(error: unknown): boolean {
  return error instanceof OverloadedError || error instanceof DeadlineExceededError;
}

/**
 * The router actor of one application: the selection policy picks the models, the prediction cache
 * answers repeats and merges identical queries in flight, the models' current versions run the rest, and
 * every query is answered exactly once: by the models, or with the application's default output and an
 * explanation when they cannot answer within the SLO (see {@link decideAnswer}).
 *
 * Failures are contained at two levels. An exception from the selection policy (select or combine) is the
 * policy's fault and answers that query with the default output, naming the error. Any other exception while
 * handling a message is a fault in the router: that query is rejected with the error, the actor fails, and its
 * supervisor restarts it (queries in flight keep their state and are answered after the restart, or rejected
 * if their messages arrive while it is down). Links, policy, cache and counters survive a restart.
 */
export class Router extends Actor<RouterMessage> implements Supervised {
  readonly app: ResolvedAppOptions;
  readonly cache: PredictionCache;
  readonly #clock: Clock;
  readonly #models: ModelDirectory;
  readonly #rules: AnswerRules;
  readonly #tracer: Tracer | undefined;
  #linked: string[] = [];
  #policy: SelectionPolicy;
  #nextQueryId = 1;
  /** Queries received and not yet answered; stopping waits for them (the deadline bounds the wait). */
  #unanswered = 0;
  #drained: (() => void) | undefined;
  #retired: unknown;
  #restarts = 0;
  /** Recent draws by input and user, kept only for policies that learn from their selection alone. */
  readonly #selections = new SelectionLog();
  readonly counters: AppCounters = { queries: 0, answered: 0, defaults: 0, refused: 0, lowConfidence: 0, policyErrors: 0, lateDefaults: 0 };
  /** Every unanswered query's deadline, on one timer. */
  readonly #deadlines: DeadlineList<PendingQuery>;
  readonly #answers: ModelAnswers = {
    arrived: (query, index, value) => this.post({ type: 'arrived', query, index, value }),
    failed: (query, index, error) => this.post({ type: 'failed', query, index, error }),
  };

  constructor(app: ResolvedAppOptions, models: ModelDirectory, clock: Clock, policy: SelectionPolicy = new StaticPolicy(), supervisor?: FailureSink, tracer?: Tracer) {
    super(`router:${app.name}`, supervisor);
    this.#tracer = tracer;
    this.app = app;
    this.cache = new PredictionCache(app.cacheMaxBytes);
    this.#clock = clock;
    this.#models = models;
    this.#policy = policy;
    this.#deadlines = new DeadlineList<PendingQuery>(clock, (query) => this.post({ type: 'deadline', query }));
    this.#rules = {
      latencySloMs: app.latencySloMs,
      confidenceThreshold: app.confidenceThreshold,
      defaultOutput: app.defaultOutput,
      toOutput: (model, scores) => this.#toOutput(model, scores),
    };
  }

  /** Takes the oldest draw waiting for feedback on this input (and user), for bandit feedback: each is taken once. */
  takeSelection(digest: string, context: QueryContext | undefined): Selection | undefined {
    return this.#selections.take(digest, context, this.#policy);
  }

  get linkedModels(): readonly string[] {
    return this.#linked;
  }

  get policy(): SelectionPolicy {
    return this.#policy;
  }

  /** Times the supervisor restarted this router after a crash. */
  get restarts(): number {
    return this.#restarts;
  }

  link(model: string): void {
    if (!this.#linked.includes(model)) this.#linked = [...this.#linked, model];
  }

  unlink(model: string): void {
    this.#linked = this.#linked.filter((m) => m !== model);
  }

  setPolicy(policy: SelectionPolicy): void {
    this.#policy = policy;
  }

  /**
   * Answers one query (see the class comment). The facade has checked the input and the context
   * (`checkQueryContext`). Rejects with {@link OverloadedError} when the only selected model's queue refuses
   * it, or a {@link ClipperError} when the router itself failed on it.
   */
  predict(input: Float32Array | Int32Array, context?: QueryContext, traceContext?: Context): Promise<Answer> {
    if (this.#retired !== undefined) {
      return Promise.reject(new ClipperError(`the router of application ${this.app.name} failed too often and was retired`, { cause: this.#retired }));
    }
    return this.ask((reply) => ({ type: 'predict', input, context, trace: traceContext, reply }));
  }

  /**
   * For a query not yet read (see {@link Clipper.refuseUnread}): the refusal, counted as this application's,
   * when the application has no cache and one linked model that its policy is sure to select
   * ({@link SelectionPolicy.selectsAll}), and that model's current version refuses a query due at now + SLO
   * (less the decision margin) unread; otherwise undefined and nothing is counted. With a cache, a query might
   * be answered without a replica; with several models, or a policy that may select none (a static policy
   * naming another model, an A/B weight of 0), the policy decides per query, and may answer by default.
   */
  refuseUnread(): OverloadedError | undefined {
    if (this.#retired !== undefined || this.status !== 'running' || this.cache.enabled || this.#linked.length !== 1) return undefined;
    if (this.#policy.selectsAll?.(this.#linked) !== true) return undefined;
    const deadline = this.#clock.now() + this.app.latencySloMs - this.app.deadlineMarginMs;
    const refusal = this.#models.current(this.#linked[0] as string)?.refuseUnread?.(deadline);
    if (refusal === undefined) return undefined;
    this.counters.queries++;
    this.counters.refused++;
    return refusal;
  }

  async restart(): Promise<void> {
    // The supervisor's timer may fire after the router was stopped or retired; then there is nothing to do.
    if (this.status !== 'failed' || this.#retired !== undefined) return;
    this.#restarts++;
    await this.start();
  }

  retire(error: unknown): void {
    this.#retired = error ?? new Error('retired');
  }

  protected override undeliverable(message: RouterMessage, error: unknown): void {
    if (message.type === 'predict') message.reply.reject(error);
    else this.#settle(message.query, error instanceof Error ? error : new ClipperError(String(error)));
  }

  protected override onStop(): void | Promise<void> {
    if (this.#unanswered === 0) return;
    return new Promise((resolve) => {
      this.#drained = resolve;
    });
  }

  protected receive(message: RouterMessage): void {
    const query = message.type === 'predict' ? this.#admit(message) : message.query;
    if (query.settled) return;
    try {
      switch (message.type) {
        case 'predict':
          this.#route(query);
          return;
        case 'arrived': {
          const assembly = query.assembly as QueryAssembly<ModelEvaluation>;
          assembly.arrived(message.index, message.value);
          if (assembly.complete) this.#finish(query, false);
          return;
        }
        case 'failed': {
          const assembly = query.assembly as QueryAssembly<ModelEvaluation>;
          assembly.failed(message.index, message.error);
          if (assembly.complete) this.#finish(query, false);
          return;
        }
        case 'deadline':
          this.#finish(query, true);
          return;
      }
    } catch (error) {
      // Not a policy's exception (those are answered where they are caught): a fault in the router. This query
      // fails alone, with the error; rethrowing fails the actor, and its supervisor restarts it.
      this.#settle(query, new ClipperError(`the router of application ${this.app.name} failed on query ${query.id}: ${describeError(error)}`, { cause: error }));
      throw error;
    }
  }

  #admit(message: Extract<RouterMessage, { type: 'predict' }>): PendingQuery {
    this.counters.queries++;
    this.#unanswered++;
    const id = this.#nextQueryId++;
    const span = this.#tracer?.startSpan('clipper.route', { attributes: { 'clipper.app': this.app.name, 'clipper.query_id': id } }, message.trace ?? ROOT_CONTEXT);
    return new PendingQuery(id, this.#clock.now(), message.input, message.context, message.reply, this.#policy, span);
  }

  #route(query: PendingQuery): void {
    const { policy, context } = query;
    const slo = this.app.latencySloMs;
    // The models' deadline is when this router decides (the deadline list below), not the SLO itself: a replica
    // that admitted and ran a query for the SLO would answer after the query was already answered by default.
    const deadline = query.started + slo - this.app.deadlineMarginMs;
    let selected: readonly string[];
    try {
      selected = policy.select(this.#linked, context);
    } catch (error) {
      this.counters.policyErrors++;
      this.#settle(query, defaultAnswer(this.app.defaultOutput, `selection policy ${policy.name} failed to select models: ${describeError(error)}`));
      return;
    }
    if (policy.learnsFrom === 'selected') this.#selections.record(digestOf(query), context, policy, selected, this.#linked);
    if (selected.length === 0) {
      this.#settle(query, defaultAnswer(this.app.defaultOutput, `application ${this.app.name} has no linked model to answer it (linked: ${JSON.stringify(this.#linked)})`));
      return;
    }
    query.span?.setAttribute('clipper.models', [...selected]);
    query.assembly = new QueryAssembly<ModelEvaluation>(selected);
    // The guarantee that no query hangs: whatever the models do, the deadline answers it, with the models
    // that made it (stragglers listed) or with the default output.
    // The margin leaves room for the timer's own lateness, so even a default answer arrives inside the SLO.
    query.dueAt = deadline;
    this.#deadlines.add(query);
    for (let index = 0; index < selected.length; index++) this.#evaluate(selected[index] as string, query, index, deadline);
  }

  #finish(query: PendingQuery, atDeadline: boolean): void {
    const assembly = query.assembly as QueryAssembly<ModelEvaluation>;
    const decision = decideAnswer(
      { arrived: assembly.values(), missing: assembly.pending(), failures: assembly.failures(), atDeadline, policy: query.policy, context: query.context },
      this.#rules,
    );
    if (decision.kind === 'refuse') {
      this.#settle(query, decision.error);
      return;
    }
    if (decision.kind === 'default' && decision.reason === 'lowConfidence') this.counters.lowConfidence++;
    if (decision.kind === 'default' && decision.reason === 'policyError') this.counters.policyErrors++;
    if (decision.kind === 'default' && decision.reason === 'noAnswer' && decision.late) this.counters.lateDefaults++;
    this.#settle(query, decision.answer);
  }

  /** Answers a query, once: later calls (a model answering after the deadline, say) do nothing. */
  #settle(query: PendingQuery, answer: AnswerBody | Error): void {
    if (query.settled) return;
    query.settled = true;
    this.#deadlines.remove(query);
    if (query.span !== undefined) endQuerySpan(query.span, answer);
    if (answer instanceof Error) {
      this.counters.refused++;
      query.reply.reject(answer);
    } else {
      this.counters.answered++;
      if (answer.isDefault) this.counters.defaults++;
      query.reply.resolve({ queryId: query.id, latencyMs: this.#clock.now() - query.started, ...answer });
    }
    if (--this.#unanswered === 0 && this.#drained !== undefined) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }

  /**
   * Asks one selected model for the query's answer, which comes back as an `arrived` or `failed` message. With
   * the cache off and no tracing, a version that takes a sink ({@link ModelVersion.send}) answers straight
   * into one (no promise on the way); otherwise through the promise path (cache lookups, spans).
   */
  #evaluate(model: string, query: PendingQuery, index: number, deadline: number): void {
    const set = this.#models.current(model);
    if (set !== undefined && set.send !== undefined && query.span === undefined && !this.cache.enabled) {
      set.send(query.input, deadline, new ModelCall(this.#answers, query, index, set));
      return;
    }
    const evaluation =
      set === undefined
        ? Promise.reject(new ClipperError(`model ${model} is linked but has no current version`))
        : query.span === undefined
          ? this.#evaluateVersion(set, query, deadline, undefined)
          : this.#evaluateTraced(set, query, deadline, query.span);
    evaluation.then(
      (value) => this.post({ type: 'arrived', query, index, value }),
      (error: unknown) => this.post({ type: 'failed', query, index, error }),
    );
  }

  /** One span per model the query asked, under the query's: how long the model took to answer, from the cache or a replica. */
  async #evaluateTraced(set: ModelVersion, query: PendingQuery, deadline: number, parent: Span): Promise<ModelEvaluation> {
    const span = (this.#tracer as Tracer).startSpan('clipper.model', { attributes: { 'clipper.model': set.model, 'clipper.version': set.version } }, trace.setSpan(ROOT_CONTEXT, parent));
    try {
      const evaluation = await this.#evaluateVersion(set, query, deadline, { tracer: this.#tracer as Tracer, parent: span.spanContext() });
      span.setAttribute('clipper.cache', evaluation.outcome);
      if (evaluation.timings !== undefined) {
        span.setAttributes({ 'clipper.replica': evaluation.timings.replica, 'clipper.queue_ms': evaluation.timings.queueMs, 'clipper.batch_ms': evaluation.timings.batchMs, 'clipper.batch_size': evaluation.timings.batchSize });
      }
      return evaluation;
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(error) });
      throw error;
    } finally {
      span.end();
    }
  }

  async #evaluateVersion(set: ModelVersion, query: PendingQuery, deadline: number, queryTrace: QueryTrace | undefined): Promise<ModelEvaluation> {
    let timings: Answer['timings'];
    const evaluate = async (): Promise<Prediction> => {
      const answer = await set.predict(query.input, deadline, undefined, undefined, queryTrace);
      timings = { queueMs: answer.queueMs, batchMs: answer.batchMs, batchSize: answer.batchSize, replica: answer.replica };
      return { scores: answer.scores, model: set.model, version: set.version };
    };
    // Issue 14, bug 9: a query that joined an identical query's pending evaluation shares its deadline. When
    // that evaluation is refused or expires, this query may still have time: it evaluates again under its own
    // deadline (see PredictionCache.getOrEvaluate) rather than fail with the first caller.
    const retryShared = (error: unknown): boolean => deadlineBound(error) && this.#clock.now() < deadline;
    // Checked here, not left to the cache, so that a query with the cache off never hashes its input.
    const { prediction, outcome } = this.cache.enabled
      ? await this.cache.getOrEvaluate(predictionKey(set.model, set.version, digestOf(query)), evaluate, retryShared)
      : { prediction: await evaluate(), outcome: 'disabled' as const };
    return timings === undefined ? { prediction, outcome } : { prediction, outcome, timings };
  }

  #toOutput(model: string, scores: Float32Array): Answer['output'] {
    if (this.#models.outputKind(model) === 'classification') return argmax(scores);
    return scores.length === 1 ? (scores[0] as number) : Array.from(scores);
  }
}

/** The query's input digest, hashed at most once per query however many models and lookups need it. */
function digestOf(query: PendingQuery): string {
  return (query.digest ??= inputDigest(query.input));
}

/** Ends a query's span with what it was answered: a model's answer, the default output (and why), or an error. */
function endQuerySpan(span: Span, answer: AnswerBody | Error): void {
  if (answer instanceof Error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: answer.message });
  } else {
    span.setAttribute('clipper.default', answer.isDefault);
    if (answer.model !== undefined) span.setAttribute('clipper.answered_by', answer.model);
    if (answer.explanation !== undefined) span.setAttribute('clipper.explanation', answer.explanation);
  }
  span.end();
}
