/**
 * What the status page shows of a cluster (`serve --nats URL`): the frontends sharing the control plane and the
 * model containers announced on it. Each frontend announces itself in the `clipper-frontends` bucket (an entry
 * per frontend, refreshed every second, gone three seconds after the frontend stops), as containers announce
 * themselves in `clipper-containers`; both buckets are read once a second, and the page reads the last view.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { CONTAINERS_BUCKET } from './container-replicas.js';

export const FRONTENDS_BUCKET = 'clipper-frontends';
const TTL_MS = 3_000;
const EVERY_MS = 1_000;

export interface FrontendEntry {
  id: string;
  host: string;
  pid: number;
  queryUrl: string;
  adminUrl: string;
  startedAt: string;
}

export interface ContainerEntry {
  id: string;
  model: string;
  version: string;
  host: string;
  pid: number;
  startedAt: string;
}

/** The cluster as one frontend last read it. */
export interface ClusterSnapshot {
  /** This frontend's id. */
  self: string;
  frontends: FrontendEntry[];
  containers: ContainerEntry[];
}

async function entries<T>(kv: KV, pick: (value: Record<string, unknown>) => T | undefined): Promise<T[]> {
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  const out: T[] = [];
  for (const key of keys) {
    const entry = await kv.get(key);
    if (entry === null || entry.operation !== 'PUT') continue;
    try {
      const value = pick(entry.json<Record<string, unknown>>());
      if (value !== undefined) out.push(value);
    } catch {
      // Not an announcement: ignored.
    }
  }
  return out;
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const integer = (v: unknown): number => (typeof v === 'number' ? v : 0);

export class ClusterView {
  readonly #nc: NatsConnection;
  readonly #self: FrontendEntry;
  readonly #timer: NodeJS.Timeout;
  #frontends: KV | undefined;
  #containers: KV | undefined;
  #snapshot: ClusterSnapshot;
  #running = false;
  #closed = false;

  constructor(nc: NatsConnection, urls: { queryUrl: string; adminUrl: string }) {
    this.#nc = nc;
    this.#self = { id: randomUUID().slice(0, 8), host: hostname(), pid: process.pid, ...urls, startedAt: new Date().toISOString() };
    this.#snapshot = { self: this.#self.id, frontends: [this.#self], containers: [] };
    this.#timer = setInterval(() => void this.refresh(), EVERY_MS);
    this.#timer.unref();
    void this.refresh();
  }

  /** The last view read (this frontend alone until the first read). */
  get snapshot(): ClusterSnapshot {
    return this.#snapshot;
  }

  /** Announces this frontend and reads both buckets. Errors (NATS away) keep the last view. */
  async refresh(): Promise<void> {
    if (this.#running || this.#closed) return;
    this.#running = true;
    try {
      const kvm = new Kvm(this.#nc);
      this.#frontends ??= await kvm.create(FRONTENDS_BUCKET, { ttl: TTL_MS, history: 1 }).catch(() => kvm.open(FRONTENDS_BUCKET));
      await this.#frontends.put(this.#self.id, JSON.stringify(this.#self));
      const frontends = await entries(this.#frontends, (v) =>
        typeof v.id === 'string' ? { id: v.id, host: text(v.host), pid: integer(v.pid), queryUrl: text(v.queryUrl), adminUrl: text(v.adminUrl), startedAt: text(v.startedAt) } : undefined,
      );
      this.#containers ??= await kvm.open(CONTAINERS_BUCKET).catch(() => undefined);
      const containers =
        this.#containers === undefined
          ? []
          : await entries(this.#containers, (v) =>
              typeof v.id === 'string' && typeof v.model === 'string' ? { id: v.id, model: v.model, version: text(v.version), host: text(v.host), pid: integer(v.pid), startedAt: text(v.startedAt) } : undefined,
            );
      const byId = (a: { id: string }, b: { id: string }): number => a.id.localeCompare(b.id);
      this.#snapshot = { self: this.#self.id, frontends: frontends.sort(byId), containers: containers.sort(byId) };
    } catch {
      // NATS is away or the bucket is not there yet: the page keeps the last view.
    } finally {
      this.#running = false;
    }
  }

  /** Stops announcing and removes this frontend's entry (best effort). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#frontends?.delete(this.#self.id).catch(() => {});
  }
}
