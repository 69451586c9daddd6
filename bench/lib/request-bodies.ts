import path from 'node:path';
import { loadSync } from '@grpc/proto-loader';
import { projectRoot } from '../../src/index.js';
import { InputSource } from '../../src/load/input-source.js';

/** One digit's request bodies for `model`, per protocol. */
export interface RequestBodies {
  /** OIP infer, JSON. */
  oip: Buffer;
  /** Clipper REST predict. */
  predict: Buffer;
  /** OIP infer with the binary tensor data extension (asks for a binary answer). */
  binary: Buffer;
  /** The binary body's JSON header length (its `Inference-Header-Content-Length`). */
  binaryHeaderLength: number;
  /** gRPC ModelInfer in gRPC's length-prefixed framing. */
  grpc: Buffer;
}

/**
 * One held-out digit's request bodies (the first of the split), for load generators that send one fixed body
 * per run (h2load). The gRPC body is serialised by the .proto's own serializer.
 */
export function requestBodies(model: string): RequestBodies {
  const inputs = InputSource.mnist({ tagRepeats: false });
  const ref = { base: 0, tag: 0, repeat: false };
  const row = inputs.floats(ref);
  const rowBytes = Buffer.from(row.buffer, row.byteOffset, row.byteLength);
  const oip = Buffer.from(`{"inputs":[{"name":"input","shape":[1,${inputs.width}],"datatype":"FP32","data":${inputs.json(ref)}}]}`);
  const predict = Buffer.from(`{"input":${inputs.json(ref)}}`);
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ name: 'input', shape: [1, inputs.width], datatype: 'FP32', parameters: { binary_data_size: rowBytes.length } }], parameters: { binary_data_output: true } }),
  );
  const binary = Buffer.concat([header, rowBytes]);
  // gRPC: ModelInferRequest by the .proto's own serializer, in gRPC's length-prefixed message (flag 0, length).
  const definition = loadSync(path.join(projectRoot, 'src', 'grpc', 'grpc_service.proto'), { keepCase: true, longs: Number, defaults: true });
  const service = definition['inference.GRPCInferenceService'] as unknown as Record<string, { requestSerialize(value: object): Buffer }>;
  const message = service.ModelInfer?.requestSerialize({
    model_name: model,
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, inputs.width] }],
    raw_input_contents: [rowBytes],
  }) as Buffer;
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return { oip, predict, binary, binaryHeaderLength: header.length, grpc: Buffer.concat([prefix, message]) };
}
