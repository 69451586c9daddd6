import { InvalidOptionError } from '../errors.js';
import { checkKnownKeys, checkName, checkNumber, checkObject, fail } from '../config/validate.js';
import { checkLosses } from './losses.js';
import { LogWeights, parseWeightSnapshot } from './log-weights.js';
import { DEFAULT_SEED, drawUniform, mulberry32, sampleIndex, type Random } from '../kernel/random.js';
import { chosenAnswer, type Combined, type ModelOutput, type PolicySnapshot, type QueryContext, type Selection, type SelectionPolicy } from './selection-policy.js';

/** `models` without repeats; the array itself when it has none (the usual case, and this runs per query). */
function unique(models: readonly string[]): readonly string[] {
  for (let i = 1; i < models.length; i++) {
    for (let j = 0; j < i; j++) if (models[i] === models[j]) return [...new Set(models)];
  }
  return models;
}

/** Exp3's options; every one optional. */
export interface Exp3Options {
  /**
   * Learning rate eta. Default 0.1 with full information, 0.03 without. Clipper's C++ used 0.01; see
   * {@link exp3Defaults} for why the defaults are larger.
   */
  eta?: number;
  /** Uniform exploration mixed into the probabilities: p_i = (1 - gamma) s_i / sum(s) + gamma / K. Default 0, as in Clipper. */
  gamma?: number;
  /** A floor under every linked model's probability (water-filled, so they still sum to 1). Default 0. */
  minProbability?: number;
  /**
   * `true` (default): feedback carries every model's loss (this system evaluates every linked model on a
   * feedback input, through the prediction cache) and every model is updated with its own loss, s_i <- s_i *
   * exp(-eta * L_i), which is the full-information form of Exp3 (Hedge). `false`: classic bandit Exp3; feedback
   * must carry one loss, the chosen model's, and only it is updated, importance-weighted: s_i <- s_i *
   * exp(-eta * L_i / p_i).
   */
  fullInformation?: boolean;
  /** How far (in log weight) the worst model may trail the best; see {@link LogWeights}. Default 700. */
  maxLogWeightGap?: number;
  /** Reported as the policy's name. Default `exp3`. */
  name?: string;
  /** Seed for the default random source (mulberry32). Default {@link DEFAULT_SEED}. Ignored when `random` is given. */
  seed?: number;
  /** The random source, uniform in [0, 1). Default `mulberry32(seed)`. */
  random?: Random;
}

export interface ResolvedExp3Options {
  readonly eta: number;
  readonly gamma: number;
  readonly minProbability: number;
  readonly fullInformation: boolean;
  readonly maxLogWeightGap: number;
  readonly name: string;
  readonly seed: number;
  readonly random: Random;
}

/**
 * Exp3's defaults. The learning rates are larger than Clipper's 0.01 because 0.01 learns too slowly for the
 * few thousand feedback events an application sees: with full information the log weights of two models whose
 * error rates differ by d drift apart by eta * d per event, so after 1000 events with d = 0.1 eta = 0.01 leaves
 * the better one at only e^1 / (1 + e^1) = 73% probability, while eta = 0.1 gives it 99.995%. 0.1 is also
 * Hedge's regret-optimal rate sqrt(8 ln K / T) for T = 1000 events and K = 2 to 5 models (0.074 to 0.11).
 * Bandit Exp3 divides each loss by p_i, so its updates are larger and noisier; its regret-optimal rate
 * sqrt(2 ln K / (K T)) is 0.025 to 0.026 for the same T and K, hence 0.03. (Simulated, three models with error
 * rates 0.1, 0.2, 0.3, 1000 events, 200 seeds: full information at eta 0.01 / 0.1 ends with the best model at
 * p = 0.66 / 1.00 and a mean error of 0.170 / 0.113; bandit at 0.01 / 0.03 / 0.1 ends at p = 0.65 / 0.91 / 0.96,
 * error 0.171 / 0.140 / 0.121, and at 0.3 two of the 200 runs ended favouring a worse model. Larger bandit
 * rates learn faster on stationary data but their importance-weighted updates are noisier; 0.03 is the
 * conservative, theory-backed choice, and an application that wants faster learning can raise it.)
 */
export const exp3Defaults = Object.freeze({
  fullInformationEta: 0.1,
  banditEta: 0.03,
  gamma: 0,
  minProbability: 0,
  fullInformation: true,
  maxLogWeightGap: 700,
  name: 'exp3',
  seed: DEFAULT_SEED,
});

const EXP3_OPTIONS = ['eta', 'gamma', 'minProbability', 'fullInformation', 'maxLogWeightGap', 'name', 'seed', 'random'];

