import { InvalidOptionError } from '../errors.js';

/** A source of uniform floats in [0, 1), injected into policies so their choices repeat under test. */
export type Random = () => number;

/** The seed policies use when given neither a seed nor a random source. */
export const DEFAULT_SEED = 0x2017;

/**
 * mulberry32: a tiny, fast 32-bit seeded PRNG yielding floats in [0, 1). Same seed, same sequence, on every
 * platform.
 *
 * @example
 * const random = mulberry32(42);
 * random(); // 0.6011037519201636, always
 */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One draw from `random`, checked: an injected source that strays outside [0, 1) would otherwise bias every
 * sample silently. `what` names the option in the error (`exp3.random`).
 */
export function drawUniform(random: Random, what: string): number {
  const u = random();
  if (typeof u !== 'number' || !(u >= 0 && u < 1)) {
    throw new InvalidOptionError(`${what} must return a number in [0, 1); got ${String(u)}`);
  }
  return u;
}

/**
 * Samples an index with probability proportional to `weights` (non-negative, not necessarily summing to 1),
 * given a uniform draw `u` in [0, 1). Returns -1 when no weight is positive. Rounding can leave `u * total`
 * just past the last cumulative sum; the last index with a positive weight takes that sliver, so an index
 * with weight 0 is never returned.
 *
 * @example
 * sampleIndex([0.9, 0.1], 0.95); // 1
 */
export function sampleIndex(weights: ArrayLike<number>, u: number): number {
  let total = 0;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] > 0) {
      total += weights[i];
      last = i;
    }
  }
  if (last < 0) return -1;
  const target = u * total;
  let cumulative = 0;
  for (let i = 0; i < last; i++) {
    if (!(weights[i] > 0)) continue;
    cumulative += weights[i];
    if (target < cumulative) return i;
  }
  return last;
}
