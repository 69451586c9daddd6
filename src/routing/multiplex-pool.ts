/** What the pool needs of a model version it shares workers with. */
export interface Multiplexed {
  readonly key: string;
  /** Stops the version's replicas after they drain. */
  suspend(): Promise<void>;
}

type State = 'idle' | 'loading' | 'active';

/**
 * Model multiplexing (Ray Serve's, at worker granularity): many model versions share a bounded number of
 * loaded slots. A version that needs to load takes a slot; when none is free, the least recently used loaded
 * version is drained and stopped to make room, and loads again on its next query (a cold start).
 *
 * Slots are reserved before the load starts, so two versions loading at once never overshoot the bound, and
 * a version that is itself loading is never chosen to make room.
 */
export class MultiplexPool {
  readonly maxActive: number;
  readonly #members = new Map<Multiplexed, { state: State; lastUsed: number }>();
  #clock = 0;
  evictions = 0;

  constructor(maxActive: number) {
    this.maxActive = maxActive;
  }

  /** Versions holding or reserving a slot. */
  get active(): string[] {
    return [...this.#members].filter(([, m]) => m.state !== 'idle').map(([k]) => k.key);
  }

  /** Marks a query for `member`: recency decides who makes room. */
  touch(member: Multiplexed): void {
    const entry = this.#members.get(member);
    if (entry !== undefined) entry.lastUsed = ++this.#clock;
  }

  /** Reserves a slot for `member`, evicting least recently used versions while the pool is full. */
  async admit(member: Multiplexed): Promise<void> {
    const entry = this.#members.get(member) ?? { state: 'idle' as State, lastUsed: ++this.#clock };
    this.#members.set(member, entry);
    if (entry.state !== 'idle') return;
    entry.state = 'loading';
    entry.lastUsed = ++this.#clock;
    const evicting: Promise<void>[] = [];
    while ([...this.#members.values()].filter((m) => m.state !== 'idle').length > this.maxActive) {
      let victim: Multiplexed | undefined;
      let oldest = Number.POSITIVE_INFINITY;
      for (const [candidate, m] of this.#members) {
        if (candidate !== member && m.state === 'active' && m.lastUsed < oldest) {
          victim = candidate;
          oldest = m.lastUsed;
        }
      }
      if (victim === undefined) break; // everything else is itself loading: let this one in, briefly over the bound
      (this.#members.get(victim) as { state: State }).state = 'idle';
      this.evictions++;
      evicting.push(victim.suspend());
    }
    await Promise.all(evicting);
  }

  /** The member finished loading and holds its slot. */
  loaded(member: Multiplexed): void {
    const entry = this.#members.get(member);
    if (entry !== undefined) entry.state = 'active';
  }

  /** The member stopped (evicted, idle, no longer current, or its load failed): its slot is free. */
  released(member: Multiplexed): void {
    const entry = this.#members.get(member);
    if (entry !== undefined) entry.state = 'idle';
  }

  remove(member: Multiplexed): void {
    this.#members.delete(member);
  }
}
