import { LRUCache } from 'lru-cache';
import type { QueryContext, Selection, SelectionPolicy } from './selection-policy.js';

/**
 * The key of one input for one user. A query without a uid and a query with `uid: ""` are different users, so
 * the two key spaces differ in their first character; the digest is base64 (no `#`), so `#` ends the uid.
 */
function keyOf(digest: string, context: QueryContext | undefined): string {
  const uid = context?.uid;
  return uid === undefined ? `-${digest}` : `+${uid}#${digest}`;
}

/** A draw waiting for its feedback, and the policy that made it. */
interface Draw {
  readonly selection: Selection;
  readonly policy: SelectionPolicy;
}

/**
 * The draws a router made recently, by input (its digest) and user, each waiting for the feedback that
 * answers it, for a policy that learns only from what it selected (`learnsFrom: 'selected'`). Feedback
 * {@link take}s a draw, so a draw teaches the policy at most once: repeating the same feedback finds nothing the
 * second time (issue 14, bug 4: the record was read and kept, so every repeat applied the importance-weighted
 * update again). Queries that repeat an input before its feedback are separate draws, answered by feedback in
 * the order they were drawn.
 *
 * Each draw keeps its probability, read from the policy right after its `select` (before any feedback can change
 * the weights), so bandit Exp3 divides by the probability the draw was made with, not the one at feedback time.
 * A draw belongs to the policy that made it: once the application's policy is replaced, its old draws are
 * dropped rather than taught to the new one with another policy's probabilities.
 *
 * Bounded: at most `maxKeys` inputs (least recently recorded or taken dropped first) and `maxDrawsPerKey` draws
 * per input (oldest dropped first): an input queried over and over without feedback does not grow without bound.
 *
 * @example
 * const log = new SelectionLog();
 * const selected = policy.select(linked, { uid: 'alice' });
 * log.record(digest, { uid: 'alice' }, policy, selected, linked);
 * log.take(digest, { uid: 'alice' }, policy); // { models: selected, probability: 0.7 }
 * log.take(digest, { uid: 'alice' }, policy); // undefined
 */
export class SelectionLog {
  readonly #draws: LRUCache<string, Draw[]>;
  readonly #maxDrawsPerKey: number;

  constructor(maxKeys = 100_000, maxDrawsPerKey = 16) {
    this.#draws = new LRUCache<string, Draw[]>({ max: maxKeys });
    this.#maxDrawsPerKey = maxDrawsPerKey;
  }

  /** Inputs with at least one draw waiting. */
  get size(): number {
    return this.#draws.size;
  }

  /**
   * Records that `policy.select(linked, context)` just returned `selected` for this input, with the probability
   * the policy gives that draw (1 for a policy without `selectionProbability`: it draws deterministically).
   */
  record(digest: string, context: QueryContext | undefined, policy: SelectionPolicy, selected: readonly string[], linked: readonly string[]): void {
    const draw = { selection: { models: selected, probability: policy.selectionProbability?.(selected, linked, context) ?? 1 }, policy };
    const key = keyOf(digest, context);
    const draws = this.#draws.get(key);
    if (draws === undefined) {
      this.#draws.set(key, [draw]);
      return;
    }
    if (draws.length >= this.#maxDrawsPerKey) draws.shift();
    draws.push(draw);
  }

  /**
   * Removes and returns the oldest draw `policy` made for this input and user, or undefined if there is none.
   * Older draws by another policy are dropped on the way.
   */
  take(digest: string, context: QueryContext | undefined, policy: SelectionPolicy): Selection | undefined {
    const key = keyOf(digest, context);
    const draws = this.#draws.get(key);
    if (draws === undefined) return undefined;
    let draw = draws.shift();
    while (draw !== undefined && draw.policy !== policy) draw = draws.shift();
    if (draws.length === 0) this.#draws.delete(key);
    return draw?.selection;
  }

  clear(): void {
    this.#draws.clear();
  }
}
