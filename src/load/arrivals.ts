import { mulberry32 } from '../index.js';

/** How sends are spaced: evenly (`fixed`) or as a Poisson process (exponential gaps with the same mean). */
export type ArrivalProcess = 'fixed' | 'poisson';

/**
 * A seeded uniform generator in [0, 1) (the project's mulberry32). The same seed gives the same Poisson
 * schedule on every run, so two runs of a comparison offer exactly the same arrivals.
 */
export function seededUniform(seed: number): () => number {
  return mulberry32(seed);
}

/**
 * Gaps between sends, in milliseconds, for `rate` queries per second. Poisson arrivals draw each gap from
 * the exponential distribution with mean 1000 / rate (inverse transform: -ln(1 - U) / rate), so bursts
 * happen as they would from many independent users.
 *
 * @example
 * const gap = arrivalGaps('poisson', 1000, 7);
 * let due = 0;
 * for (let i = 0; i < 3; i++) due += gap(); // about 3 ms in all
 */
export function arrivalGaps(process: ArrivalProcess, rate: number, seed = 1): () => number {
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate must be a positive number of queries per second; got ${rate}`);
  const mean = 1000 / rate;
  if (process === 'fixed') return () => mean;
  const uniform = seededUniform(seed);
  return () => -Math.log(1 - uniform()) * mean;
}
