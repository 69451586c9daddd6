/**
 * Predicts how long a batch of k rows will take on one replica, from the batches it has run.
 *
 * It keeps exponentially weighted means of batch time and batch rows, and predicts `meanMs` for batches up to
 * the mean size and proportionally more beyond it: below the usual size a batch's fixed cost (the thread hop,
 * session setup) dominates, above it the per-row cost does. Until the first batch it predicts 0, so nothing
 * is refused for want of data. Pure.
 */
export class BatchLatencyModel {
  readonly #alpha: number;
  #meanMs = 0;
  #meanRows = 0;
  #samples = 0;

  constructor(alpha = 0.2) {
    this.#alpha = alpha;
  }

  get samples(): number {
    return this.#samples;
  }

  observe(rows: number, ms: number): void {
    if (this.#samples === 0) {
      this.#meanMs = ms;
      this.#meanRows = rows;
    } else {
      this.#meanMs += this.#alpha * (ms - this.#meanMs);
      this.#meanRows += this.#alpha * (rows - this.#meanRows);
    }
    this.#samples++;
  }

  estimate(rows: number): number {
    if (this.#samples === 0) return 0;
    return this.#meanMs * Math.max(1, rows / Math.max(1, this.#meanRows));
  }

  /** The most rows that fit in `ms`, by the same estimate (at least the mean size when it fits at all). */
  rowsWithin(ms: number): number {
    if (this.#samples === 0) return Number.POSITIVE_INFINITY;
    if (ms < this.#meanMs) return 0;
    return Math.max(1, Math.floor((ms / this.#meanMs) * Math.max(1, this.#meanRows)));
  }
}
