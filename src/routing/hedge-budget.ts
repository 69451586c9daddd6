/**
 * The bound on speculative duplicates (hedged requests): a token bucket that earns `ratio` of a token per
 * query and spends one per hedge, so hedges stay under `ratio` of the queries over any long stretch (10% by
 * default) and hedging cannot itself cause overload. `burst` caps the savings, so a quiet spell cannot buy a
 * storm of hedges later. Pure.
 */
export class HedgeBudget {
  readonly ratio: number;
  readonly burst: number;
  #tokens: number;
  sent = 0;
  denied = 0;

  constructor(ratio: number, burst = 10) {
    this.ratio = ratio;
    this.burst = burst;
    this.#tokens = 0;
  }

  get tokens(): number {
    return this.#tokens;
  }

  /** Counts one query towards the budget. */
  earn(): void {
    this.#tokens = Math.min(this.burst, this.#tokens + this.ratio);
  }

  /** Takes one token for a hedge if there is one. */
  trySpend(): boolean {
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      this.sent++;
      return true;
    }
    this.denied++;
    return false;
  }
}

/**
 * The recent response times of a model's queries, and their 95th percentile: the default hedge delay (a
 * query still unanswered after the time that 95% of queries need is probably stuck behind a straggler).
 * A ring of the last `size` samples; the percentile is recomputed every `every` samples. Pure.
 */
export class LatencyWindow {
  readonly #samples: Float64Array;
  #count = 0;
  #next = 0;
  #sinceSort = 0;
  #p95 = Number.NaN;
  readonly #every: number;

  constructor(size = 512, every = 64) {
    this.#samples = new Float64Array(size);
    this.#every = every;
  }

  get count(): number {
    return this.#count;
  }

  observe(ms: number): void {
    this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#samples.length;
    if (this.#count < this.#samples.length) this.#count++;
    if (++this.#sinceSort >= this.#every || Number.isNaN(this.#p95)) {
      this.#sinceSort = 0;
      const sorted = this.#samples.slice(0, this.#count).sort();
      this.#p95 = sorted[Math.min(sorted.length - 1, Math.floor(0.95 * sorted.length))] as number;
    }
  }

  /** The 95th percentile of the window, NaN before any sample. */
  get p95(): number {
    return this.#p95;
  }
}
