import { LRUCache } from 'lru-cache';
import { InvalidOptionError } from '../errors.js';
import { checkKnownKeys, checkName, checkObject, fail } from '../config/validate.js';
import { checkQueryContext } from '../config/input.js';
import type { Combined, ModelOutput, PolicySnapshot, QueryContext, Selection, SelectionPolicy } from './selection-policy.js';

/** Per-user policy options; every one optional. */
export interface KeyedPolicyOptions {
  /** Most users holding their own policy; the least recently used is dropped past it. Default 10,000. */
  maxKeys?: number;
  /**
   * `true` (default): a user's policy starts as a copy of the shared policy's learned state at the moment the
   * user first gives feedback, so a new user begins from what everyone taught it. `false`: it starts fresh
   * from the factory.
   */
  inheritShared?: boolean;
  /** Reported as the policy's name. Default `keyed-<the shared policy's name>`. */
  name?: string;
}

export interface ResolvedKeyedPolicyOptions {
  readonly maxKeys: number;
  readonly inheritShared: boolean;
  readonly name: string;
}

export const keyedPolicyDefaults = Object.freeze({ maxKeys: 10_000, inheritShared: true });

const KEYED_OPTIONS = ['maxKeys', 'inheritShared', 'name'];

/** The JSON a {@link KeyedPolicy} snapshots to: the shared policy's and every user's, least recently used first. */
export interface KeyedSnapshot extends PolicySnapshot {
  readonly kind: 'keyed';
  readonly name: string;
  readonly maxKeys: number;
  readonly inheritShared: boolean;
  /** The shared policy's snapshot, or null if its kind has none. */
  readonly shared: PolicySnapshot | null;
  /** [uid, snapshot] pairs, least recently used first (pairs, not an object: a uid may be any string, `__proto__` too). */
  readonly users: [string, PolicySnapshot | null][];
}

function checkSnapshotOrNull(what: string, value: unknown): PolicySnapshot | null {
  if (value === null) return null;
  const s = checkObject(what, value);
  if (typeof s.kind !== 'string') fail(`${what}.kind`, 'a string', s.kind);
  return s as PolicySnapshot;
}

/**
 * Personalised selection (Clipper, section 5: the selection state is kept per user): one policy per
 * `context.uid`, made by `factory`, plus a shared one for queries and feedback without a uid. Feedback with a
 * uid trains only that user's policy.
 *
 * A user gets a policy of their own on their first feedback; until then their queries use the shared policy
 * (or, with `inheritShared: false`, one fresh policy kept for all such users), which is what their own policy
 * would start as anyway. So users who only query never push out users who taught the system something. At
 * most `maxKeys` users keep a policy; past that the least recently used (by query or feedback) is dropped and
 * starts over if it comes back.
 *
 * @example
 * const policy = new KeyedPolicy(() => new Exp3Policy(), { maxKeys: 1000 });
 * policy.feedback(new Map([['model-a', 1], ['model-b', 0]]), { uid: 'alice' });
 * policy.select(['model-a', 'model-b'], { uid: 'alice' }); // from alice's policy
 * policy.select(['model-a', 'model-b']); // from the shared policy
 */
export class KeyedPolicy implements SelectionPolicy {
  readonly name: string;
  readonly options: Readonly<ResolvedKeyedPolicyOptions>;
  readonly #factory: () => SelectionPolicy;
  /** As the policies it keeps. */
  readonly learnsFrom: 'all' | 'selected';
  #shared: SelectionPolicy;
  #fresh: SelectionPolicy | undefined;
  #users: LRUCache<string, SelectionPolicy>;

  constructor(factory: () => SelectionPolicy, options?: KeyedPolicyOptions) {
    if (typeof factory !== 'function') fail('keyed.factory', 'a function returning a SelectionPolicy', factory);
    const given = checkObject('keyed options', options ?? {}) as KeyedPolicyOptions;
    checkKnownKeys('keyed', given as Record<string, unknown>, KEYED_OPTIONS);
    const maxKeys = given.maxKeys ?? keyedPolicyDefaults.maxKeys;
    if (!Number.isInteger(maxKeys) || maxKeys < 1 || maxKeys > 10_000_000) fail('keyed.maxKeys', 'an integer in [1, 10000000]', maxKeys);
    const inheritShared = given.inheritShared ?? keyedPolicyDefaults.inheritShared;
    if (typeof inheritShared !== 'boolean') fail('keyed.inheritShared', 'a boolean', inheritShared);
    this.#factory = factory;
    this.#shared = this.#make();
    this.options = Object.freeze({ maxKeys, inheritShared, name: checkName('keyed.name', given.name ?? `keyed-${this.#shared.name}`) });
    this.learnsFrom = this.#shared.learnsFrom ?? 'all';
    this.name = this.options.name;
    this.#users = new LRUCache<string, SelectionPolicy>({ max: maxKeys });
  }

