import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Clipper, projectRoot } from '../index.js';
import { startGrpcServer, type GrpcServer } from '../grpc/grpc-server.js';
import { createAdminServer } from './admin-server.js';
import { ServerMetrics } from './metrics.js';
import { createQueryServer } from './query-server.js';
import type { ServeSettings } from './settings.js';
import { startTracing, type Tracing } from './tracing.js';
import { Gauge, type Registry } from 'prom-client';
import { ControlPlane } from './control/control-plane.js';
import { emptyState, STATE_FORMAT, type ControlState } from './control/control-state.js';
import { FileStateStore, MemoryStateStore, type StateStore } from './control/state-store.js';
import { KvStateStore } from './control/kv-state-store.js';
import { ContainerReplicas } from './control/container-replicas.js';
import { ClusterView } from './control/cluster-view.js';
import { FeedbackStream } from './control/feedback-stream.js';

/** The bundled models, in link order (the first is the `digits` application's default choice). */
export const bundledModels = ['mnist-cnn', 'mnist-mlp', 'mnist-linear'] as const;

/** A running server: the system, both HTTP servers, and where they listen. */
export interface RunningServer {
  clipper: Clipper;
  query: FastifyInstance;
  admin: FastifyInstance;
  queryUrl: string;
  adminUrl: string;
  /** The OIP gRPC service's `host:port`, unless `grpcPort` is 0. */
  grpcAddress: string | undefined;
  /** The control plane: admin changes go through it into the state file, the shared bucket or memory. */
  control: ControlPlane;
  /** What `/metrics` reports (the edge's own refusals among them). */
  metrics: ServerMetrics;
  /** Stops admitting (503), drains in-flight queries, stops the workers. */
  close(): Promise<void>;
}

/** The bundled MNIST models and the `digits` application linked to them, as a control-plane state. */
export function bundledState(settings: ServeSettings): ControlState {
  const remote = settings.remote && settings.nats !== undefined ? { remote: { nats: settings.nats } } : {};
  return {
    format: STATE_FORMAT,
    version: 1,
    apps: [{ options: { name: 'digits', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: settings.sloMs }, policy: { kind: settings.policy }, links: [...bundledModels] }],
    models: bundledModels.map((name) => ({ name, current: '1', versions: [{ name, version: '1', path: `${name}/1/model.onnx`, replicas: settings.replicas, ...remote }] })),
  };
}

/** Where the control-plane state lives: the shared bucket (`nats`), the state file (`state`), or memory. */
async function openStateStore(settings: ServeSettings): Promise<StateStore> {
  if (settings.nats !== undefined) return KvStateStore.open(settings.nats);
  if (settings.state !== undefined) return new FileStateStore(settings.state);
  return new MemoryStateStore();
}

const version = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * Starts clipper-ts behind HTTP. The ports open first (readiness reports false while models load and warm
 * up), then, with `bundled`, the MNIST models are deployed and the `digits` application is linked to them.
 */
