import path from 'node:path';
import { credentials, Metadata, status, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { makeGenericClientConstructor } from '@grpc/grpc-js';
import { projectRoot } from '../index.js';
import type { InputSource } from './input-source.js';
import type { LoadTarget, QueryOutcome } from './load-target.js';

export interface GrpcTargetOptions {
  /** The OIP gRPC service's `host:port`. */
  address: string;
  model: string;
  /** A query unanswered after this long counts as an error, ms. Default 30 s. */
  timeoutMs?: number;
}

const METHOD = '/inference.GRPCInferenceService/ModelInfer';

/** A varint, as protobuf writes lengths. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/**
 * The OIP gRPC service's ModelInfer (`inference.GRPCInferenceService`, src/grpc/grpc_service.proto) through
 * @grpc/grpc-js, one row per call as `raw_input_contents`. Cheap per query, so the generator measures the
 * server: the request's fixed part is serialised once by the .proto's own serializer and each query appends
 * only its row's bytes (`raw_input_contents`, field 7); replies are not decoded, only their status read.
 */
export class GrpcTarget implements LoadTarget {
  readonly description: string;
  readonly #client: Client;
  readonly #inputs: InputSource;
  readonly #prefix: Buffer;
  readonly #timeoutMs: number;

  constructor(options: GrpcTargetOptions, inputs: InputSource) {
    const definition = loadSync(path.join(projectRoot, 'src', 'grpc', 'grpc_service.proto'), { keepCase: true, longs: Number, defaults: true });
    const service = definition['inference.GRPCInferenceService'] as unknown as Record<string, { requestSerialize(value: object): Buffer }>;
    const fixed = service.ModelInfer?.requestSerialize({
      model_name: options.model,
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, inputs.width] }],
    }) as Buffer;
    const bytes = inputs.width * 4;
    // raw_input_contents (field 7, length-delimited): tag 7 << 3 | 2, then the length.
    this.#prefix = Buffer.concat([fixed, Buffer.from([(7 << 3) | 2, ...varint(bytes)])]);
    const Raw = makeGenericClientConstructor({}, 'inference.GRPCInferenceService') as ServiceClientConstructor;
    this.#client = new Raw(options.address, credentials.createInsecure());
    this.#inputs = inputs;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.description = `grpc://${options.address}${METHOD}`;
  }

  send(): Promise<QueryOutcome> {
    const row = this.#inputs.floats(this.#inputs.next());
    const message = Buffer.allocUnsafe(this.#prefix.length + row.byteLength);
    this.#prefix.copy(message);
    Buffer.from(row.buffer, row.byteOffset, row.byteLength).copy(message, this.#prefix.length);
    return new Promise((resolve) => {
      this.#client.makeUnaryRequest(
        METHOD,
        (m: Buffer) => m,
        (m: Buffer) => m,
        message,
        new Metadata(),
        { deadline: Date.now() + this.#timeoutMs },
        (error: ServiceError | null) => {
          if (error === null) resolve({ status: 'ok' });
          else if (error.code === status.UNAVAILABLE || error.code === status.RESOURCE_EXHAUSTED) resolve({ status: 'refused' });
          else resolve({ status: 'error', detail: `gRPC ${status[error.code] ?? error.code}` });
        },
      );
    });
  }

  async close(): Promise<void> {
    this.#client.close();
  }
}
