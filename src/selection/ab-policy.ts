import { checkKnownKeys, checkName, checkObject, fail } from '../config/validate.js';
import { DEFAULT_SEED, drawUniform, mulberry32, sampleIndex, type Random } from '../kernel/random.js';
import { chosenAnswer, type Combined, type ModelOutput, type PolicySnapshot, type SelectionPolicy } from './selection-policy.js';

/** A/B split options besides the weights; every one optional. */
export interface AbSplitOptions {
  /** Reported as the policy's name. Default `ab`. */
  name?: string;
  /** Seed for the default random source (mulberry32). Default {@link DEFAULT_SEED}. Ignored when `random` is given. */
  seed?: number;
  /** The random source, uniform in [0, 1). Default `mulberry32(seed)`. */
  random?: Random;
}

export interface ResolvedAbSplitOptions {
  readonly name: string;
  readonly seed: number;
  readonly random: Random;
}

export const abSplitDefaults = Object.freeze({ name: 'ab', seed: DEFAULT_SEED });

const AB_OPTIONS = ['name', 'seed', 'random'];

/** The JSON an {@link AbSplitPolicy} snapshots to. */
export interface AbSplitSnapshot extends PolicySnapshot {
  readonly kind: 'ab';
  readonly name: string;
  /** model -> weight, as configured. */
  readonly weights: Record<string, number>;
}

function checkWeights(what: string, value: unknown): Map<string, number> {
  const record = checkObject(what, value);
  const weights = new Map<string, number>();
  for (const [model, w] of Object.entries(record)) {
    checkName(`${what} model name`, model);
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) fail(`${what}[${JSON.stringify(model)}]`, 'a finite number >= 0', w);
    weights.set(model, w);
  }
  if (![...weights.values()].some((w) => w > 0)) fail(what, 'an object with at least one weight > 0, e.g. { "model-a": 0.9, "model-b": 0.1 }', value);
  return weights;
}

/**
 * A fixed-weight A/B split: each query goes to one model, drawn with probability proportional to its configured
 * weight among the linked models that have one. A linked model absent from the split (or weighted 0) is never
 * chosen; when no linked model is in the split, no model is (the router then answers with the default output).
 * It does not learn: feedback is accepted and ignored.
 *
 * Pure: no clock, no I/O; randomness from `options.random`.
 *
 * @example
 * const policy = new AbSplitPolicy({ 'model-a': 0.9, 'model-b': 0.1 }, { seed: 1 });
 * policy.select(['model-a', 'model-b']); // ['model-a'] 90% of the time
 */
export class AbSplitPolicy implements SelectionPolicy {
  readonly name: string;
  readonly options: Readonly<ResolvedAbSplitOptions>;
  readonly #weights: ReadonlyMap<string, number>;

  constructor(weights: Readonly<Record<string, number>>, options?: AbSplitOptions) {
    this.#weights = checkWeights('ab.weights', weights);
    const given = checkObject('ab options', options ?? {}) as AbSplitOptions;
    checkKnownKeys('ab', given as Record<string, unknown>, AB_OPTIONS);
    const seed = given.seed ?? abSplitDefaults.seed;
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail('ab.seed', 'an integer in [0, 2^32)', seed);
    if (given.random !== undefined && typeof given.random !== 'function') fail('ab.random', 'a function returning numbers in [0, 1)', given.random);
    this.options = Object.freeze({ name: checkName('ab.name', given.name ?? abSplitDefaults.name), seed, random: given.random ?? mulberry32(seed) });
    this.name = this.options.name;
  }

  /** The configured weights, model -> weight. */
  get weights(): Record<string, number> {
    return Object.fromEntries(this.#weights);
  }

  /** One model linked (named once or more), with a positive weight. */
  selectsAll(linked: readonly string[]): boolean {
    return new Set(linked).size === 1 && (this.#weights.get(linked[0] as string) ?? 0) > 0;
  }

  /** One linked model drawn by weight; none when no linked model has a positive weight. */
  select(linked: readonly string[]): readonly string[] {
    const candidates = [...new Set(linked)].filter((m) => (this.#weights.get(m) ?? 0) > 0);
    if (candidates.length === 0) return [];
    if (candidates.length === 1) return candidates;
    const i = sampleIndex(
      candidates.map((m) => this.#weights.get(m) as number),
      drawUniform(this.options.random, `${this.name}.random`),
    );
    return [candidates[i]];
  }

  /** The chosen model's answer, as it is (confidence 1). */
  combine(outputs: readonly ModelOutput[]): Combined {
    return chosenAnswer(this.name, outputs);
  }

  /** The split's probabilities over `linked` (default: every model in the split), summing to 1 (empty if none has weight). */
  probabilities(linked?: readonly string[]): Map<string, number> {
    const models = [...new Set(linked ?? this.#weights.keys())];
    const total = models.reduce((sum, m) => sum + (this.#weights.get(m) ?? 0), 0);
    return new Map(models.map((m) => [m, total > 0 ? (this.#weights.get(m) ?? 0) / total : 0]));
  }

  /** A fixed split learns nothing. */
  feedback(): void {}

  snapshot(): AbSplitSnapshot {
    return { kind: 'ab', name: this.name, weights: this.weights };
  }

  /**
   * Checks the snapshot and keeps the constructor's weights: the split is configuration, not learned state, so
   * a split changed in the configuration is not undone by restoring an older snapshot.
   */
  restore(snapshot: PolicySnapshot): void {
    const s = checkObject('ab snapshot', snapshot);
    if (s.kind !== 'ab') fail('ab snapshot.kind', '"ab"', s.kind);
    checkWeights('ab snapshot.weights', s.weights);
  }
}
