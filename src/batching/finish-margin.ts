import { LatencyWindow } from '../routing/latency-window.js';

/**
 * The quantile of recent batches' worst finish errors that admission keeps as its margin. Under overload a
 * batch holds ~10 queries, so this is about the 99.5th percentile of queries' errors: with the per-query 95th
 * percentile, 3.5% of admitted queries got the default answer at 3x load; with the per-query 99th, 1.1%.
 */
const QUANTILE = 0.95;
/**
 * How long a finish error counts toward the margin. A stall makes every query in flight late at once; counted
 * until 256 newer ones displaced it, it kept the margin past the deadline, so the replica admitted only the lone
 * probe of an idle queue, ~100 queries/s, and took seconds to learn otherwise (measured over HTTP at 3x load
 * after warm-up, and in the soak after a GC pause).
 */
const HORIZON_MS = 500;
/**
 * Batches measured (within the horizon) before their finish errors are the margin; until then, the caller's
 * fallback. At 20, a fresh replica's whole first burst (256 queries in batches growing from 1) was admitted
 * against the warm-ups' residuals, which one slow warm-up on a busy machine can make tens of milliseconds.
 */
const MIN_SAMPLES = 5;
/** The longest run of late batches that still counts as one episode (one stall and the backlog behind it). */
const EPISODE_MS = 100;
/** Samples kept at most (within the horizon). */
const WINDOW = 256;

/**
 * Admission's margin for one replica: the 95th percentile, over the batches of the last 500 ms, of how much
 * later than planned each batch's worst admitted query finished (never below 0). Pure: the caller passes the
 * time.
 *
 * A stall (a collection, the machine taking the core from the main thread or from the worker) makes every
 * batch in flight late at once, and the few batches queued behind it too. Counted once per batch, one stall of
 * 20-70 ms put 3-6 errors of 5-25 ms in a window of 70-100 batches (700 queries/s over HTTP, the 4 ms + 0.5 ms/row
 * model): the top 5% by itself, so the margin sat at 6-9 ms for the next 500 ms, and with an 18 ms deadline
 * most queries that arrived while a batch ran were refused, at 40-70% of capacity. A stall is one event, not a
 * trend: here a run of consecutive batches each later than the margin in force (an episode, at most 100 ms long)
 * counts as one sample, its worst, so the margin moves when late batches recur, not when one stall passes. A
 * slowdown that persists still moves it: its episodes end every 100 ms, five samples in 500 ms.
 *
 * @example
 * const margin = new FinishMargin();
 * margin.observe(worstErrorMs, now); // once per batch that had admitted queries
 * state.marginMs = margin.marginMs(now, 2 * latency.slackMs);
 */
export class FinishMargin {
  readonly #window = new LatencyWindow(WINDOW, HORIZON_MS);
  /** The episode of late batches under way: its worst error, when it began, and its last batch. */
  #episode: { worst: number; startedAt: number; lastAt: number } | undefined;

  /** Batches counted now (an episode under way counts as one), after {@link marginMs} or {@link expire}. */
  get count(): number {
    return this.#window.count + (this.#episode === undefined ? 0 : 1);
  }

  /** Counts one batch's worst finish error (actual minus promised, ms), observed at `now` (never before the last). */
  observe(errorMs: number, now: number): void {
    // Until the margin is measured (5 batches), every batch counts on its own.
    const inForce = this.marginMs(now, Number.POSITIVE_INFINITY);
    const episode = this.#episode;
    if (errorMs > inForce) {
      if (episode !== undefined && now - episode.startedAt <= EPISODE_MS) {
        episode.worst = Math.max(episode.worst, errorMs);
        episode.lastAt = now;
        return;
      }
      this.#close();
      this.#episode = { worst: errorMs, startedAt: now, lastAt: now };
      return;
    }
    this.#close();
    this.#window.observe(errorMs, now);
  }

  /**
   * The margin at `now`: the quantile of the batches of the last 500 ms, an episode under way counted as one of
   * them; `fallbackMs` while fewer than 5 are known.
   */
  marginMs(now: number, fallbackMs: number): number {
    this.expire(now);
    const window = this.#window;
    const episode = this.#episode;
    const n = this.count;
    if (n < MIN_SAMPLES) return fallbackMs;
    const rank = Math.min(n - 1, Math.floor(QUANTILE * n));
    if (episode === undefined) return Math.max(0, window.nth(rank));
    // The rank-th of the window and the episode's worst together.
    const below = window.nth(rank - 1);
    const at = window.nth(rank);
    const value = rank >= window.count || episode.worst < at ? Math.max(episode.worst, Number.isNaN(below) ? episode.worst : below) : at;
    return Math.max(0, value);
  }

  /** Drops what is older than the horizon; an episode over for that long leaves too. */
  expire(now: number): void {
    const episode = this.#episode;
    if (episode !== undefined && now - episode.lastAt > EPISODE_MS) this.#close();
    this.#window.expire(now);
  }

  /** The episode under way, if any, becomes one sample, dated at its last batch. */
  #close(): void {
    const episode = this.#episode;
    if (episode === undefined) return;
    this.#episode = undefined;
    this.#window.observe(episode.worst, episode.lastAt);
  }
}
