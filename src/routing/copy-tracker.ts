import { DeadlineExceededError, OverloadedError } from '../errors.js';

/** What a copy tracker needs of the hedge budget: one token per hedge, or a refusal (counted as denied). */
export interface HedgeSpender {
  trySpend(): boolean;
}

/**
 * What happened to one query's copies. Copies are numbered in the order they were sent: 0 is the first.
 * Observations of the replicas (which one would take a hedge, which one is idle) come in with the event, so
 * the tracker itself never looks at a replica.
 */
export type CopyEvent<R> =
  /** Copy `copy` answered. */
  | { type: 'answered'; copy: number; now: number }
  /**
   * Copy `copy` was rejected; `idleSibling` is another ready replica with nothing queued, if there is one;
   * `roomySibling` another ready replica whose admission would take the query now (asked only after a refusal).
   */
  | { type: 'failed'; copy: number; error: unknown; now: number; idleSibling: R | undefined; roomySibling?: R | undefined }
  /** The hedge delay passed; `candidate` is the replica a hedge would go to (not the first copy's). */
  | { type: 'hedgeDue'; now: number; candidate: R | undefined };

/**
 * What to do about it. Every decision except `none` ends the wait for a hedge: the caller cancels its timer.
 */
export type CopyDecision<R> =
  | { kind: 'none' }
  /** Send a new copy (number `copy`) of the query to `to`. */
  | { kind: 'submit'; to: R; copy: number; why: 'hedge' | 'retry' }
  /**
   * Answer the query with copy `copy`'s answer and cancel the copies still out (`cancel`). `hedgeWon` when
   * the winner is a hedge (not the first copy, nor a retry); `elapsedMs` is the query's response time.
   */
  | { kind: 'resolve'; copy: number; cancel: readonly number[]; hedgeWon: boolean; elapsedMs: number }
  /** No copy is left: fail the query with this error. */
  | { kind: 'reject'; error: unknown };

export interface CopyTrackerOptions {
  /** When the first copy was sent. */
  now: number;
  deadline: number;
  /** Whether a hedge timer runs for this query (hedging is on and calibrated, and there is another replica). */
  hedging: boolean;
  budget: HedgeSpender;
}

type CopyState = 'out' | 'answered' | 'failed';

const NONE = Object.freeze({ kind: 'none' as const });

/**
 * The copies of one query on a model version: the first, a hedge sent when the first is slow (within the
 * hedge budget), and a retry on an idle sibling when the only copy was dropped on its replica's latency
 * estimate while time remains. The first answer wins and the copies still out are cancelled; the query
 * fails only when no copy is left, with the first copy's error (or, after a retry, the retry's).
 *
 * Events in, decisions out, no clock or timers inside (as {@link BatchQueue.take}); the replica set applies
 * the decisions. A retry after a worker death is not here: the dead replica's host re-sends the same copy
 * (`ReplicaHost.orphaned`), so the tracker sees only that copy's final outcome.
 *
 * @example
 * const tracker = new CopyTracker<string>({ now: 0, deadline: 100, hedging: true, budget });
 * tracker.on({ type: 'hedgeDue', now: 8, candidate: 'b' }); // { kind: 'submit', to: 'b', copy: 1, why: 'hedge' }
 * tracker.on({ type: 'answered', copy: 1, now: 9 });         // { kind: 'resolve', copy: 1, cancel: [0], hedgeWon: true, ... }
 */
export class CopyTracker<R> {
  readonly #started: number;
  readonly #deadline: number;
  readonly #budget: HedgeSpender;
  readonly #copies: CopyState[] = ['out'];
  #settled = false;
  #hedgeDue: boolean;
  #retried = false;
  #error: unknown;
  #hasError = false;

  constructor(options: CopyTrackerOptions) {
    this.#started = options.now;
    this.#deadline = options.deadline;
    this.#hedgeDue = options.hedging;
    this.#budget = options.budget;
  }

  /** Copies sent so far (the first included). */
  get copies(): number {
    return this.#copies.length;
  }

  /** True once the query was answered or failed: later events change nothing. */
  get settled(): boolean {
    return this.#settled;
  }

  on(event: CopyEvent<R>): CopyDecision<R> {
    if (this.#settled) return NONE;
    switch (event.type) {
      case 'answered':
        return this.#answered(event.copy, event.now);
      case 'failed':
        return this.#failed(event.copy, event.error, event.now, event.error instanceof OverloadedError ? event.roomySibling : event.idleSibling);
      case 'hedgeDue':
        return this.#hedge(event.now, event.candidate);
    }
  }

  #answered(copy: number, now: number): CopyDecision<R> {
    if (this.#copies[copy] !== 'out') return NONE;
    this.#copies[copy] = 'answered';
    this.#settled = true;
    this.#hedgeDue = false;
    const cancel = this.#copies.flatMap((state, i) => (state === 'out' ? [i] : []));
    return { kind: 'resolve', copy, cancel, hedgeWon: copy > 0 && !this.#retried, elapsedMs: now - this.#started };
  }

  #failed(copy: number, error: unknown, now: number, sibling: R | undefined): CopyDecision<R> {
    if (this.#copies[copy] !== 'out') return NONE;
    this.#copies[copy] = 'failed';
    // The first error explains the query best (a hedge's failure is secondary), except after a retry, whose
    // error is the latest word on a query that had time left.
    if (!this.#hasError || this.#retried) {
      this.#error = error;
      this.#hasError = true;
    }
    if (this.#copies.includes('out')) return NONE;
    this.#hedgeDue = false;
    // A replica that dropped the only copy on its own latency estimate while time remains: an idle sibling
    // may well make it, so the query goes there, once. Likewise a copy its replica's admission refused: a
    // sibling whose admission has room takes it (the set found it without sending: no hop when none has room).
    const retryable = error instanceof DeadlineExceededError || error instanceof OverloadedError;
    if (this.#copies.length === 1 && sibling !== undefined && retryable && now < this.#deadline) {
      this.#retried = true;
      this.#copies.push('out');
      return { kind: 'submit', to: sibling, copy: 1, why: 'retry' };
    }
    this.#settled = true;
    return { kind: 'reject', error: this.#error };
  }

  #hedge(now: number, candidate: R | undefined): CopyDecision<R> {
    if (!this.#hedgeDue) return NONE;
    this.#hedgeDue = false;
    // The budget is asked (and a refusal counted) only when there is somewhere to send the hedge.
    if (now >= this.#deadline || candidate === undefined || !this.#budget.trySpend()) return NONE;
    this.#copies.push('out');
    return { kind: 'submit', to: candidate, copy: this.#copies.length - 1, why: 'hedge' };
  }
}
