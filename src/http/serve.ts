import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Clipper, projectRoot } from '../index.js';
import { startGrpcServer, type GrpcServer } from '../grpc/grpc-server.js';
import { createAdminServer } from './admin-server.js';
import { ServerMetrics } from './metrics.js';
import { createQueryServer } from './query-server.js';
import type { ServeSettings } from './settings.js';

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
  /** Stops admitting (503), drains in-flight queries, stops the workers. */
  close(): Promise<void>;
}

const version = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * Starts clipper-ts behind HTTP. The ports open first (readiness reports false while models load and warm
 * up), then, with `bundled`, the MNIST models are deployed and the `digits` application is linked to them.
 */
export async function serve(settings: ServeSettings, options: { clipper?: Clipper } = {}): Promise<RunningServer> {
  const clipper = options.clipper ?? (await Clipper.start({ modelRepository: settings.modelRepository }));
  const logger = settings.logLevel === 'silent' ? false : { level: settings.logLevel };
  const metrics = new ServerMetrics(clipper);
  // Not ready until the bundled models are all deployed and linked: between two deployments the system alone
  // would report ready with only the first model linked.
  let starting = settings.bundled;
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
  });
  const admin = createAdminServer({ clipper, token: settings.adminToken, replicas: settings.replicas, logger, metrics: metrics.registry });
  let closing: Promise<void> | undefined;
  // A keep-alive connection busy when close() starts would stay open after its answer and hold close() until
  // its idle timeout (72 s), past the CLI's shutdown timeout: answers sent while closing close their connection.
  for (const server of [query, admin]) {
    server.addHook('onSend', async (_request, reply) => {
      if (closing !== undefined) reply.header('connection', 'close');
    });
  }
  const queryAddress = await query.listen({ port: settings.port, host: settings.host });
  const adminAddress = await admin.listen({ port: settings.adminPort, host: settings.adminHost });
  let grpc: GrpcServer | undefined;
  if (settings.grpcPort !== 0) {
    try {
      grpc = await startGrpcServer({
        clipper,
        name: 'clipper-ts',
        version,
        inferTimeoutMs: settings.inferTimeoutMs,
        host: settings.host,
        port: settings.grpcPort === 'free' ? 0 : settings.grpcPort,
        maxMessageBytes: settings.bodyLimit,
        onInternalError: (error) => query.log.error({ err: error }, 'grpc: unexpected error'),
      });
    } catch (error) {
      // A taken gRPC port (Triton's 8001 is a common one) must end `serve`, not leave the HTTP ports open.
      await Promise.all([query.close(), admin.close()]);
      metrics.close();
      if (options.clipper === undefined) await clipper.stop();
      throw error;
    }
  }
  const running: RunningServer = {
    clipper,
    query,
    admin,
    queryUrl: queryAddress.replace('0.0.0.0', '127.0.0.1'),
    adminUrl: adminAddress,
    grpcAddress: grpc?.address,
    close() {
      // Fastify answers 503 to new requests while it closes, and waits for those in flight; then the
      // workers drain and stop.
      closing ??= (async () => {
        await Promise.all([query.close(), admin.close(), grpc?.close()]);
        metrics.close();
        await clipper.stop();
      })();
      return closing;
    },
  };
  if (settings.bundled) {
    await clipper.registerApp({ name: 'digits', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: settings.sloMs, policy: { kind: settings.policy } });
    for (const model of bundledModels) {
      await clipper.deployModel({ name: model, version: '1', path: path.join(settings.modelRepository, model, '1', 'model.onnx'), replicas: settings.replicas });
      await clipper.linkModel('digits', model);
    }
    starting = false;
  }
  return running;
}
