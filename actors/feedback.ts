import { Actor, type Reply } from '../src/kernel/actor.js';
import type { Clock } from '../src/kernel/clock.js';
import { absoluteLoss, zeroOneLoss } from '../src/selection/losses.js';
import { inputDigest, predictionKey, type Prediction, type PredictionCache } from '../src/routing/prediction-cache.js';
import type { QueryContext, Selection, SelectionPolicy } from '../src/selection/selection-policy.js';
import type { FeedbackResult } from '../src/api.js';
import type { ModelDirectory } from './contracts.js';

/** What feedback needs of its application's router (the router actor is the real one; unit tests use a fake). */
export interface FeedbackRouter {
  readonly app: { readonly name: string };
  /** The router's prediction cache: feedback reads what the models answered, and fills in what they did not. */
  readonly cache: PredictionCache;
  readonly linkedModels: readonly string[];
  readonly policy: SelectionPolicy;
  /** Takes (removes) the oldest draw waiting for feedback on this input and user. */
  takeSelection(digest: string, context: QueryContext | undefined): Selection | undefined;
}

type FeedbackMessage = { input: Float32Array | Int32Array; label: number; context: QueryContext; reply: Reply<FeedbackResult> };

/**
 * Applies feedback (true labels sent after the fact) for one application, in arrival order. It finds what
 * each linked model predicted for the input through the prediction cache, evaluating only the models that
 * miss, turns that into each model's loss and hands the losses to the application's selection policy.
 * It is an actor of its own, so feedback never holds up the router's queries.
 */
export class FeedbackActor extends Actor<FeedbackMessage> {
  readonly #router: FeedbackRouter;
  readonly #models: ModelDirectory;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly counters = { events: 0, cacheHits: 0, evaluations: 0 };

  constructor(router: FeedbackRouter, models: ModelDirectory, clock: Clock, timeoutMs: number) {
    super(`feedback:${router.app.name}`);
    this.#router = router;
    this.#models = models;
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
  }

  feedback(input: Float32Array | Int32Array, label: number, context: QueryContext): Promise<FeedbackResult> {
    return this.ask((reply) => ({ input, label, context, reply }));
  }

  protected override undeliverable(message: FeedbackMessage, error: unknown): void {
    message.reply.reject(error);
  }

  protected async receive(message: FeedbackMessage): Promise<void> {
    const { input, label, context, reply } = message;
    const losses = new Map<string, number>();
    const evaluated: string[] = [];
    const skipped: string[] = [];
    const cache = this.#router.cache;
    const digest = inputDigest(input);
    const policy = this.#router.policy;
    // A bandit learns only from the draw this feedback answers, and from each draw once: taken now, in arrival
    // order, so a repeated feedback finds no draw and teaches nothing (issue 14, bug 4).
    const selection = policy.learnsFrom === 'selected' ? this.#router.takeSelection(digest, context) : undefined;
    await Promise.all(
      this.#router.linkedModels.map(async (model) => {
        const set = this.#models.current(model);
        if (set === undefined) {
          skipped.push(model);
          return;
        }
        const key = predictionKey(set.model, set.version, digest);
        let prediction: Prediction | undefined = cache.peek(key);
        if (prediction === undefined) {
          evaluated.push(model);
          try {
            const evaluate = async (): Promise<Prediction> => {
              const answer = await set.predict(input, this.#clock.now() + this.#timeoutMs);
              return { scores: answer.scores, model: set.model, version: set.version };
            };
            prediction = (await cache.getOrEvaluate(key, evaluate)).prediction;
          } catch {
            skipped.push(model);
            return;
          }
        } else this.counters.cacheHits++;
        const scores = prediction.scores;
        losses.set(model, this.#models.outputKind(model) === 'classification' ? zeroOneLoss(scores, label) : absoluteLoss(scores[0] as number, label, 1));
      }),
    );
    this.counters.events++;
    this.counters.evaluations += evaluated.length;
    let learned = losses;
    if (policy.learnsFrom === 'selected') {
      // With no draw waiting for this input, the bandit learns nothing.
      const selected = selection?.models ?? [];
      learned = new Map([...losses].filter(([model]) => selected.includes(model)));
    }
    try {
      if (learned.size > 0) policy.feedback?.(learned, context, selection);
    } catch (error) {
      reply.reject(error);
      return;
    }
    reply.resolve({ losses: Object.fromEntries(losses), evaluated: evaluated.sort(), skipped: skipped.sort() });
  }
}
