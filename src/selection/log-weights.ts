import { checkObject, fail } from '../config/validate.js';

/** log(sum(exp(x))) without overflow: shift by the max first. -Infinity for no terms. */
function logSumExp(values: ArrayLike<number>): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  if (max === Number.NEGATIVE_INFINITY) return max;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i] - max);
  return max + Math.log(sum);
}

/**
 * Raises every entry of the distribution `p` below `floor` to `floor` and scales the rest down to keep the sum at
 * 1 (water-filling: scaling can push another entry under the floor, so repeat until none moves; at most
 * `p.length` rounds). A floor at or above 1/K gives the uniform distribution.
 */
function applyFloor(p: Float64Array, floor: number): void {
  if (floor <= 0 || p.length === 0) return;
  if (floor * p.length >= 1) {
    p.fill(1 / p.length);
    return;
  }
  const pinned = new Uint8Array(p.length);
  let pinnedCount = 0;
  let scale: number;
  for (;;) {
    let freeSum = 0;
    for (let i = 0; i < p.length; i++) if (!pinned[i]) freeSum += p[i];
    scale = freeSum > 0 ? (1 - floor * pinnedCount) / freeSum : 0;
    let moved = false;
    for (let i = 0; i < p.length; i++) {
      if (!pinned[i] && p[i] * scale < floor) {
        pinned[i] = 1;
        pinnedCount++;
        moved = true;
      }
    }
    if (!moved) break;
  }
  for (let i = 0; i < p.length; i++) p[i] = pinned[i] ? floor : p[i] * scale;
}

/**
 * The weight table behind Exp3 and Exp4: one multiplicative weight s_i per model, held as log s_i so that
 * millions of updates neither underflow nor overflow. After every update the table is shifted so that its
 * largest log weight is 0 (probabilities are ratios, so the shift changes none of them), and no log weight
 * falls more than `maxLogWeightGap` below that top. The gap bound keeps every stored number finite (JSON has no
 * -Infinity, and `-Infinity - -Infinity` is NaN), and it bounds how long a model that failed and then
 * recovered needs to win back its share: at most `maxLogWeightGap / (eta * its advantage)` feedback events.
 *
 * A model the table has not seen starts at the mean weight (arithmetic, in weight space) of the other models
 * it is being considered with, or of the whole table when none of those is known, or at weight 1 in an empty
 * table. So a newly linked model begins on an equal footing with a typical incumbent rather than with the best
 * or the worst.
 */
export class LogWeights {
  /** model -> slot in #log. Slots are never freed: a model once seen keeps its weight even if unlinked. */
  readonly #slot = new Map<string, number>();
  readonly #log: number[] = [];
  readonly #maxGap: number;

  constructor(maxLogWeightGap: number) {
    this.#maxGap = maxLogWeightGap;
  }

  get size(): number {
    return this.#log.length;
  }

  has(model: string): boolean {
    return this.#slot.has(model);
  }

