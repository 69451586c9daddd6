/**
 * A model container (`clipper-ts container --nats URL --model NAME --version V`): one process, one model
 * version, answering batches on its own NATS subject (container-protocol.ts) with the frames of
 * actors/worker/batch-frame.ts, and announcing itself in the `clipper-containers` bucket with a heartbeat. The
 * frontend's replica (queue, AIMD, admission, deadlines) stays in the frontend: only batches come here.
 *
 * On SIGTERM it drains: deletes its announcement, unsubscribes, finishes the batch in hand, exits 0.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { type KV, Kvm } from '@nats-io/kv';
import { decodeFrame, encodeFrame } from '../../actors/worker/batch-frame.js';
import { ModelHost } from '../../actors/worker/model-host.js';
import type { ModelSpec } from '../../actors/worker/protocol.js';
import { toWireError } from '../../actors/worker/wire-error.js';
import { readModelConfig, resolveModelPath } from '../config/model-config.js';
import { CONTAINER_ID, CONTAINERS_BUCKET, type ContainerAnnouncement, containerKey, DEFAULT_CONTAINER_TTL_MS, heartbeatEveryMs, inferSubject } from './container-protocol.js';

export interface ContainerOptions {
  /** NATS server URL(s), comma-separated (`nats://127.0.0.1:4222`). */
  nats: string;
  model: string;
  version: string;
  /** The model file; default `<repository>/<model>/<version>/model.onnx`. */
  path?: string;
  repository: string;
  /** onnxruntime intra-op threads. Default 1. */
  threads?: number;
  /** Default: random. */
  id?: string;
  /** Life of the announcement without a heartbeat, ms (used when this container creates the bucket). */
  ttlMs?: number;
  /** Told what happens (announced, draining, NATS status); default silent. */
  log?: (line: string) => void;
}

export interface RunningContainer {
  readonly id: string;
  readonly subject: string;
  readonly key: string;
  /** Resolves when the container has drained and closed its connection. */
  readonly closed: Promise<void>;
  /** Drains: removes the announcement, unsubscribes, finishes the batch in hand, closes the connection. */
  drain(): Promise<void>;
}

/** Opens (or makes) the discovery bucket. */
export async function openContainersBucket(nc: NatsConnection, ttlMs = DEFAULT_CONTAINER_TTL_MS): Promise<KV> {
  const kvm = new Kvm(nc);
  try {
    return await kvm.create(CONTAINERS_BUCKET, { ttl: ttlMs, history: 1 });
  } catch {
    // Made by someone else with other settings: use theirs.
    return kvm.open(CONTAINERS_BUCKET);
  }
}

export async function startContainer(options: ContainerOptions): Promise<RunningContainer> {
  const log = options.log ?? (() => {});
  const id = options.id ?? randomBytes(6).toString('hex');
  if (!CONTAINER_ID.test(id)) throw new Error(`container id must be 1-32 lower-case letters or digits; got ${JSON.stringify(id)}`);
  const file = resolveModelPath(options.repository, options.path ?? path.join(options.model, options.version, 'model.onnx'));
  const config = readModelConfig(file);
  if (config === undefined) throw new Error(`container needs ${path.join(path.dirname(file), 'config.json')} (input dtype and shape)`);
  const ext = path.extname(file).toLowerCase();
  const spec: ModelSpec = {
    key: `${options.model}@${options.version}`,
    kind: ext === '.onnx' ? 'onnx' : 'js',
    path: file,
    inputDtype: config.input.dtype,
    featureShape: [...config.input.shape],
    ...(config.input.name === undefined ? {} : { inputName: config.input.name }),
    ...(config.output.name === undefined ? {} : { outputName: config.output.name }),
    intraOpNumThreads: options.threads ?? 1,
  };
  const host = new ModelHost();
  await host.load(spec);
  const { outputSize } = await host.warmup(spec.key, 1);

  const nc = await connect({ servers: options.nats.split(','), name: `clipper-container-${id}`, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  void (async () => {
    for await (const s of nc.status()) log(`nats: ${s.type}`);
  })();
  const kv = await openContainersBucket(nc, options.ttlMs);
  const ttlMs = (await kv.status()).ttl || DEFAULT_CONTAINER_TTL_MS;
  const subject = inferSubject(options.model, options.version, id);
  const key = containerKey(options.model, options.version, id);
  const announcement: ContainerAnnouncement = {
    protocol: 1,
    id,
    model: options.model,
    version: options.version,
    subject,
    inputDtype: spec.inputDtype,
    featureShape: spec.featureShape,
    outputSize,
    host: hostname(),
    pid: process.pid,
    startedAt: new Date().toISOString(),
    heartbeatMs: heartbeatEveryMs(ttlMs),
    batches: 0,
  };
  const announce = async (): Promise<void> => {
    announcement.batches = host.stats().batches;
    await kv.put(key, JSON.stringify(announcement));
  };

  const sub: Subscription = nc.subscribe(subject);
  const serving = (async () => {
    // One batch at a time, in order: the frontend's replica sends one at a time anyway.
    for await (const m of sub) {
      let reply: Uint8Array;
      try {
        const frame = decodeFrame(m.data);
        if (frame.kind !== 'request') throw new Error(`container ${id} takes request frames; got a ${frame.kind} frame`);
        reply = encodeFrame(await host.run(frame));
      } catch (error) {
        reply = encodeFrame({ kind: 'error', id: 0, computeMs: 0, error: { ...toWireError(error), code: 'BAD_REQUEST' } });
      }
      m.respond(reply);
    }
  })();
  await nc.flush();
  await announce();
  log(`container ${id} serves ${spec.key} on ${subject}`);
  let beating = true;
  const heartbeat = setInterval(() => {
    if (beating) announce().catch((error: unknown) => log(`heartbeat failed: ${error instanceof Error ? error.message : String(error)}`));
  }, announcement.heartbeatMs);

  let draining: Promise<void> | undefined;
  let markClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  const drain = (): Promise<void> => {
    draining ??= (async () => {
      log(`container ${id} draining`);
      beating = false;
      clearInterval(heartbeat);
      // Frontends stop choosing it first; a frontend still sending gets "no responders" once unsubscribed.
      await kv.delete(key).catch(() => {});
      await sub.drain().catch(() => {});
      await serving;
      await nc.drain().catch(() => {});
      markClosed();
    })();
    return draining;
  };
  return { id, subject, key, closed, drain };
}
