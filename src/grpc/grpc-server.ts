import path from 'node:path';
import { loadPackageDefinition, Server, ServerCredentials, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { projectRoot } from '../index.js';
import { inferenceService, type InferenceServiceOptions } from './inference-service.js';
import { protoLoadOptions } from './tensor-codec.js';

/**
 * The Open Inference Protocol's gRPC service definition, shipped as source and read at run time: from the
 * package root, so the compiled server (dist/src/grpc) and a client in any folder load the same file.
 */
export const grpcProtoPath = path.join(projectRoot, 'src', 'grpc', 'grpc_service.proto');

/** `inference.GRPCInferenceService`, loaded from {@link grpcProtoPath} as every client of the tests loads it. */
export function loadInferenceService(): ServiceClientConstructor {
  const definition = loadPackageDefinition(loadSync(grpcProtoPath, { ...protoLoadOptions }));
  return (definition.inference as GrpcObject).GRPCInferenceService as ServiceClientConstructor;
}

export interface GrpcServerOptions extends InferenceServiceOptions {
  host: string;
  /** 0: a free port. */
  port: number;
  /** Largest request message, bytes (the HTTP adapter's body limit); a larger one is RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
}

/** A listening gRPC server. */
export interface GrpcServer {
  /** `host:port` as a client dials it. */
  address: string;
  port: number;
  /** Refuses new calls, waits for those in flight (at most `graceMs`, then cancels them), and stops listening. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts the OIP gRPC service (inference-service.ts) on `host:port`, plaintext, as Triton's port 8001.
 *
 * @example
 * const grpc = await startGrpcServer({ clipper, name: 'clipper-ts', version: '0.1.0', inferTimeoutMs: 1000, host: '127.0.0.1', port: 0, maxMessageBytes: 8 << 20 });
 * // ... a client dials grpc.address ...
 * await grpc.close();
 */
export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const server = new Server({ 'grpc.max_receive_message_length': options.maxMessageBytes });
  server.addService(loadInferenceService().service, inferenceService(options));
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.port}`, ServerCredentials.createInsecure(), (error, bound) =>
      error === null ? resolve(bound) : reject(new Error(`the gRPC server could not listen on ${host}:${options.port} (--grpc-port; 0 turns it off): ${error.message}`, { cause: error })),
    );
  });
  const dialHost = options.host === '0.0.0.0' ? '127.0.0.1' : options.host === '::' ? '[::1]' : host;
  let closing: Promise<void> | undefined;
  return {
    address: `${dialHost}:${port}`,
    port,
    close(graceMs = 5000) {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      return closing;
    },
  };
}
