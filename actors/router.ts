import { Actor, type Reply } from '../src/kernel/actor.js';
import type { Clock, TimerHandle } from '../src/kernel/clock.js';
import { ClipperError, OverloadedError } from '../src/errors.js';
import type { ResolvedAppOptions } from '../src/config/options.js';
import { argmax } from '../src/selection/losses.js';
import { inputDigest, PredictionCache, predictionKey, type CacheOutcome, type Prediction } from '../src/routing/prediction-cache.js';
import { QueryAssembly } from '../src/routing/query-assembly.js';
import { StaticPolicy, type QueryContext, type Selection, type SelectionPolicy } from '../src/selection/selection-policy.js';
import { SelectionLog } from '../src/selection/selection-log.js';
import type { Answer } from '../src/api.js';
import type { ModelDirectory } from './contracts.js';



type RouterMessage = { type: 'predict'; input: Float32Array | Int32Array; context: QueryContext | undefined; reply: Reply<Answer> };

interface Evaluation {
  prediction: Prediction;
  outcome: CacheOutcome;
  timings?: Answer['timings'];
}

/**
 * The router actor of one application: the selection policy picks the models, the prediction cache
 * answers repeats and merges identical queries in flight, the models' current versions run the rest, and
 * every query is answered exactly once: by the models, or with the application's default output and an
 * explanation when they cannot answer within the SLO.
 */
export class Router extends Actor<RouterMessage> {
  readonly app: ResolvedAppOptions;
  readonly cache: PredictionCache;
  readonly #clock: Clock;
  readonly #models: ModelDirectory;
  #linked: string[] = [];
  #policy: SelectionPolicy;
  #nextQueryId = 1;
  /** Recent draws by input and user, kept only for policies that learn from their selection alone. */
  readonly #selections = new SelectionLog();
  readonly counters = { queries: 0, answered: 0, defaults: 0, refused: 0, lowConfidence: 0 };

