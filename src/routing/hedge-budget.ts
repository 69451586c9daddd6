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

