import { LRUCache } from 'lru-cache';
import type { QueryContext, Selection, SelectionPolicy } from './selection-policy.js';

/**
 * The selection a draw made, with its probability, for a policy that learns only from what it selected
 * (`learnsFrom: 'selected'`). The probability is read from the policy right after its `select`, before any
 * feedback can change its weights, so it is the one the draw was made with (bandit Exp3 divides the loss by it).
 * A policy that does not report one drew deterministically: probability 1.
 */
export function drawOf(policy: SelectionPolicy, selected: readonly string[], linked: readonly string[], context?: QueryContext): Selection {
  return { models: selected, probability: policy.selectionProbability?.(selected, linked, context) ?? 1 };
}

/**
 * The key of one input for one user. A query without a uid and a query with `uid: ""` are different users, so
 * the two key spaces differ in their first character; the digest is base64 (no `#`), so `#` ends the uid.
 */
function keyOf(digest: string, context: QueryContext | undefined): string {
  const uid = context?.uid;
  return uid === undefined ? `-${digest}` : `+${uid}#${digest}`;
}

/**
 * The draws a router made recently, by input (its digest) and user, each waiting for the feedback that
 * answers it. Feedback {@link take}s a draw, so a draw teaches the policy at most once: repeating the same
 * feedback finds nothing the second time (issue 14, bug 4: the record was read and kept, so every repeat applied
 * the importance-weighted update again). Queries that repeat an input before its feedback are separate draws,
 * answered by feedback in the order they were drawn.
 *
 * Bounded: at most `maxKeys` inputs (least recently recorded or taken dropped first) and `maxDrawsPerKey` draws
 * per input (oldest dropped first): an input queried over and over without feedback does not grow without bound.
 *
 * @example
 * const log = new SelectionLog();
 * log.record(digest, { uid: 'alice' }, { models: ['model-a'], probability: 0.7 });
 * log.take(digest, { uid: 'alice' }); // { models: ['model-a'], probability: 0.7 }
 * log.take(digest, { uid: 'alice' }); // undefined
 */
export class SelectionLog {
  readonly #draws: LRUCache<string, Selection[]>;
  readonly #maxDrawsPerKey: number;

  constructor(maxKeys = 100_000, maxDrawsPerKey = 16) {
    this.#draws = new LRUCache<string, Selection[]>({ max: maxKeys });
    this.#maxDrawsPerKey = maxDrawsPerKey;
  }

  /** Inputs with at least one draw waiting. */
  get size(): number {
    return this.#draws.size;
  }

  record(digest: string, context: QueryContext | undefined, selection: Selection): void {
    const key = keyOf(digest, context);
    const draws = this.#draws.get(key);
    if (draws === undefined) {
      this.#draws.set(key, [selection]);
      return;
    }
    if (draws.length >= this.#maxDrawsPerKey) draws.shift();
    draws.push(selection);
  }

  /** Removes and returns the oldest draw waiting for this input and user, or undefined if there is none. */
  take(digest: string, context: QueryContext | undefined): Selection | undefined {
    const key = keyOf(digest, context);
    const draws = this.#draws.get(key);
    if (draws === undefined) return undefined;
    const first = draws.shift();
    if (draws.length === 0) this.#draws.delete(key);
    return first;
  }

  clear(): void {
    this.#draws.clear();
  }
}