  #make(): SelectionPolicy {
    const policy = this.#factory();
    if (typeof policy !== 'object' || policy === null || typeof policy.select !== 'function' || typeof policy.combine !== 'function') {
      fail('keyed.factory()', 'a SelectionPolicy (an object with select and combine)', policy);
    }
    return policy;
  }

  /** The uids holding a policy, most recently used first. */
  keys(): string[] {
    return [...this.#users.keys()];
  }

  /** The shared policy, or a user's (undefined if they have none), for inspection. Does not count as a use. */
  policy(uid?: string): SelectionPolicy | undefined {
    return uid === undefined ? this.#shared : this.#users.peek(uid);
  }

  /** A uid that is not a non-empty string is the caller's error (InvalidInputError): the facade's own check. */
  #uid(context: QueryContext | undefined): string | undefined {
    return checkQueryContext(context).uid;
  }

  /** The policy that answers for `context` without creating one (see the class comment). */
  #answering(context: QueryContext | undefined): SelectionPolicy {
    const uid = this.#uid(context);
    if (uid === undefined) return this.#shared;
    const own = this.#users.get(uid);
    if (own !== undefined) return own;
    if (this.options.inheritShared) return this.#shared;
    return (this.#fresh ??= this.#make());
  }

  select(linked: readonly string[], context?: QueryContext): readonly string[] {
    return this.#answering(context).select(linked, context);
  }

  combine(outputs: readonly ModelOutput[], context?: QueryContext): Combined {
    return this.#answering(context).combine(outputs, context);
  }

  /** As the policy that answers for `context` (1 for one that draws deterministically). */
  selectionProbability(selected: readonly string[], linked: readonly string[], context?: QueryContext): number {
    return this.#answering(context).selectionProbability?.(selected, linked, context) ?? 1;
  }

  /** Trains the user's policy (made now if they have none), or the shared one when there is no uid. */
  feedback(losses: ReadonlyMap<string, number>, context?: QueryContext, selection?: Selection): void {
    const uid = this.#uid(context);
    if (uid === undefined) {
      this.#shared.feedback?.(losses, context, selection);
      return;
    }
    let own = this.#users.get(uid);
    if (own === undefined) {
      own = this.#make();
      if (this.options.inheritShared && this.#shared.snapshot !== undefined && own.restore !== undefined) own.restore(this.#shared.snapshot());
      this.#users.set(uid, own);
    }
    own.feedback?.(losses, context, selection);
  }

  snapshot(): KeyedSnapshot {
    const users: [string, PolicySnapshot | null][] = [];
    for (const uid of this.#users.rkeys()) {
      const policy = this.#users.peek(uid) as SelectionPolicy;
      users.push([uid, policy.snapshot?.() ?? null]);
    }
    return {
      kind: 'keyed',
      name: this.name,
      maxKeys: this.options.maxKeys,
      inheritShared: this.options.inheritShared,
      shared: this.#shared.snapshot?.() ?? null,
      users,
    };
  }

  /**
   * Replaces the shared policy and every user's with the snapshot's (each made by the factory, then restored).
   * All or nothing: if any part is malformed, nothing changes. Past `maxKeys` the least recently used users are
   * dropped.
   */
  restore(snapshot: PolicySnapshot): void {
    const s = checkObject('keyed snapshot', snapshot);
    if (s.kind !== 'keyed') fail('keyed snapshot.kind', '"keyed"', s.kind);
    if (!Array.isArray(s.users)) fail('keyed snapshot.users', 'an array of [uid, snapshot] pairs', s.users);
    const shared = this.#restored('keyed snapshot.shared', checkSnapshotOrNull('keyed snapshot.shared', s.shared));
    const users = new LRUCache<string, SelectionPolicy>({ max: this.options.maxKeys });
    (s.users as unknown[]).forEach((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') {
        fail(`keyed snapshot.users[${i}]`, 'a [uid, snapshot] pair with a string uid', pair);
      }
      const [uid, inner] = pair as [string, unknown];
      const what = `keyed snapshot.users[${i}] (uid ${JSON.stringify(uid)})`;
      users.set(uid, this.#restored(what, checkSnapshotOrNull(what, inner)));
    });
    this.#shared = shared;
    this.#users = users;
    this.#fresh = undefined;
  }

  #restored(what: string, snapshot: PolicySnapshot | null): SelectionPolicy {
    const policy = this.#make();
    if (snapshot === null || policy.restore === undefined) return policy;
    try {
      policy.restore(snapshot);
    } catch (error) {
      if (error instanceof InvalidOptionError) throw new InvalidOptionError(`${what}: ${error.message}`, { cause: error });
      throw error;
    }
    return policy;
  }
}
