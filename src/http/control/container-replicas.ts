/**
 * Containers become replicas (`serve --nats URL`): each second, the model containers announced in the
 * `clipper-containers` bucket are counted per model version, and every version that runs remotely here gets one
 * replica per live container of it (at least one, which waits for a container to claim). Every frontend does the
 * same from the same bucket, so a container started anywhere becomes a replica in all of them, and one that stops
 * (its heartbeat expires) stops being one. Reads the announcement entries as the README documents them.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import type { Clipper } from '../../index.js';
import { currentVersion } from './control-state.js';
import type { ControlPlane } from './control-plane.js';

export const CONTAINERS_BUCKET = 'clipper-containers';
const EVERY_MS = 1_000;

/** Live containers per `model@version`, from the announcements in the bucket. */
export async function countContainers(kv: KV): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  for (const key of keys) {
    const entry = await kv.get(key);
    if (entry === null || entry.operation !== 'PUT') continue;
    try {
      const { model, version } = entry.json<{ model?: unknown; version?: unknown }>();
      if (typeof model === 'string' && typeof version === 'string') counts.set(`${model}@${version}`, (counts.get(`${model}@${version}`) ?? 0) + 1);
    } catch {
      // Not an announcement: ignored.
    }
  }
  return counts;
}

export class ContainerReplicas {
  readonly #timer: NodeJS.Timeout;
  readonly #nc: NatsConnection;
  readonly #clipper: Clipper;
  readonly #control: ControlPlane;
  readonly #log: (message: string) => void;
  #kv: KV | undefined;
  #running = false;
  #closed = false;

  constructor(nc: NatsConnection, clipper: Clipper, control: ControlPlane, log: (message: string) => void) {
    this.#nc = nc;
    this.#clipper = clipper;
    this.#control = control;
    this.#log = log;
    this.#timer = setInterval(() => void this.sync(), EVERY_MS);
    this.#timer.unref();
  }

  /** One pass: sets each remote version's replicas to its live containers. */
  async sync(): Promise<void> {
    if (this.#running || this.#closed) return;
    this.#running = true;
    try {
      // Nothing to count until a version runs in containers (the bucket may not even exist before).
      if (!this.#control.state.models.some((m) => currentVersion(m).remote !== undefined)) return;
      this.#kv ??= await new Kvm(this.#nc).open(CONTAINERS_BUCKET);
      const counts = await countContainers(this.#kv);
      await this.#control.exclusive(async () => {
        for (const model of this.#control.state.models) {
          const version = currentVersion(model);
          if (version.remote === undefined || this.#closed) continue;
          const live = counts.get(`${model.name}@${model.current}`) ?? 0;
          const target = Math.max(1, live);
          let now: number;
          try {
            now = this.#clipper.describeModel(model.name, model.current).replicas.filter((r) => !r.retired).length;
          } catch {
            continue;
          }
          if (now !== target) {
            this.#log(`${model.name}@${model.current}: ${live} container(s) announced, ${now} -> ${target} replicas`);
            await this.#clipper.setNumReplicas(model.name, target);
          }
        }
      });
    } catch (error) {
      this.#kv = undefined;
      this.#log(`containers: ${(error as Error).message}`);
    } finally {
      this.#running = false;
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