  constructor(app: ResolvedAppOptions, models: ModelDirectory, clock: Clock, policy: SelectionPolicy = new StaticPolicy()) {
    super(`router:${app.name}`);
    this.app = app;
    this.cache = new PredictionCache(app.cacheMaxBytes);
    this.#clock = clock;
    this.#models = models;
    this.#policy = policy;
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

  link(model: string): void {
    if (!this.#linked.includes(model)) this.#linked = [...this.#linked, model];
  }

  unlink(model: string): void {
    this.#linked = this.#linked.filter((m) => m !== model);
  }

  setPolicy(policy: SelectionPolicy): void {
    this.#policy = policy;
  }

  predict(input: Float32Array | Int32Array, context?: QueryContext): Promise<Answer> {
    return this.ask((reply) => ({ type: 'predict', input, context, reply }));
  }

  protected override undeliverable(message: RouterMessage, error: unknown): void {
    message.reply.reject(error);
  }

  protected receive(message: RouterMessage): void {
    const queryId = this.#nextQueryId++;
    const started = this.#clock.now();
    const slo = this.app.latencySloMs;
    const deadline = started + slo;
    const { reply, input, context } = message;
    this.counters.queries++;
    let settled = false;
    let timer: TimerHandle | undefined;
    const settle = (answer: Omit<Answer, 'queryId' | 'latencyMs'> | Error): void => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      if (answer instanceof Error) {
        this.counters.refused++;
        reply.reject(answer);
        return;
      }
      this.counters.answered++;
      if (answer.isDefault) this.counters.defaults++;
      reply.resolve({ queryId, latencyMs: this.#clock.now() - started, ...answer });
    };
    const fallback = (explanation: string, extra: Partial<Answer> = {}): Omit<Answer, 'queryId' | 'latencyMs'> => ({
      output: this.app.defaultOutput,
      isDefault: true,
      explanation,
      cached: false,
      ...extra,
    });

    const policy = this.#policy;
    const selected = policy.select(this.#linked, context);
    // The input is hashed at most once per query, however many models and lookups need its digest.
    let digest: string | undefined;
    const digestOf = (): string => (digest ??= inputDigest(input));
    if (policy.learnsFrom === 'selected') this.#selections.record(digestOf(), context, policy, selected, this.#linked);
    if (selected.length === 0) {
      settle(fallback(`application ${this.app.name} has no linked model to answer it (linked: ${JSON.stringify(this.#linked)})`));
      return;
    }
    const assembly = new QueryAssembly<Evaluation>(selected);
    const finish = (atDeadline: boolean): void => {
      if (settled) return;
      const arrived = assembly.values();
      const missing = assembly.pending();
      const failures = assembly.failures();
      const problems = failures.map((f) => `${f.model}: ${f.error instanceof Error ? f.error.message : String(f.error)}`);
      if (atDeadline && missing.length > 0) problems.push(`no answer from ${missing.join(', ')} within the ${slo} ms SLO`);
      if (arrived.length === 0) {
        // A full queue is admission control: refuse (503) rather than answer by default.
        const overloaded = failures.length === 1 && missing.length === 0 ? failures[0]?.error : undefined;
        settle(overloaded instanceof OverloadedError ? overloaded : fallback(problems.join('; ')));
        return;
      }
      const combined = policy.combine(arrived.map((e) => e.prediction), context);
      const confidence = combined.confidence ?? 1;
      const stragglers = [...missing, ...failures.map((f) => f.model)];
      const shared = {
        scores: combined.scores,
        confidence,
        contributors: [...(combined.contributors ?? arrived.map((e) => e.prediction.model))],
        ...(stragglers.length === 0 ? {} : { missing: stragglers }),
      };
      if (confidence < this.app.confidenceThreshold) {
        this.counters.lowConfidence++;
        settle(fallback(`confidence ${confidence.toFixed(2)} is below the application's threshold ${this.app.confidenceThreshold}`, shared));
        return;
      }
      const timings = arrived.find((e) => e.timings !== undefined)?.timings;
      settle({
        output: this.#toOutput(combined.model, combined.scores),
        isDefault: false,
        model: combined.model,
        version: combined.version,
        cached: arrived.every((e) => e.outcome === 'hit'),
        ...shared,
        ...(timings === undefined ? {} : { timings }),
      });
    };
    // The guarantee that no query hangs: whatever the models do, the deadline answers it, with the models
    // that made it (stragglers listed) or with the default output.
    // The margin leaves room for the timer's own lateness, so even a default answer arrives inside the SLO.
    const answerBy = slo - this.app.deadlineMarginMs;
    timer = this.#clock.setTimeout(() => finish(true), answerBy);
    selected.forEach((model, i) => {
      this.#evaluate(model, input, digestOf, deadline).then(
        (value) => {
          assembly.arrived(i, value);
          if (assembly.complete) finish(false);
        },
        (error: unknown) => {
          assembly.failed(i, error);
          if (assembly.complete) finish(false);
        },
      );
    });
  }

  async #evaluate(model: string, input: Float32Array | Int32Array, digestOf: () => string, deadline: number): Promise<Evaluation> {
    const set = this.#models.current(model);
    if (set === undefined) throw new ClipperError(`model ${model} is linked but has no current version`);
    let timings: Answer['timings'];
    const evaluate = async (): Promise<Prediction> => {
      const answer = await set.predict(input, deadline);
      timings = { queueMs: answer.queueMs, batchMs: answer.batchMs, batchSize: answer.batchSize, replica: answer.replica };
      return { scores: answer.scores, model: set.model, version: set.version };
    };
    const { prediction, outcome } = this.cache.enabled
      ? await this.cache.getOrEvaluate(predictionKey(set.model, set.version, digestOf()), evaluate)
      : { prediction: await evaluate(), outcome: 'disabled' as const };
    return timings === undefined ? { prediction, outcome } : { prediction, outcome, timings };
  }

  #toOutput(model: string, scores: Float32Array): Answer['output'] {
    if (this.#models.outputKind(model) === 'classification') return argmax(scores);
    return scores.length === 1 ? (scores[0] as number) : Array.from(scores);
  }
}
