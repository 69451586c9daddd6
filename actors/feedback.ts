import { Actor, type Reply } from '../src/kernel/actor.js';
import type { Clock } from '../src/kernel/clock.js';
import { absoluteLoss, zeroOneLoss } from '../src/selection/losses.js';
import { inputDigest, predictionKey, type Prediction } from '../src/routing/prediction-cache.js';
import type { QueryContext } from '../src/selection/selection-policy.js';
import type { Router } from './router.js';
import type { FeedbackResult } from '../src/api.js';
import type { ModelDirectory } from './contracts.js';


type FeedbackMessage = { input: Float32Array | Int32Array; label: number; context: QueryContext; reply: Reply<FeedbackResult> };

/**
 * Applies feedback (true labels sent after the fact) for one application, in arrival order. It finds what
 * each linked model predicted for the input through the prediction cache, evaluating only the models that
 * miss, turns that into each model's loss and hands the losses to the application's selection policy.
 * It is an actor of its own, so feedback never holds up the router's queries.
 */
export class FeedbackActor extends Actor<FeedbackMessage> {
  readonly #router: Router;
  readonly #models: ModelDirectory;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly counters = { events: 0, cacheHits: 0, evaluations: 0 };

  constructor(router: Router, models: ModelDirectory, clock: Clock, timeoutMs = 1000) {
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
            prediction = cache.enabled ? (await cache.getOrEvaluate(key, evaluate)).prediction : await evaluate();
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
    const policy = this.#router.policy;
    let learned = losses;
    if (policy.learnsFrom === 'selected') {
      // A bandit learns only from the arm it pulled for this input; with no record of it, it learns nothing.
      const selected = this.#router.selectedFor(digest, context) ?? [];
      learned = new Map([...losses].filter(([model]) => selected.includes(model)));
    }
    try {
      if (learned.size > 0) policy.feedback?.(learned, context);
    } catch (error) {
      reply.reject(error);
      return;
    }
    reply.resolve({ losses: Object.fromEntries(losses), evaluated: evaluated.sort(), skipped: skipped.sort() });
  }
}
