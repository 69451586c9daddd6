import { InternalError, ModelRuntimeError } from '../errors.js';
import { checkKnownKeys, checkName, checkNumber, checkObject } from '../config/validate.js';
import { LogWeights, parseWeightSnapshot } from './log-weights.js';
import { argmax, checkLosses } from './losses.js';
import type { Combined, ModelOutput, PolicySnapshot, SelectionPolicy } from './selection-policy.js';

/** Exp4's options; every one optional. */
export interface Exp4Options {
  /** Learning rate eta. Default 0.1; see {@link exp4Defaults}. */
  eta?: number;
  /** How far (in log weight) the worst model may trail the best; see {@link LogWeights}. Default 700. */
  maxLogWeightGap?: number;
  /** The policy's name, and the `model` of every combined answer. Default `ensemble`. */
  name?: string;
  /**
   * Regression outputs (score rows of length 1): a model agrees with the combined value when it is within this
   * absolute distance of it. Default 0.5 (the two round to neighbouring integers at worst); set it to the error
   * below which two answers count as the same for the application.
   */
  regressionTolerance?: number;
}

export interface ResolvedExp4Options {
  readonly eta: number;
  readonly maxLogWeightGap: number;
  readonly name: string;
  readonly regressionTolerance: number;
}

/**
 * Exp4's defaults. eta = 0.1 rather than Clipper's 0.01: every feedback event updates every model with its own
 * loss, so two models whose error rates differ by d drift apart by eta * d in log weight per event; after 1000
 * events with d = 0.1, eta = 0.01 gives the better one only e^1 = 2.7 times the weight of the worse, eta = 0.1
 * gives it e^10 = 22000 times. 0.1 is also Hedge's regret-optimal sqrt(8 ln K / T) for T = 1000 events and
 * K = 2 to 5 models (0.074 to 0.11).
 */
export const exp4Defaults: Readonly<ResolvedExp4Options> = Object.freeze({
  eta: 0.1,
  maxLogWeightGap: 700,
  name: 'ensemble',
  regressionTolerance: 0.5,
});

const EXP4_OPTIONS = Object.keys(exp4Defaults);

function resolveExp4Options(input: Exp4Options | undefined): Readonly<ResolvedExp4Options> {
  const given = checkObject('exp4 options', input ?? {}) as Exp4Options;
  checkKnownKeys('exp4', given as Record<string, unknown>, EXP4_OPTIONS);
  return Object.freeze({
    eta: checkNumber('exp4.eta', given.eta ?? exp4Defaults.eta, 0, 10, { exclusiveMin: true }),
    maxLogWeightGap: checkNumber('exp4.maxLogWeightGap', given.maxLogWeightGap ?? exp4Defaults.maxLogWeightGap, 1, 1e6),
    name: checkName('exp4.name', given.name ?? exp4Defaults.name),
    regressionTolerance: checkNumber('exp4.regressionTolerance', given.regressionTolerance ?? exp4Defaults.regressionTolerance, 0, Number.MAX_VALUE),
  });
}

/** The JSON an {@link Exp4Policy} snapshots to. Options are shown for inspection; `restore` takes only the learned state. */
export interface Exp4Snapshot extends PolicySnapshot {
  readonly kind: 'exp4';
  readonly name: string;
  readonly eta: number;
  readonly maxLogWeightGap: number;
  readonly regressionTolerance: number;
  /** Feedback events learned from. */
  readonly updates: number;
  /** model -> log weight, shifted so the largest is 0. */
  readonly logWeights: Record<string, number>;
}

/**
 * Ensemble selection with Exp4 (Clipper, section 5.1): every linked model answers; the answer is the weighted
 * average of their score rows, with weights p_i = s_i / sum(s) renormalised over the models whose outputs
 * arrived (a straggler cut off at the deadline drops out, and the others' shares grow to fill its place). On
 * feedback every model's weight is updated with its own loss, s_i <- s_i * exp(-eta * L_i), held in log space
 * (see {@link LogWeights}).
 *
 * Each answer carries a confidence (Clipper, section 5.2.1, robust predictions): the share of contributing
 * models, counted equally whatever their weights, whose own label (argmax) is the combined label, as in
 * "4 of 5 models agree" = 0.8. For regression rows (length 1) a model agrees when its value is within
 * `regressionTolerance` of the combined value.
 *
 * Pure: no clock, no I/O, no randomness.
 *
 * @example
 * const policy = new Exp4Policy();
 * policy.select(['mnist-mlp', 'mnist-cnn']); // ['mnist-mlp', 'mnist-cnn']
 * policy.combine([
 *   { model: 'mnist-mlp', version: '1', scores: Float32Array.of(0.8, 0.2) },
 *   { model: 'mnist-cnn', version: '1', scores: Float32Array.of(0.4, 0.6) },
 * ]); // { scores: [0.6, 0.4], model: 'ensemble', version: 'mnist-mlp@1+mnist-cnn@1', confidence: 0.5, ... }
 */
