/**
 * The control-plane state of every frontend on one NATS: the entry `state` of the JetStream key-value bucket
 * `clipper-config` (one JSON document, history 5), written with compare-and-set on its revision and followed by
 * every frontend (a watch, and a poll each second behind it, so a change made while this frontend was
 * reconnecting is still seen).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { jetstream } from '@nats-io/jetstream';
import { decodeState, encodeState, type ControlState } from './control-state.js';
import { StateConflictError, type StateStore, type StoredState } from './state-store.js';

export const CONFIG_BUCKET = 'clipper-config';
export const STATE_KEY = 'state';
const POLL_MS = 1_000;

/** JetStream's "wrong last sequence" (10071): the expected revision was not the stored one. */
function isConflict(error: unknown): boolean {
  const e = error as { code?: unknown; api_error?: { err_code?: number }; message?: string };
  return e?.code === 10071 || e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(e?.message ?? '');
}

/**
 * Bucket calls give up after this, ms (the client's default is 5 s): a call sent while the connection is being
 * re-established is lost, and the admin call that made it should fail soon and be retried, not hang.
 */
const CALL_TIMEOUT_MS = 1_500;

export async function openConfigBucket(nc: NatsConnection): Promise<KV> {
  const kvm = new Kvm(jetstream(nc, { timeout: CALL_TIMEOUT_MS }));
  try {
    return await kvm.create(CONFIG_BUCKET, { history: 5 });
  } catch {
    return kvm.open(CONFIG_BUCKET);
  }
}

export class KvStateStore implements StateStore {
  readonly where: string;
  readonly nc: NatsConnection;
  readonly #kv: KV;
  #timer: NodeJS.Timeout | undefined;
  #stopWatch: (() => void) | undefined;
  #closed = false;

  private constructor(url: string, nc: NatsConnection, kv: KV) {
    this.where = `${url} bucket ${CONFIG_BUCKET}`;
    this.nc = nc;
    this.#kv = kv;
  }

  static async open(url: string): Promise<KvStateStore> {
    const nc = await connect({ servers: url.split(','), name: 'clipper-frontend-control', maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    try {
      return new KvStateStore(url, nc, await openConfigBucket(nc));
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  /** The clipper-config bucket (the feedback stream keeps its policy snapshots there too). */
  get kv(): KV {
    return this.#kv;
  }

  async read(): Promise<StoredState> {
    const entry = await this.#kv.get(STATE_KEY);
    if (entry === null || entry.operation !== 'PUT') return { state: undefined, revision: entry?.revision ?? 0 };
    return { state: decodeState(entry.string(), this.where), revision: entry.revision };
  }

  async write(state: ControlState, revision: number): Promise<number> {
    try {
      return revision === 0 ? await this.#kv.create(STATE_KEY, encodeState(state)) : await this.#kv.update(STATE_KEY, encodeState(state), revision);
    } catch (error) {
      if (isConflict(error)) {
        throw new StateConflictError(`another frontend changed the control-plane state first (${this.where}, expected revision ${revision}); read it again and retry`, { cause: error });
      }
      throw error;
    }
  }

  watch(listener: (stored: StoredState & { state: ControlState }) => void): void {
    const deliver = (text: string, revision: number): void => {
      try {
        listener({ state: decodeState(text, this.where), revision });
      } catch {
        // A document this version cannot read: ignored here; the admin calls that read it report it.
      }
    };
    void (async () => {
      const watch = await this.#kv.watch({ key: STATE_KEY });
      this.#stopWatch = () => watch.stop();
      if (this.#closed) watch.stop();
      for await (const entry of watch) if (entry.operation === 'PUT') deliver(entry.string(), entry.revision);
    })().catch(() => {});
    this.#timer = setInterval(() => {
      this.#kv.get(STATE_KEY).then(
        (entry) => {
          if (entry !== null && entry.operation === 'PUT') deliver(entry.string(), entry.revision);
        },
        () => {},
      );
    }, POLL_MS);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#stopWatch?.();
    await this.nc.close();
  }
}
