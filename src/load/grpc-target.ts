import { connect, type ClientHttp2Session } from 'node:http2';
import path from 'node:path';
import { credentials, makeGenericClientConstructor, Metadata, status, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { projectRoot } from '../index.js';
import type { InputSource } from './input-source.js';
import type { LoadTarget, QueryOutcome } from './load-target.js';

export interface GrpcTargetOptions {
  /** The OIP gRPC service's `host:port`. */
  address: string;
  model: string;
  /** A query unanswered after this long counts as an error, ms. Default 30 s. */
  timeoutMs?: number;
  /**
   * The client: `grpc-js` (@grpc/grpc-js, a stock client; the default) or `http2`: gRPC's framing written by
   * hand on one node:http2 session (what h2load-style gRPC load testers do), a fraction of grpc-js's cost per
   * call, to tell the server's limit from the client's.
   */
  client?: 'grpc-js' | 'http2';
  /** HTTP/2 connections the http2 client spreads its calls over, round robin. Default 1. */
  connections?: number;
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
  readonly #client: Client | undefined;
  readonly #sessions: ClientHttp2Session[] = [];
  #next = 0;
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
    if (options.client === 'http2') {
      for (let i = 0; i < (options.connections ?? 1); i++) {
        const session = connect(`http://${options.address}`);
        session.on('error', () => {});
        this.#sessions.push(session);
      }
    } else {
      const Raw = makeGenericClientConstructor({}, 'inference.GRPCInferenceService') as ServiceClientConstructor;
      this.#client = new Raw(options.address, credentials.createInsecure());
    }
    this.#inputs = inputs;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.description = `grpc://${options.address}${METHOD}${options.client === 'http2' ? ' (node:http2 client)' : ''}`;
  }

  send(): Promise<QueryOutcome> {
    const row = this.#inputs.floats(this.#inputs.next());
    const length = this.#prefix.length + row.byteLength;
    // gRPC's length-prefixed message: a compression flag byte and the length (big-endian), for the http2 client.
    const framed = this.#sessions.length > 0;
    const at = framed ? 5 : 0;
    const message = Buffer.allocUnsafe(at + length);
    if (framed) {
      message[0] = 0;
      message.writeUInt32BE(length, 1);
    }
    this.#prefix.copy(message, at);
    Buffer.from(row.buffer, row.byteOffset, row.byteLength).copy(message, at + this.#prefix.length);
    if (framed) return this.#sendHttp2(this.#sessions[this.#next++ % this.#sessions.length] as ClientHttp2Session, message);
    const client = this.#client as Client;
    return new Promise((resolve) => {
      client.makeUnaryRequest(
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

  #sendHttp2(session: ClientHttp2Session, message: Buffer): Promise<QueryOutcome> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (code: string | string[] | undefined): void => {
        if (settled) return;
        settled = true;
        const n = Number(code);
        if (n === status.OK) resolve({ status: 'ok' });
        else if (n === status.UNAVAILABLE || n === status.RESOURCE_EXHAUSTED) resolve({ status: 'refused' });
        else resolve({ status: 'error', detail: code === undefined ? 'no grpc-status' : `gRPC ${status[n] ?? code}` });
      };
      const stream = session.request({ ':method': 'POST', ':path': METHOD, 'content-type': 'application/grpc', te: 'trailers' });
      stream.setTimeout(this.#timeoutMs, () => stream.close());
      // A trailers-only reply (an error) carries grpc-status in its headers; an answer, in its trailers.
      stream.on('response', (headers) => {
        if (headers['grpc-status'] !== undefined) done(headers['grpc-status']);
      });
      stream.on('trailers', (trailers) => done(trailers['grpc-status']));
      stream.on('data', () => {});
      stream.on('close', () => done(undefined));
      stream.on('error', () => done(undefined));
      stream.end(message);
    });
  }

  async close(): Promise<void> {
    this.#client?.close();
    for (const session of this.#sessions) session.close();
  }
}
