import { LatencyWindow } from '../routing/latency-window.js';
/** Residuals kept for the uncertainty quantile: about the last second of batches under load. */
const RESIDUAL_WINDOW = 64;
/** The quantile of recent residuals that admission and batch formation add to each batch's estimate. */
const RESIDUAL_QUANTILE = 0.95;
/**
 * How far above its estimate a batch's time counts (see {@link BatchLatencyModel.observe}): STALL_FACTOR times the
 * STALL_QUANTILE of recent residuals, and at least STALL_FLOOR_MS.
 */
const STALL_QUANTILE = 0.9;
const STALL_FACTOR = 2;
const STALL_FLOOR_MS = 1;

/**
 * Predicts how long a batch of k rows will take on one replica, from the batches it has run.
 *
 * A batch costs a fixed part (the thread hop, the session call) plus a part per row, so the model fits
 * `ms = a + b * rows` by exponentially weighted least squares over the batches seen (recent ones count more).
 * Until the history holds batches of different sizes there is no slope to fit; then it predicts the mean batch
 * time for batches up to the mean size and proportionally more beyond it. Before the first batch it predicts
 * 0, so nothing is refused for want of data. Outliers are clipped (see {@link observe}).
 *
 * The fit is a mean; a deadline needs a bound. Each batch's residual (observed minus what the model predicted
 * for it just before) goes into a window of the last 64, and {@link slackMs} is their 95th percentile (never
 * below 0); {@link estimateHigh} and {@link rowsWithinHigh} add it. The replica uses it for one batch (the size
 * that fits AIMD's budget) and, until it has measured its whole-path finish errors, as admission's margin. Pure.
 */
export class BatchLatencyModel {
  readonly #alpha: number;
  readonly #residuals = new LatencyWindow(RESIDUAL_WINDOW);
  #slackMs = 0;
  #samples = 0;
  /** Samples that came from warm-ups ({@link seed}). */
  #seeded = 0;
  #seeding = false;
  #meanRows = 0;
  #meanMs = 0;
  #meanRowsSq = 0;
  #meanRowsMs = 0;
  #line: { fixedMs: number; perRowMs: number } | undefined;
  /** The last slope fitted on sizes that varied enough, kept while they do not. */
  #slope: number | undefined;

  constructor(alpha = 0.2) {
    this.#alpha = alpha;
  }

  get samples(): number {
    return this.#samples;
  }

  /**
   * Seeds the model from warm-up batches (rows, ms each) before any query runs, so a fresh replica neither
   * refuses (no estimate: everything is admitted, then the first slow batch makes every estimate pessimistic)
   * nor overcommits. The first run of each size is discounted (dropped): it pays one-off costs (JIT, the
   * session's first allocation) that no later batch pays. Runs that measured nothing (0 ms) teach nothing and
   * are skipped. The first real batch then resets the level (see {@link observe}); the slope stays.
   */
  seed(runs: readonly (readonly [rows: number, ms: number])[]): void {
    const seen = new Set<number>();
    for (const [rows, ms] of runs) {
      if (!seen.has(rows)) {
        seen.add(rows);
        continue;
      }
      if (ms > 0) {
        this.#seeding = true;
        this.observe(rows, ms);
        this.#seeding = false;
        this.#seeded++;
      }
    }
  }

