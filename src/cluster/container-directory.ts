/**
 * The frontend's view of the model containers announced in the `clipper-containers` bucket: one NATS
 * connection per server URL, shared by every remote model worker of the process, polling the bucket and handing
 * out containers to replicas (one replica per container where it can, so that each container keeps one queue and
 * one AIMD controller in the frontend, as Clipper had).
 *
 * It polls instead of watching: a poll is a fresh list each time, right after a NATS restart too, and an
 * announcement that expired (the bucket's max age; nats-server 2.9 leaves no delete marker for it) is simply
 * absent from the next list.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { openContainersBucket } from './container.js';
import { type ContainerAnnouncement, parseAnnouncement } from './container-protocol.js';

const POLL_MS = 250;
const POLL_TIMEOUT_MS = 2_000;

interface SharedEntry {
  directory: Promise<ContainerDirectory>;
  users: number;
}

export class ContainerDirectory {
  static readonly #shared = new Map<string, SharedEntry>();

  /** The directory for `url`, shared by everyone in this process who asks for it; {@link release} when done. */
  static acquire(url: string): Promise<ContainerDirectory> {
    let entry = ContainerDirectory.#shared.get(url);
    if (entry === undefined) {
      const made: SharedEntry = { users: 0, directory: undefined as unknown as Promise<ContainerDirectory> };
      made.directory = ContainerDirectory.#open(url, made);
      made.directory.catch(() => {
        if (ContainerDirectory.#shared.get(url) === made) ContainerDirectory.#shared.delete(url);
      });
      ContainerDirectory.#shared.set(url, made);
      entry = made;
    }
    entry.users++;
    return entry.directory;
  }

  static async #open(url: string, entry: SharedEntry): Promise<ContainerDirectory> {
    const nc = await connect({ servers: url.split(','), name: 'clipper-frontend', maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    try {
      const directory = new ContainerDirectory(url, nc, await openContainersBucket(nc), entry);
      await directory.#poll();
      return directory;
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  readonly url: string;
  readonly nc: NatsConnection;
  readonly #kv: KV;
  /** Live announcements by container id, as of the last successful poll. */
  #live = new Map<string, ContainerAnnouncement>();
  /**
   * Per container id: the revision of its entry last seen and when (this process's clock) it last changed. A
   * container cut off by its network stays announced until its entry expires, but its heartbeat stops.
   */
  readonly #beats = new Map<string, { revision: number; changedAt: number }>();
  /** Containers a batch found unanswering, with their entry's revision then: suspect until they beat again. */
  readonly #suspects = new Map<string, number | undefined>();
  readonly #claims = new Map<string, number>();
  readonly #goneListeners = new Map<string, Set<() => void>>();
  readonly #timer: NodeJS.Timeout;
  /** This directory's own share count: a worker of an older, closed directory must not release a newer one. */
  readonly #entry: SharedEntry;
  #polling = false;
  #connected = true;

  private constructor(url: string, nc: NatsConnection, kv: KV, entry: SharedEntry) {
    this.url = url;
    this.#entry = entry;
    this.nc = nc;
    this.#kv = kv;
    this.#timer = setInterval(() => void this.#poll(), POLL_MS);
    this.#timer.unref();
    void this.#watchConnection();
  }

  /**
   * Whether the connection to NATS is up. A request published while it is down is buffered by the client and
   * may be lost on reconnect (published before the container's subscription is back), so a remote worker does
   * not send one: it fails its batch over at once.
   */
  get connected(): boolean {
    return this.#connected && !this.nc.isClosed();
  }

  async #watchConnection(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.#connected = false;
        // What was announced before is unknown now: claims wait for a listing made after the reconnect.
        this.#live = new Map();
      } else if (status.type === 'reconnect') {
        this.#connected = true;
      }
    }
  }

  /** The containers now announced for `model@version`. */
  containers(model: string, version: string): ContainerAnnouncement[] {
    return [...this.#live.values()].filter((c) => c.model === model && c.version === version);
  }

  /**
   * Whether container `id`'s heartbeat is late: its entry has not changed for more than 1.5 heartbeats (a
   * partition, a hang), or it left a batch unanswered ({@link suspect}) and has not beaten since. It stays
   * announced, and claimable, until the entry expires.
   */
  isLate(id: string): boolean {
    const beat = this.#beats.get(id);
    if (this.#suspects.has(id) && this.#suspects.get(id) === beat?.revision) return true;
    const announcement = this.#live.get(id);
    if (beat === undefined || announcement === undefined) return false;
    return Date.now() - beat.changedAt > Math.max(1.5 * announcement.heartbeatMs, 2 * POLL_MS);
  }

  /**
   * Takes a container of `model@version` for one replica: one whose heartbeat is on time before one whose
   * heartbeat is late (cut off, most likely, and its entry about to expire), then the least claimed. Waits up
   * to `waitMs` for one to be announced (after a NATS restart the containers re-announce within a heartbeat).
   */
  async claim(model: string, version: string, waitMs: number): Promise<ContainerAnnouncement> {
    const until = Date.now() + waitMs;
    for (;;) {
      const rank = (c: ContainerAnnouncement): number => (this.isLate(c.id) ? 1_000_000 : 0) + (this.#claims.get(c.id) ?? 0);
      const candidates = this.containers(model, version).sort((a, b) => rank(a) - rank(b));
      const chosen = candidates[0];
      if (chosen !== undefined && this.connected) {
        this.#claims.set(chosen.id, (this.#claims.get(chosen.id) ?? 0) + 1);
        return chosen;
      }
      if (Date.now() >= until) throw new Error(`no container of ${model}@${version} is announced in the clipper-containers bucket at ${this.url} (waited ${waitMs} ms)`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** A batch sent to container `id` went unanswered: claims avoid it until its next heartbeat. */
  suspect(id: string): void {
    this.#suspects.set(id, this.#beats.get(id)?.revision);
  }

  /** Gives a claimed container back. */
  unclaim(id: string): void {
    const n = (this.#claims.get(id) ?? 0) - 1;
    if (n > 0) this.#claims.set(id, n);
    else this.#claims.delete(id);
  }

  /** Calls `listener` once when container `id`'s announcement is gone (expired or deleted); returns a canceller. */
  onGone(id: string, listener: () => void): () => void {
    let set = this.#goneListeners.get(id);
    if (set === undefined) {
      set = new Set();
      this.#goneListeners.set(id, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /** One fewer user; the last one closes the connection. */
  release(): void {
    const entry = this.#entry;
    if (--entry.users > 0) return;
    if (ContainerDirectory.#shared.get(this.url) === entry) ContainerDirectory.#shared.delete(this.url);
    clearInterval(this.#timer);
    void this.nc.close();
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.nc.isClosed()) return;
    this.#polling = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const revisions = new Map<string, number>();
      const list = async (): Promise<Map<string, ContainerAnnouncement>> => {
        const live = new Map<string, ContainerAnnouncement>();
        for await (const key of await this.#kv.keys()) {
          const entry = await this.#kv.get(key);
          if (entry === null || entry.operation !== 'PUT') continue;
          const announcement = parseAnnouncement(entry.value);
          if (announcement === undefined) continue;
          live.set(announcement.id, announcement);
          revisions.set(announcement.id, entry.revision);
        }
        return live;
      };
      // A listing started while NATS goes away may never end: give up on it, and the next poll starts afresh.
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('listing the containers bucket timed out')), POLL_TIMEOUT_MS);
      });
      const live = await Promise.race([list(), timeout]);
      if (!this.connected) return;
      this.#live = live;
      const now = Date.now();
      for (const [id, revision] of revisions) {
        if (this.#beats.get(id)?.revision !== revision) this.#beats.set(id, { revision, changedAt: now });
      }
      for (const id of this.#beats.keys()) if (!live.has(id)) this.#beats.delete(id);
      for (const [id, revision] of this.#suspects) if (!live.has(id) || this.#beats.get(id)?.revision !== revision) this.#suspects.delete(id);
      for (const [id, listeners] of this.#goneListeners) {
        if (live.has(id)) continue;
        this.#goneListeners.delete(id);
        for (const listener of listeners) listener();
      }
    } catch {
      // NATS is away: keep the last view; batches sent meanwhile fail on their own and are handed back.
    } finally {
      clearTimeout(timer);
      this.#polling = false;
    }
  }
}
