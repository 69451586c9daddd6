/**
 * How many queries per millisecond have been arriving lately: an exponentially decaying count (time constant
 * `tauMs`), so a burst raises it at once and it fades within a few `tauMs` once arrivals stop. O(1) per
 * arrival, no allocation. Pure: the caller passes the time.
 *
 * @example
 * const rate = new ArrivalRate(100);
 * for (let t = 0; t < 1000; t++) rate.arrive(t); // one a millisecond
 * rate.perMs(1000); // ~1
 */
export class ArrivalRate {
  readonly #tauMs: number;
  /** The decayed count at {@link #at}, divided by tau: queries per ms. */
  #rate = 0;
  #at = Number.NEGATIVE_INFINITY;

  constructor(tauMs = 100) {
    if (!(tauMs > 0) || !Number.isFinite(tauMs)) throw new RangeError(`ArrivalRate tauMs must be a positive number; got ${tauMs}`);
    this.#tauMs = tauMs;
  }

  /** Counts `count` arrivals at `now` (ms, never before the last call's time). */
  arrive(now: number, count = 1): void {
    this.#rate = this.perMs(now) + count / this.#tauMs;
    this.#at = now;
  }

  /** Arrivals per millisecond as of `now`. */
  perMs(now: number): number {
    // Read at the last arrival's time (admission reads right after counting): no decay to compute.
    if (this.#rate === 0 || now <= this.#at) return this.#rate;
    return this.#rate * Math.exp((this.#at - now) / this.#tauMs);
  }
}
