import type { Clock, TimerHandle } from './clock.js';

/**
 * What a {@link DeadlineList} holds: something due at `dueAt`. The links are the list's own (intrusive, so
 * adding and removing allocate nothing); only the list writes them.
 */
export interface DeadlineEntry {
  dueAt: number;
  prevDue: DeadlineEntry | undefined;
  nextDue: DeadlineEntry | undefined;
  /** Whether the entry is in a list now. */
  listed: boolean;
}

/**
 * Many deadlines on one timer: entries in due order in a doubly linked list, and one clock timer armed for the
 * earliest. Replaces a timer per query: adding and removing an entry is O(1) when entries come in due order
 * (queries of one application share one SLO, so they do), and the timer is re-armed only when the earliest
 * entry changes and is due earlier than the timer, or when the timer fires. A removed entry is unlinked at
 * once, so nothing answered stays reachable from here.
 *
 * When the timer fires, and once the I/O already waiting has been handled (`Clock.afterIo`), every entry due
 * by then (by the clock, or by the due time the timer was armed for, whichever is later: a Node timer can fire
 * up to a millisecond before `performance.now()` says it is due, as a timer per query did) is removed and
 * handed to `onDue`, in due order, after the timer is re-armed for what remains. The list is empty of timers
 * when it is empty of entries.
 */
export class DeadlineList<T extends DeadlineEntry> {
  readonly #clock: Clock;
  readonly #onDue: (entry: T) => void;
  #head: T | undefined;
  #tail: T | undefined;
  #size = 0;
  #timer: TimerHandle | undefined;
  #armedFor = Number.POSITIVE_INFINITY;

  constructor(clock: Clock, onDue: (entry: T) => void) {
    this.#clock = clock;
    this.#onDue = onDue;
  }

  /** Entries waiting. */
  get size(): number {
    return this.#size;
  }

  /** Adds `entry`, due at `entry.dueAt` (an entry already listed is moved). */
  add(entry: T): void {
    // A NaN due time would sit at the head unfired and hold back every entry behind it.
    if (Number.isNaN(entry.dueAt)) throw new RangeError('a DeadlineList entry needs a due time; got NaN');
    if (entry.listed) this.remove(entry);
    // From the tail back: entries nearly always arrive in due order, so this loop rarely runs.
    let after = this.#tail;
    while (after !== undefined && after.dueAt > entry.dueAt) after = after.prevDue as T | undefined;
    entry.prevDue = after;
    entry.nextDue = after === undefined ? this.#head : after.nextDue;
    if (entry.nextDue === undefined) this.#tail = entry;
    else entry.nextDue.prevDue = entry;
    if (after === undefined) this.#head = entry;
    else after.nextDue = entry;
    entry.listed = true;
    this.#size++;
    if (entry.dueAt < this.#armedFor) this.#arm(entry.dueAt);
  }

  /** Removes `entry` (nothing if it is not listed). The timer stops when the list empties. */
  remove(entry: T): void {
    if (!entry.listed) return;
    const prev = entry.prevDue as T | undefined;
    const next = entry.nextDue as T | undefined;
    if (prev === undefined) this.#head = next;
    else prev.nextDue = next;
    if (next === undefined) this.#tail = prev;
    else next.prevDue = prev;
    entry.prevDue = undefined;
    entry.nextDue = undefined;
    entry.listed = false;
    if (--this.#size === 0) this.#disarm();
  }

  /** Removes every entry, unfired, and stops the timer. */
  clear(): void {
    while (this.#head !== undefined) this.remove(this.#head);
  }

  #arm(dueAt: number): void {
    this.#timer?.cancel();
    this.#armedFor = dueAt;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#armedFor = Number.POSITIVE_INFINITY;
      this.#afterIo(dueAt);
    }, dueAt - this.#clock.now());
  }

  /**
   * The timer fired: the entries due are handed over once the I/O already waiting has been handled. After a
   * stall of the main thread (a collection, the machine taking the core) timers run before the messages that
   * arrived meanwhile, so a model's answer that came back in time but sat in the worker's port lost to its own
   * query's deadline, and the query was answered by default. Now it is answered by the model (late, as the
   * default would have been: the stall made it so).
   */
  #afterIo(armedFor: number): void {
    const clock = this.#clock;
    if (clock.afterIo === undefined) this.#fire(armedFor);
    else clock.afterIo(() => this.#fire(armedFor));
  }

  #disarm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  #fire(armedFor: number): void {
    const by = Math.max(this.#clock.now(), armedFor);
    let due: T[] | undefined;
    while (this.#head !== undefined && this.#head.dueAt <= by) {
      const entry = this.#head;
      this.remove(entry);
      (due ??= []).push(entry);
    }
    // Re-armed before the callbacks run: they may add or remove entries themselves.
    if (this.#head !== undefined && this.#head.dueAt < this.#armedFor) this.#arm(this.#head.dueAt);
    if (due === undefined) return;
    for (const entry of due) this.#onDue(entry);
  }
}
