import type { BatchLatencyModel } from './batch-latency-model.js';

/** What the batch queue needs of a queued query. */
export interface Deadlined {
  /** When the query entered the queue (clock ms). */
  readonly enqueuedAt: number;
  /** When its answer is due (clock ms). */
  readonly deadline: number;
  /**
   * Set when the query no longer needs running (a hedged duplicate that lost): it is dropped unrun. Tell the
   * queue through {@link BatchQueue.cancel} too, so it stops counting the query at once.
   */
  readonly cancelled?: boolean;
}

export interface TakeOptions {
  /** The controller's current batch limit. */
  limit: number;
  /** Delayed batching: how long to hold a partial batch for more queries. */
  maxDelayMs: number;
  /** How long batches take here. */
  latency: Pick<BatchLatencyModel, 'estimate' | 'rowsWithin'>;
}

export type TakeResult<T> =
  /** Run `batch` now; `expired` could not meet their deadlines and must be answered otherwise. */
  | { kind: 'batch'; batch: T[]; expired: T[] }
  /** Nothing to run yet: look again at `wakeAt` (delayed batching), after answering `expired`. */
  | { kind: 'wait'; wakeAt: number; expired: T[] }
  | { kind: 'empty'; expired: T[] };

/** Queries dropped in a row on the latency estimate alone before one is run as a probe. */
export const PROBE_AFTER = 16;

/**
 * A replica's mailbox of queries, FIFO, and the batching decision over it. Pure: the caller passes the time
 * and runs what `take` returns.
 *
 * Deadline-aware (Clipper, section 4.3): a query is never run when the estimated batch time would carry it
 * past its deadline; it is handed back as `expired` so the caller answers it with the default output.
 * The batch size is the controller's limit, cut further so the oldest query's queue time plus the batch's
 * estimated time stays inside its deadline.
 */
export class BatchQueue<T extends Deadlined> {
  #items: T[] = [];
  #head = 0;
  #doomedByEstimate = 0;
  /**
   * The items still waiting. A cancelled item leaves this set at once but stays in `#items` until a take
   * reaches it (removing from the middle of the array would cost O(n) per cancel).
   */
  readonly #waiting = new Set<T>();

  /** Items waiting to run, cancelled ones excluded (admission and maxQueueSize count these). */
  get size(): number {
    return this.#waiting.size;
  }

  push(item: T): void {
    this.#items.push(item);
    this.#waiting.add(item);
  }

  /** Drops a waiting item unrun; false when it is not waiting here (already taken, or never queued). */
  cancel(item: T): boolean {
    return this.#waiting.delete(item);
  }

  /** Removes and returns everything still waiting (for a replica that died or stops). */
  drainAll(): T[] {
    const all = this.#items.slice(this.#head).filter((item) => this.#waiting.has(item));
    this.#items = [];
    this.#head = 0;
    this.#waiting.clear();
    return all;
  }

  take(now: number, options: TakeOptions): TakeResult<T> {
    const expired: T[] = [];
    const single = options.latency.estimate(1);
    // Drop doomed queries at the head; one that is doomed only by the estimate (its deadline has not passed)
    // runs anyway after PROBE_AFTER such drops in a row, so a stale, pessimistic estimate cannot lock the
    // replica out for good: the probe's batch refreshes it.
    while (this.#head < this.#items.length) {
      const head = this.#peek();
      if (this.#isCancelled(head)) this.#shift();
      else if (now > head.deadline) expired.push(this.#shift());
      // With nothing else waiting, running the query costs no one anything and refreshes the estimate.
      else if (now + single > head.deadline && this.size > 1 && this.#doomedByEstimate < PROBE_AFTER) {
        this.#doomedByEstimate++;
        expired.push(this.#shift());
      } else break;
    }
    if (this.#head === this.#items.length) {
      this.#compact();
      return { kind: 'empty', expired };
    }
    const oldest = this.#peek();
    if (this.size < options.limit && options.maxDelayMs > 0) {
      const fillBy = Math.min(oldest.enqueuedAt + options.maxDelayMs, oldest.deadline - single);
      if (now < fillBy) return { kind: 'wait', wakeAt: fillBy, expired };
    }
    // Fill the batch in FIFO order. Deadlines need not be FIFO (applications with different SLOs share a
    // model, retried queries re-enter at the back), so each candidate is checked, and the batch stops
    // growing once its estimated time would carry its tightest deadline past due.
    const batch: T[] = [];
    let tightest = Number.POSITIVE_INFINITY;
    while (this.#head < this.#items.length && batch.length < options.limit) {
      const item = this.#peek();
      if (this.#isCancelled(item)) {
        this.#shift();
        continue;
      }
      if (batch.length > 0 && now + single > item.deadline) {
        expired.push(this.#shift());
        continue;
      }
      const deadline = Math.min(tightest, item.deadline);
      if (batch.length > 0 && options.latency.rowsWithin(deadline - now) < batch.length + 1) break;
      tightest = deadline;
      batch.push(this.#shift());
    }
    this.#doomedByEstimate = 0;
    this.#compact();
    return { kind: 'batch', batch, expired };
  }

  #peek(): T {
    return this.#items[this.#head] as T;
  }

  #shift(): T {
    const item = this.#items[this.#head++] as T;
    this.#waiting.delete(item);
    return item;
  }

  /** Cancelled through {@link cancel}, or flagged by its owner without telling the queue. */
  #isCancelled(item: T): boolean {
    return item.cancelled === true || !this.#waiting.has(item);
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    }
  }
}