  observe(rows: number, observedMs: number): void {
    // The cut is read from the residuals before this one: a stall must not loosen its own cut.
    const cutMs = this.#stallCutMs();
    if (this.#samples >= 2) this.#residual(observedMs - this.estimate(rows));
    // One stalled batch (the machine paused the worker, or the main thread heard back late) must not make every
    // estimate pessimistic for the next dozen batches: once there is a history, a sample counts for at most the
    // estimate plus twice the 90th percentile of recent residuals (at least 1 ms). Cut at 4x the estimate, as
    // before, one 20-40 ms stall on a 4.5 ms model raised the estimate to ~9 ms for twenty batches, and every
    // query that arrived while one ran was refused at 700 queries/s, 60% of capacity (issue 13). A lasting
    // slowdown still shows: its residuals (kept whole) fill the top tenth of the window of 64 within seven
    // batches, and the cut follows them (the finish margin covers the batches in between).
    // Warm-ups do not count toward that history: they run zeros, and a model whose time depends on its input
    // (or a first real batch that meets a busy main thread) must be able to correct them at once.
    const ms = this.#samples - this.#seeded >= 5 ? Math.min(observedMs, this.estimate(rows) + cutMs) : observedMs;
    // The first batch sets the level outright, and so does the first real batch after warm-ups: they ran zeros,
    // and a model whose time depends on its input (a busy-wait of input[0] ms, a sequence length) is faster on
    // zeros; the warm-ups' slope stays until sizes vary enough to refit it.
    const firstReal = this.#seeded > 0 && this.#samples === this.#seeded && !this.#seeding;
    const w = this.#samples === 0 || firstReal ? 1 : this.#alpha;
    this.#meanRows += w * (rows - this.#meanRows);
    this.#meanMs += w * (ms - this.#meanMs);
    this.#meanRowsSq += w * (rows * rows - this.#meanRowsSq);
    this.#meanRowsMs += w * (rows * ms - this.#meanRowsMs);
    this.#samples++;
    // Fitted once per batch here, not per estimate: admission asks for dozens of estimates per query.
    this.#line = this.#fit();
  }

  /** The fitted line, or undefined while the batch sizes seen hardly vary. */
  get line(): { fixedMs: number; perRowMs: number } | undefined {
    return this.#line;
  }

  #fit(): { fixedMs: number; perRowMs: number } | undefined {
    const variance = this.#meanRowsSq - this.#meanRows * this.#meanRows;
    // Sizes within about a row of each other give no usable slope: keep the last slope that was fitted (from
    // the warm-ups, or from a busier spell) and take the level from the recent batches. Dropping to the mean
    // time per row instead made a model with a large fixed cost look several times slower than it is at sizes
    // above the recent ones (4.5 ms batches of 1-2 rows extrapolated to 29 ms for 7), so admission refused at
    // light load.
    if (this.#samples < 2 || variance < 0.25) {
      if (this.#slope === undefined) return undefined;
      return this.#anchored(this.#slope);
    }
    const slope = Math.max(0, (this.#meanRowsMs - this.#meanRows * this.#meanMs) / variance);
    this.#slope = slope;
    return this.#anchored(slope);
  }

  /** The line of slope `perRowMs` through the recent means (through the origin when that would cost less than nothing). */
  #anchored(slope: number): { fixedMs: number; perRowMs: number } {
    let perRowMs = slope;
    let fixedMs = this.#meanMs - perRowMs * this.#meanRows;
    if (fixedMs < 0) {
      // A negative fixed cost is noise: a line through the origin and the mean is the honest fit.
      fixedMs = 0;
      perRowMs = this.#meanMs / Math.max(1, this.#meanRows);
    }
    return { fixedMs, perRowMs };
  }

  /** How far above the estimate a sample counts: twice the 90th percentile of recent residuals, at least 1 ms. */
  #stallCutMs(): number {
    const residuals = this.#residuals;
    const n = residuals.count;
    const spread = n === 0 ? 0 : residuals.quantile(STALL_QUANTILE);
    return Math.max(STALL_FLOOR_MS, STALL_FACTOR * spread);
  }

  /** The 95th percentile of recent residuals (observed minus predicted), at least 0: the estimate's uncertainty. */
  get slackMs(): number {
    return this.#slackMs;
  }

  #residual(ms: number): void {
    // Kept sorted as it goes (LatencyWindow), not copied and sorted per batch: at light load a batch is a
    // query, and the sort was the replica's costliest step per query.
    const residuals = this.#residuals;
    residuals.observe(ms);
    const n = residuals.count;
    this.#slackMs = Math.max(0, residuals.nth(Math.min(n - 1, Math.ceil(RESIDUAL_QUANTILE * n) - 1)));
  }

  /** A high estimate of a batch of `rows`: the fitted time plus {@link slackMs} (0 before any batch). */
  estimateHigh(rows: number): number {
    return this.#samples === 0 ? 0 : this.estimate(rows) + this.#slackMs;
  }

  /** The most rows whose high estimate fits in `ms` (see {@link rowsWithin}). */
  rowsWithinHigh(ms: number): number {
    return this.rowsWithin(ms - this.#slackMs);
  }

  estimate(rows: number): number {
    if (this.#samples === 0) return 0;
    const line = this.#line;
    if (line === undefined) return this.#meanMs * Math.max(1, rows / Math.max(1, this.#meanRows));
    return line.fixedMs + line.perRowMs * Math.max(1, rows);
  }

  /** The most rows whose estimate fits in `ms` (0 when not even one does; unbounded when rows cost nothing). */
  rowsWithin(ms: number): number {
    if (this.#samples === 0) return Number.POSITIVE_INFINITY;
    const line = this.#line;
    if (line === undefined) {
      if (ms < this.#meanMs) return 0;
      return Math.max(1, Math.floor((ms / this.#meanMs) * Math.max(1, this.#meanRows)));
    }
    if (ms < line.fixedMs + line.perRowMs) return 0;
    if (line.perRowMs === 0) return Number.POSITIVE_INFINITY;
    return Math.max(1, Math.floor((ms - line.fixedMs) / line.perRowMs + 1e-9));
  }
}