function resolveExp3Options(input: Exp3Options | undefined): Readonly<ResolvedExp3Options> {
  const given = checkObject('exp3 options', input ?? {});
  checkKnownKeys('exp3', given, EXP3_OPTIONS);
  const o = given as Exp3Options;
  const fullInformation = o.fullInformation ?? exp3Defaults.fullInformation;
  if (typeof fullInformation !== 'boolean') fail('exp3.fullInformation', 'a boolean', fullInformation);
  const seed = o.seed ?? exp3Defaults.seed;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail('exp3.seed', 'an integer in [0, 2^32)', seed);
  if (o.random !== undefined && typeof o.random !== 'function') fail('exp3.random', 'a function returning numbers in [0, 1)', o.random);
  return Object.freeze({
    eta: checkNumber('exp3.eta', o.eta ?? (fullInformation ? exp3Defaults.fullInformationEta : exp3Defaults.banditEta), 0, 10, { exclusiveMin: true }),
    gamma: checkNumber('exp3.gamma', o.gamma ?? exp3Defaults.gamma, 0, 1),
    minProbability: checkNumber('exp3.minProbability', o.minProbability ?? exp3Defaults.minProbability, 0, 1),
    fullInformation,
    maxLogWeightGap: checkNumber('exp3.maxLogWeightGap', o.maxLogWeightGap ?? exp3Defaults.maxLogWeightGap, 1, 1e6),
    name: checkName('exp3.name', o.name ?? exp3Defaults.name),
    seed,
    random: o.random ?? mulberry32(seed),
  });
}

/** The JSON an {@link Exp3Policy} snapshots to. Options are shown for inspection; `restore` takes only the learned state. */
export interface Exp3Snapshot extends PolicySnapshot {
  readonly kind: 'exp3';
  readonly name: string;
  readonly eta: number;
  readonly gamma: number;
  readonly minProbability: number;
  readonly fullInformation: boolean;
  readonly maxLogWeightGap: number;
  /** Feedback events learned from. */
  readonly updates: number;
  /** model -> log weight, shifted so the largest is 0. */
  readonly logWeights: Record<string, number>;
}

/**
 * Single-model selection with Exp3 (Clipper, section 5.1): each query goes to one linked model, drawn with
 * probability p_i = s_i / sum(s) over the linked models (optionally mixed with uniform exploration `gamma`
 * and floored at `minProbability`); feedback lowers the weights of models that were wrong.
 *
 * Which update runs is the `fullInformation` option. This system's feedback evaluates every linked model on
 * the input (the prediction cache makes that cheap), so by default every model in the feedback is updated
 * with its own loss, s_i <- s_i * exp(-eta * L_i): Exp3's full-information form (Hedge), which learns K times
 * faster than the bandit form and needs no importance weighting. With `fullInformation: false` it is Clipper's
 * bandit Exp3: feedback carries only the chosen model's loss, and s_i <- s_i * exp(-eta * L_i / p_i), with p_i
 * the probability the draw that feedback answers had when it was made (the router records each draw with
 * {@link selectionProbability} and hands it to `feedback` once). Feedback given without its draw (a direct
 * call) falls back to the model's probability now, over the models last passed to `select`.
 *
 * Pure: no clock, no I/O; randomness from `options.random`.
 *
 * @example
 * const policy = new Exp3Policy({ eta: 0.1, seed: 7 });
 * const [model] = policy.select(['mnist-mlp', 'mnist-cnn']);
 * policy.feedback(new Map([['mnist-mlp', 1], ['mnist-cnn', 0]]));
 * policy.probabilities(['mnist-mlp', 'mnist-cnn']); // Map { 'mnist-mlp' => 0.475, 'mnist-cnn' => 0.525 }
 */
export class Exp3Policy implements SelectionPolicy {
  readonly name: string;
  readonly options: Readonly<ResolvedExp3Options>;
  readonly #weights: LogWeights;
  #lastLinked: readonly string[] = [];
  /** The last draw, so that {@link selectionProbability} right after it needs no second pass over the weights. */
  #lastDraw: Selection | undefined;
  #updates = 0;

  constructor(options?: Exp3Options) {
    this.options = resolveExp3Options(options);
    this.name = this.options.name;
    this.#weights = new LogWeights(this.options.maxLogWeightGap);
  }

  /** Feedback events learned from. */
  get updates(): number {
    return this.#updates;
  }

  /** One model linked (named once or more): the draw has one outcome. */
  selectsAll(linked: readonly string[]): boolean {
    return new Set(linked).size === 1;
  }

