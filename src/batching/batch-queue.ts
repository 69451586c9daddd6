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
  /**
   * Triton's scheduling priority: 1 is the most urgent level, larger numbers less; 0 or absent is the default
   * level, after every named one. A more urgent query is batched before any less urgent one.
   */
  readonly priority?: number;
}

/** A query's priority level as a number to sort by: smaller runs first ({@link Deadlined.priority}). */
export function urgency(item: { readonly priority?: number }): number {
  const p = item.priority;
  return p !== undefined && p > 0 ? p : Number.POSITIVE_INFINITY;
}

/** Whether `a` runs no later than `b`: more urgent first, then earlier deadline first. */
function notAfter(a: Deadlined, b: Deadlined): boolean {
  const ua = urgency(a);
  const ub = urgency(b);
  return ua < ub || (ua === ub && a.deadline <= b.deadline);
}

export interface TakeOptions {
  /** The controller's current batch limit. */
  limit: number;
  /** Delayed batching: how long to hold a partial batch for more queries. */
  maxDelayMs: number;
  /** How long batches take here (the fit: admission holds the margin for their uncertainty). */
  latency: Pick<BatchLatencyModel, 'estimate' | 'rowsWithin'>;
}

export type TakeResult<T> =
  /** Run `batch` now; `expired` could not meet their deadlines and must be answered otherwise. */
  | { kind: 'batch'; batch: T[]; expired: T[] }
  /** Nothing to run yet: look again at `wakeAt` (delayed batching), after answering `expired`. */
  | { kind: 'wait'; wakeAt: number; expired: T[] }
  | { kind: 'empty'; expired: T[] };

/**
 * A replica's mailbox of queries, most urgent priority level first ({@link urgency}), then earliest deadline
 * first (FIFO among equal deadlines), and the batching
 * decision over it. Pure: the caller passes the time and runs what `take` returns.
 *
 * Deadline-aware (Clipper, section 4.3): a query is never run when the estimated batch time would carry it
 * past its deadline; it is handed back as `expired` (before it takes a slot in a batch) so the caller answers
 * it as a miss. The batch size is the controller's limit, cut further so the batch's estimate stays inside
 * its tightest deadline. Earliest deadline first matters when deadlines are not in arrival order (applications
 * with different SLOs share a model, a retried query re-enters late): FIFO would serve a relaxed query ahead of
 * a tight one and make the tight one miss. With one SLO, EDF is FIFO.
 */
export class BatchQueue<T extends Deadlined> {
  #items: T[] = [];
  #head = 0;
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
    const items = this.#items;
    const last = items.at(-1);
    if (this.#head === items.length || last === undefined || notAfter(last, item)) items.push(item);
    else {
      // Binary search for the first waiting position that runs after it; with one SLO and no priorities this never runs.
      let lo = this.#head;
      let hi = items.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (notAfter(items[mid] as T, item)) lo = mid + 1;
        else hi = mid;
      }
      items.splice(lo, 0, item);
    }
    this.#waiting.add(item);
  }

  /** The first item waiting (the next batch starts with it unless it expires), cancelled ones skipped. */
  peek(): T | undefined {
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i] as T;
      if (!this.#isCancelled(item)) return item;
    }
    return undefined;
  }

  /** The priority levels ({@link urgency}) of the items waiting, in the order of {@link deadlines}. */
  levels(): number[] {
    return this.levelsInto([]);
  }

  /** The deadlines of the items waiting, in the order batches take them (earliest first within a priority level). */
  deadlines(): number[] {
    return this.deadlinesInto([]);
  }

  /**
   * {@link deadlines}, written into `out` (its old contents replaced, its length set): admission asks for them
   * on every query, and a caller that keeps one array allocates nothing once it has grown to the queue's size.
   */
  deadlinesInto(out: number[]): number[] {
    let n = 0;
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i] as T;
      if (!this.#isCancelled(item)) out[n++] = item.deadline;
    }
    out.length = n;
    return out;
  }

  /** {@link levels}, written into `out` as {@link deadlinesInto} does. */
  levelsInto(out: number[]): number[] {
    let n = 0;
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i] as T;
      if (!this.#isCancelled(item)) out[n++] = urgency(item);
    }
    out.length = n;
    return out;
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
    // Drop doomed queries at the head before they take a slot. One doomed only by the estimate (its deadline
    // has not passed) still runs when it is the only one waiting: that costs no one anything, and its batch
    // refreshes an estimate that may be stale, so a pessimistic estimate cannot lock the replica out (admission
    // likewise always takes a query into an idle, empty replica). Under overload, running such a query as a
    // probe anyway (this queue once did, after 16 drops in a row) spends a whole batch's fixed cost on a query
    // that misses, and the batch behind it then misses too.
    while (this.#head < this.#items.length) {
      const head = this.#peek();
      if (this.#isCancelled(head)) this.#shift();
      else if (now > head.deadline) expired.push(this.#shift());
      else if (now + single > head.deadline && this.size > 1) expired.push(this.#shift());
      else break;
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
    // Fill the batch in deadline order: the first item's deadline is the batch's tightest, and the batch stops
    // growing once its estimate would carry that deadline past due. (The check takes the minimum anyway,
    // so a caller flagging items cancelled cannot break it.)
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