export async function serve(settings: ServeSettings, options: { clipper?: Clipper } = {}): Promise<RunningServer> {
  // Traces only when a collector is named; a system passed in keeps the tracer it was started with.
  const tracing: Tracing | undefined = settings.otlpEndpoint === undefined ? undefined : startTracing(settings.otlpEndpoint, { version });
  const clipper = options.clipper ?? (await Clipper.start({ modelRepository: settings.modelRepository, ...(tracing === undefined ? {} : { tracer: tracing.tracer }) }));
  const logger = settings.logLevel === 'silent' ? false : { level: settings.logLevel };
  const metrics = new ServerMetrics(clipper);
  registerQueueDepth(metrics.registry, clipper);
  // Not ready until the bundled models are all deployed and linked: between two deployments the system alone
  // would report ready with only the first model linked.
  let starting = true;
  const query = createQueryServer({
    clipper,
    metrics,
    bodyLimit: settings.bodyLimit,
    maxArrayLength: settings.maxArrayLength,
    inferTimeoutMs: settings.inferTimeoutMs,
    maxEventLoopDelayMs: settings.maxEventLoopDelayMs,
    shedStatus: settings.shedStatus,
    ready: () => !starting && clipper.ready,
    logger,
    version,
    ...(tracing === undefined ? {} : { tracer: tracing.tracer }),
  });
  const store = await openStateStore(settings);
  const control = new ControlPlane({
    clipper,
    store,
    ...(settings.nats === undefined ? {} : { nats: settings.nats }),
    log: (level, message) => admin.log[level](message),
  });
  let cluster: ClusterView | undefined;
  const admin = createAdminServer({
    clipper,
    cluster: () => cluster?.snapshot,
    token: settings.adminToken,
    replicas: settings.replicas,
    logger,
    metrics: metrics.registry,
    actions: control,
    ...(settings.nats === undefined ? {} : { remote: { nats: settings.nats, byDefault: settings.remote } }),
  });
  let closing: Promise<void> | undefined;
  /** Stops following the containers and the feedback stream (with --nats). */
  let stopShared = async (): Promise<void> => {};
  // A keep-alive connection busy when close() starts would stay open after its answer and hold close() until
  // its idle timeout (72 s), past the CLI's shutdown timeout: answers sent while closing close their connection.
  for (const server of [query, admin]) {
    server.addHook('onSend', async (_request, reply) => {
      if (closing !== undefined) reply.header('connection', 'close');
    });
  }
  let queryAddress: string;
  let adminAddress: string;
  let grpc: GrpcServer | undefined;
  try {
    queryAddress = await query.listen({ port: settings.port, host: settings.host });
    adminAddress = await admin.listen({ port: settings.adminPort, host: settings.adminHost });
    if (settings.grpcPort !== 0) {
      grpc = await startGrpcServer({
        clipper,
        name: 'clipper-ts',
        version,
        inferTimeoutMs: settings.inferTimeoutMs,
        host: settings.host,
        port: settings.grpcPort === 'free' ? 0 : settings.grpcPort,
        maxMessageBytes: settings.bodyLimit,
        onInternalError: (error) => query.log.error({ err: error }, 'grpc: unexpected error'),
        ...(tracing === undefined ? {} : { tracer: tracing.tracer }),
      });
    }
  } catch (error) {
    // A taken port (the admin port, or Triton's gRPC 8001, a common one) must end `serve`, not leave the ports
    // already open listening with nothing behind them.
    await Promise.all([query.close(), admin.close()]);
    metrics.close();
    await control.close();
    if (options.clipper === undefined) await clipper.stop();
    await tracing?.shutdown();
    throw error;
  }
  const running: RunningServer = {
    clipper,
    query,
    admin,
    queryUrl: queryAddress.replace('0.0.0.0', '127.0.0.1'),
    adminUrl: adminAddress,
    grpcAddress: grpc?.address,
    control,
    metrics,
    close() {
      // Fastify answers 503 to new requests while it closes, and waits for those in flight; then the
      // workers drain and stop.
      closing ??= (async () => {
        await Promise.all([query.close(), admin.close(), grpc?.close()]);
        await stopShared();
        metrics.close();
        await control.close();
        await clipper.stop();
        // Sends the spans still buffered.
        await tracing?.shutdown();
      })();
      return closing;
    },
  };
  // The stored state when there is one (a restart, or another frontend on the same NATS wrote it); else the
  // bundled models (or nothing), which become the stored state.
  try {
    await control.start(settings.bundled ? bundledState(settings) : emptyState());
    if (store instanceof KvStateStore) {
      const log = (message: string): void => admin.log.info(message);
      const replicas = new ContainerReplicas(store.nc, clipper, control, log);
      const feedback = await FeedbackStream.start(store.nc, store.kv, clipper, log);
      const view = new ClusterView(store.nc, { queryUrl: running.queryUrl, adminUrl: running.adminUrl });
      cluster = view;
      stopShared = async () => {
        replicas.close();
        await view.close();
        await feedback.close();
      };
    }
  } catch (error) {
    await running.close();
    throw error;
  }
  starting = false;
  return running;
}

/**
 * `clipper_queue_depth{model,version}`: queries a model version's replicas hold (waiting in their queues or in the
 * batch being run), summed over them: the autoscaling signal of deploy/k8s/hpa.yaml.
 */
function registerQueueDepth(registry: Registry, clipper: Clipper): void {
  new Gauge({
    name: 'clipper_queue_depth',
    help: "Queries held by a model version's replicas (queued or in the running batch)",
    labelNames: ['model', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of clipper.getModels()) {
        for (const v of m.versions) this.set({ model: m.name, version: v.version }, v.replicas.reduce((sum, r) => sum + r.outstanding, 0));
      }
    },
  });
}