  /** Draws one of the linked models; none when none is linked. Models seen for the first time join the table. */
  select(linked: readonly string[]): readonly string[] {
    const models = unique(linked);
    if (models.length === 0) return [];
    this.#weights.add(models);
    this.#lastLinked = models;
    const p = this.#weights.distribution(models, this.options.gamma, this.options.minProbability);
    const drawn = sampleIndex(p, drawUniform(this.options.random, `${this.name}.random`));
    const i = drawn < 0 ? 0 : drawn;
    const selected = [models[i]];
    this.#lastDraw = { models: selected, probability: p[i] };
    return selected;
  }

  /**
   * The probability that {@link select} over `linked` draws `selected` (one model) in the present state; for the
   * array `select` last returned, the probability it was drawn with (no second pass over the weights). The
   * router records it with the draw for bandit feedback.
   */
  selectionProbability(selected: readonly string[], linked: readonly string[]): number {
    const last = this.#lastDraw;
    if (last !== undefined && selected === last.models) return last.probability;
    const models = unique(linked);
    const i = selected.length === 1 ? models.indexOf(selected[0]) : -1;
    return i < 0 ? 0 : this.#weights.distribution(models, this.options.gamma, this.options.minProbability)[i];
  }

  /** The chosen model's answer, as it is (one model agrees with itself: confidence 1). */
  combine(outputs: readonly ModelOutput[]): Combined {
    return chosenAnswer(this.name, outputs);
  }

  /** Bandit Exp3 learns only from the model it chose; full-information Exp3 from every model. */
  get learnsFrom(): 'all' | 'selected' {
    return this.options.fullInformation ? 'all' : 'selected';
  }

  /**
   * Learns from one feedback event (see the class comment for the two forms). Losses are checked first: a bad
   * one changes nothing. In the bandit form, `selection` is the draw the feedback answers: the update divides by
   * the probability that draw had (without one, by the model's probability now; see the class comment).
   */
  feedback(losses: ReadonlyMap<string, number>, _context?: QueryContext, selection?: Selection): void {
    checkLosses(`${this.name}.feedback`, losses);
    if (losses.size === 0) return;
    const eta = this.options.eta;
    if (this.options.fullInformation) {
      this.#weights.decrease(losses, eta);
    } else {
      if (losses.size !== 1) {
        throw new InvalidOptionError(
          `${this.name}.feedback with fullInformation: false takes the chosen model's loss only; got ${losses.size} losses (${[...losses.keys()].join(', ')})`,
        );
      }
      const [model] = losses.keys();
      const p = selection === undefined ? this.#probabilityNow(model) : this.#drawProbability(model, selection);
      // p > 0 in exact arithmetic; the guard is for exp rounding it to 0. Infinity lands on the gap bound.
      this.#weights.decrease(losses, eta / Math.max(p, Number.MIN_VALUE));
    }
    this.#updates++;
  }

  #drawProbability(model: string, selection: Selection): number {
    const p = selection.probability;
    if (!selection.models.includes(model)) {
      throw new InvalidOptionError(`${this.name}.feedback: the loss is for ${model}, but the draw it answers selected ${selection.models.join(', ') || 'no model'}`);
    }
    if (typeof p !== 'number' || !(p > 0 && p <= 1)) throw new InvalidOptionError(`${this.name}.feedback: the draw's probability must be in (0, 1]; got ${String(p)}`);
    return p;
  }

  #probabilityNow(model: string): number {
    let models = this.#lastLinked.length > 0 ? this.#lastLinked : this.#weights.models();
    let i = models.indexOf(model);
    if (i < 0) {
      models = [...models, model];
      i = models.length - 1;
    }
    return this.#weights.distribution(models, this.options.gamma, this.options.minProbability)[i];
  }

  /** The selection probabilities over `linked` (default: every model the policy has seen), without drawing. */
  probabilities(linked?: readonly string[]): Map<string, number> {
    const models = unique(linked ?? this.#weights.models());
    const p = this.#weights.distribution(models, this.options.gamma, this.options.minProbability);
    return new Map(models.map((m, i) => [m, p[i]]));
  }

  snapshot(): Exp3Snapshot {
    const { eta, gamma, minProbability, fullInformation, maxLogWeightGap } = this.options;
    return {
      kind: 'exp3',
      name: this.name,
      eta,
      gamma,
      minProbability,
      fullInformation,
      maxLogWeightGap,
      updates: this.#updates,
      logWeights: this.#weights.toJSON(),
    };
  }

  /** Takes the learned state (log weights, update count) from a snapshot; the options stay the constructor's. */
  restore(snapshot: PolicySnapshot): void {
    const { logWeights, updates } = parseWeightSnapshot('exp3', snapshot);
    this.#weights.replace(logWeights);
    this.#updates = updates;
  }
}
