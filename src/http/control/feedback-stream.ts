/**
 * Feedback shared by every frontend on one NATS: each feedback event goes into the JetStream stream
 * `CLIPPER_FEEDBACK` (subject `clipper.v1.feedback`), and every frontend applies the stream in its one order, so
 * the Exp3/Exp4 and per-user policy states of all frontends learn the same weights without a leader. The event
 * carries the bandit draw it answers (taken by the frontend that received it), so a frontend that did not
 * answer the query learns from the same draw. The call that sent it is answered with the result of applying it
 * on its own frontend (read your own writes).
 *
 * Every {@link SNAPSHOT_EVERY} events each frontend puts the policies' state, and the stream sequence it holds,
 * in the `clipper-config` bucket (entry `policies`); a new frontend restores that snapshot and applies the
 * stream's tail after it.
 */
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { DeadlineExceededError, type Clipper, type FeedbackResult, type PolicySnapshot, type RelayedFeedback } from '../../index.js';

export const FEEDBACK_STREAM = 'CLIPPER_FEEDBACK';
export const FEEDBACK_SUBJECT = 'clipper.v1.feedback';
export const POLICIES_KEY = 'policies';
export const SNAPSHOT_EVERY = 25;
/** How long an event for an application not registered here yet waits for the control plane to register it, ms. */
const APP_WAIT_MS = 3_000;
const REPLY_TIMEOUT_MS = 10_000;

interface WireFeedback {
  id: string;
  app: string;
  dtype: 'float32' | 'int32';
  /** The input row, little-endian, base64. */
  input: string;
  label: number;
  context: RelayedFeedback['context'];
  selection: RelayedFeedback['selection'];
}

interface PoliciesSnapshot {
  /** The stream sequence of the last event the snapshot includes. */
  seq: number;
  apps: Record<string, PolicySnapshot>;
}

function encode(id: string, f: RelayedFeedback): string {
  const bytes = Buffer.from(f.input.buffer, f.input.byteOffset, f.input.byteLength).toString('base64');
  const wire: WireFeedback = { id, app: f.app, dtype: f.input instanceof Int32Array ? 'int32' : 'float32', input: bytes, label: f.label, context: f.context, selection: f.selection };
  return JSON.stringify(wire);
}

function decode(text: string): WireFeedback & { row: Float32Array | Int32Array } {
  const wire = JSON.parse(text) as WireFeedback;
  const bytes = Buffer.from(wire.input, 'base64');
  const copy = new Uint8Array(bytes).buffer;
  return { ...wire, row: wire.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy) };
}

export class FeedbackStream {
  readonly #clipper: Clipper;
  readonly #js: JetStreamClient;
  readonly #kv: KV;
  readonly #log: (message: string) => void;
  readonly #waiting = new Map<string, { resolve: (r: FeedbackResult) => void; reject: (e: unknown) => void }>();
  #messages: ConsumerMessages | undefined;
  #applied = 0;
  #closed = false;

  private constructor(clipper: Clipper, js: JetStreamClient, kv: KV, log: (message: string) => void) {
    this.#clipper = clipper;
    this.#js = js;
    this.#kv = kv;
    this.#log = log;
  }

  /** The stream sequence of the last event applied here. */
  get applied(): number {
    return this.#applied;
  }

  /**
   * Makes the stream (if missing), restores the latest policies snapshot, starts applying the stream after it,
   * and routes this system's feedback through the stream.
   */
  static async start(nc: NatsConnection, kv: KV, clipper: Clipper, log: (message: string) => void): Promise<FeedbackStream> {
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(FEEDBACK_STREAM);
    } catch {
      try {
        await jsm.streams.add({ name: FEEDBACK_STREAM, subjects: [FEEDBACK_SUBJECT], max_msgs: 1_000_000 });
      } catch (error) {
        // Made by another frontend at the same moment.
        await jsm.streams.info(FEEDBACK_STREAM).catch(() => Promise.reject(error));
      }
    }
    const stream = new FeedbackStream(clipper, jetstream(nc), kv, log);
    await stream.#begin();
    clipper.relayFeedback((f) => stream.#relay(f));
    return stream;
  }

  async #begin(): Promise<void> {
    const entry = await this.#kv.get(POLICIES_KEY);
    let from = 0;
    if (entry !== null && entry.operation === 'PUT') {
      const snapshot = entry.json<PoliciesSnapshot>();
      for (const [app, state] of Object.entries(snapshot.apps)) {
        try {
          this.#clipper.restorePolicyState(app, state);
        } catch (error) {
          this.#log(`feedback: the snapshot of ${app}'s policy does not apply here: ${(error as Error).message}`);
        }
      }
      from = snapshot.seq;
    }
    this.#applied = from;
    const consumer = await this.#js.consumers.get(FEEDBACK_STREAM, from === 0 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from + 1 });
    const messages = await consumer.consume();
    this.#messages = messages;
    void (async () => {
      for await (const message of messages) {
        if (this.#closed) break;
        await this.#apply(message.seq, message.string());
      }
    })().catch((error: unknown) => this.#log(`feedback: the stream consumer stopped: ${(error as Error).message}`));
  }

  async #apply(seq: number, text: string): Promise<void> {
    if (seq <= this.#applied) return;
    let event: ReturnType<typeof decode> | undefined;
    try {
      event = decode(text);
      const known = (): boolean => this.#clipper.getApps().some((a) => a.name === event?.app);
      const until = Date.now() + APP_WAIT_MS;
      while (!known() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      const result = await this.#clipper.applyRelayedFeedback({ app: event.app, input: event.row, label: event.label, context: event.context ?? {}, selection: event.selection ?? undefined });
      this.#waiting.get(event.id)?.resolve(result);
    } catch (error) {
      if (event !== undefined) this.#waiting.get(event.id)?.reject(error);
      this.#log(`feedback: event ${seq} not applied: ${(error as Error).message}`);
    } finally {
      if (event !== undefined) this.#waiting.delete(event.id);
      this.#applied = seq;
    }
    if (seq % SNAPSHOT_EVERY === 0) await this.#snapshot(seq);
  }

  async #snapshot(seq: number): Promise<void> {
    const apps: Record<string, PolicySnapshot> = {};
    for (const app of this.#clipper.getApps()) {
      const state = this.#clipper.getPolicyState(app.name);
      if (state !== null) apps[app.name] = state;
    }
    await this.#kv.put(POLICIES_KEY, JSON.stringify({ seq, apps } satisfies PoliciesSnapshot)).catch((error: unknown) => this.#log(`feedback: snapshot at ${seq} not stored: ${(error as Error).message}`));
  }

  #relay(feedback: RelayedFeedback): Promise<FeedbackResult> {
    const id = randomUUID();
    return new Promise<FeedbackResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new DeadlineExceededError(`feedback was not applied within ${REPLY_TIMEOUT_MS} ms (the ${FEEDBACK_STREAM} stream unreachable?)`));
      }, REPLY_TIMEOUT_MS);
      const settle = <T>(fn: (v: T) => void) => (v: T) => {
        clearTimeout(timer);
        fn(v);
      };
      this.#waiting.set(id, { resolve: settle(resolve), reject: settle(reject) });
      this.#js.publish(FEEDBACK_SUBJECT, encode(id, feedback)).catch((error: unknown) => {
        this.#waiting.delete(id);
        settle(reject)(error);
      });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#clipper.relayFeedback(undefined);
    await this.#messages?.close().catch(() => {});
  }
}