export class Exp4Policy implements SelectionPolicy {
  readonly name: string;
  readonly options: Readonly<ResolvedExp4Options>;
  readonly #weights: LogWeights;
  #updates = 0;

  constructor(options?: Exp4Options) {
    this.options = resolveExp4Options(options);
    this.name = this.options.name;
    this.#weights = new LogWeights(this.options.maxLogWeightGap);
  }

  /** Feedback events learned from. */
  get updates(): number {
    return this.#updates;
  }

  /** Every linked model, always. */
  selectsAll(): boolean {
    return true;
  }

  /** Every linked model (each once). Models seen for the first time join the table at the mean weight. */
  select(linked: readonly string[]): readonly string[] {
    const models = [...new Set(linked)];
    this.#weights.add(models);
    return models;
  }

  /**
   * The weighted average of the outputs that arrived. An output from a model named twice counts once (the
   * first). Rows of different lengths are a model fault and throw {@link ModelRuntimeError}.
   */
  combine(outputs: readonly ModelOutput[]): Combined {
    const seen = new Set<string>();
    const used: ModelOutput[] = [];
    for (const o of outputs) {
      if (seen.has(o.model)) continue;
      seen.add(o.model);
      used.push(o);
    }
    const first = used[0];
    if (first === undefined) throw new InternalError(`${this.name}.combine needs at least one output; got none`);
    const n = first.scores.length;
    for (const o of used) {
      if (o.scores.length !== n) {
        throw new ModelRuntimeError(
          `${this.name}: ensemble outputs differ in length: ${first.model} returned ${n} scores, ${o.model} returned ${o.scores.length}`,
        );
      }
    }
    const contributors = used.map((o) => o.model);
    const weights = this.#weights.distribution(contributors);
    const sum = new Float64Array(n);
    for (let j = 0; j < used.length; j++) {
      const w = weights[j];
      const s = used[j].scores;
      for (let i = 0; i < n; i++) sum[i] += w * s[i];
    }
    const scores = Float32Array.from(sum);
    return {
      scores,
      model: this.name,
      version: used.map((o) => `${o.model}@${o.version}`).join('+'),
      confidence: this.#agreement(used, scores),
      contributors,
    };
  }

  #agreement(used: readonly ModelOutput[], combined: Float32Array): number {
    let agree = 0;
    if (combined.length === 1) {
      const value = combined[0];
      for (const o of used) if (Math.abs(o.scores[0] - value) <= this.options.regressionTolerance) agree++;
    } else {
      const label = argmax(combined);
      for (const o of used) if (argmax(o.scores) === label) agree++;
    }
    return agree / used.length;
  }

  /** s_i <- s_i * exp(-eta * L_i) for every model in `losses`. Losses are checked first: a bad one changes nothing. */
  feedback(losses: ReadonlyMap<string, number>): void {
    checkLosses(`${this.name}.feedback`, losses);
    if (losses.size === 0) return;
    this.#weights.decrease(losses, this.options.eta);
    this.#updates++;
  }

  /** The combination weights over `linked` (default: every model the policy has seen), summing to 1. */
  probabilities(linked?: readonly string[]): Map<string, number> {
    const models = [...new Set(linked ?? this.#weights.models())];
    const p = this.#weights.distribution(models);
    return new Map(models.map((m, i) => [m, p[i]]));
  }

  snapshot(): Exp4Snapshot {
    const { eta, maxLogWeightGap, regressionTolerance } = this.options;
    return { kind: 'exp4', name: this.name, eta, maxLogWeightGap, regressionTolerance, updates: this.#updates, logWeights: this.#weights.toJSON() };
  }

  /** Takes the learned state (log weights, update count) from a snapshot; the options stay the constructor's. */
  restore(snapshot: PolicySnapshot): void {
    const { logWeights, updates } = parseWeightSnapshot('exp4', snapshot);
    this.#weights.replace(logWeights);
    this.#updates = updates;
  }
}