  /** The models in the table, in the order they joined. */
  models(): string[] {
    return [...this.#slot.keys()];
  }

  /** The stored (shifted) log weight, or undefined for an unseen model. */
  logWeight(model: string): number | undefined {
    const i = this.#slot.get(model);
    return i === undefined ? undefined : this.#log[i];
  }

  /** The log weight an unseen model would start with, alongside `peers`. */
  initialLogWeight(peers: readonly string[]): number {
    const known: number[] = [];
    for (const m of peers) {
      const i = this.#slot.get(m);
      if (i !== undefined) known.push(this.#log[i]);
    }
    const reference = known.length > 0 ? known : this.#log;
    if (reference.length === 0) return 0;
    return logSumExp(reference) - Math.log(reference.length);
  }

  /** Adds the unseen ones among `models` at their initial log weight. */
  add(models: readonly string[]): void {
    let initial: number | undefined;
    for (const m of models) {
      if (this.#slot.has(m)) continue;
      // Computed once, before any is added: k models joining at the mean leave the mean where it was anyway.
      initial ??= this.initialLogWeight(models);
      this.#slot.set(m, this.#log.length);
      this.#log.push(initial);
    }
    if (initial !== undefined) this.#normalise();
  }

  /**
   * The selection distribution over `models` (distinct): p_i = (1 - gamma) s_i / sum(s) + gamma / K, then
   * raised to at least `floor`. Unseen models count at their initial weight; the table does not change.
   */
  distribution(models: readonly string[], gamma = 0, floor = 0): Float64Array {
    const k = models.length;
    const p = new Float64Array(k);
    if (k === 0) return p;
    let initial: number | undefined;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < k; i++) {
      const slot = this.#slot.get(models[i]);
      p[i] = slot === undefined ? (initial ??= this.initialLogWeight(models)) : this.#log[slot];
      if (p[i] > max) max = p[i];
    }
    // Softmax shifted by the max: the largest term is exp(0) = 1, so the sum is in [1, K] and never 0 or Infinity.
    let total = 0;
    for (let i = 0; i < k; i++) total += p[i] = Math.exp(p[i] - max);
    for (let i = 0; i < k; i++) p[i] = ((1 - gamma) * p[i]) / total + gamma / k;
    applyFloor(p, floor);
    return p;
  }

  /**
   * s_i <- s_i * exp(-factor * L_i) for each model in `losses`, then shift and clamp. Unseen models are added
   * first.
   */
  decrease(losses: ReadonlyMap<string, number>, factor: number): void {
    for (const m of losses.keys()) {
      if (!this.#slot.has(m)) {
        this.add([...losses.keys()]);
        break;
      }
    }
    losses.forEach((loss, m) => {
      // A zero loss leaves the weight as it is whatever the factor: an infinite factor (bandit Exp3 dividing by a
      // probability that underflowed to 0, issue 14 bug 6) times 0 would be NaN and sink the model to the bottom.
      if (loss > 0) this.#log[this.#slot.get(m) as number] -= factor * loss;
    });
    this.#normalise();
  }

  #normalise(): void {
    const log = this.#log;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < log.length; i++) if (log[i] > max) max = log[i];
    if (!Number.isFinite(max)) max = 0;
    const bottom = -this.#maxGap;
    for (let i = 0; i < log.length; i++) {
      const shifted = log[i] - max;
      // `>=` is false for NaN as well (an infinite update on an infinite weight): that lands on the bottom too.
      log[i] = shifted >= bottom ? shifted : bottom;
    }
  }

  /** The table as a plain object, model -> log weight. */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [m, i] of this.#slot) out[m] = this.#log[i];
    return out;
  }

  /** Replaces the table with `entries` (already checked), then shifts and clamps. */
  replace(entries: Iterable<readonly [string, number]>): void {
    this.#slot.clear();
    this.#log.length = 0;
    for (const [m, w] of entries) {
      const i = this.#slot.get(m);
      if (i !== undefined) this.#log[i] = w;
      else {
        this.#slot.set(m, this.#log.length);
        this.#log.push(w);
      }
    }
    this.#normalise();
  }

  /** Checks a snapshot's `logWeights` field: an object of model name -> finite number. */
  static parse(what: string, value: unknown): [string, number][] {
    const record = checkObject(what, value);
    const entries: [string, number][] = [];
    for (const [model, w] of Object.entries(record)) {
      if (model.length === 0) fail(`${what} keys`, 'non-empty model names', model);
      if (typeof w !== 'number' || !Number.isFinite(w)) fail(`${what}[${JSON.stringify(model)}]`, 'a finite number', w);
      entries.push([model, w]);
    }
    return entries;
  }
}

/** Checks the fields common to Exp3 and Exp4 snapshots; returns the log weights and update count. */
export function parseWeightSnapshot(kind: string, snapshot: unknown): { logWeights: [string, number][]; updates: number } {
  const s = checkObject(`${kind} snapshot`, snapshot);
  if (s.kind !== kind) fail(`${kind} snapshot.kind`, JSON.stringify(kind), s.kind);
  const logWeights = LogWeights.parse(`${kind} snapshot.logWeights`, s.logWeights);
  const updates = s.updates ?? 0;
  if (typeof updates !== 'number' || !Number.isSafeInteger(updates) || updates < 0) fail(`${kind} snapshot.updates`, 'an integer >= 0', updates);
  return { logWeights, updates: updates as number };
}
