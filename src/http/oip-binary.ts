/**
 * The Open Inference Protocol's binary tensor data extension (Triton's and KServe's `binary_tensor_data`):
 * a request body is a JSON header followed by the raw little-endian bytes of the tensors that carry
 * `parameters.binary_data_size`, in the order of `inputs`; the `Inference-Header-Content-Length` HTTP header
 * says how many of the body's first bytes are JSON. A response is built the same way when the request asks for
 * binary outputs (`parameters.binary_data` on an output, `parameters.binary_data_output` on the request).
 * Pure; the routes are in query-server.ts.
 */
import { InvalidInputError, InvalidRequestError } from '../errors.js';
import { rowsToBytes } from '../wire/raw-tensor.js';
import type { ModelSignature, OipInferRequest, OipTensor } from './oip.js';

/** The header naming the JSON part's length in bytes (HTTP header names are case-insensitive; Node lowers them). */
export const HEADER_LENGTH = 'inference-header-content-length';
const HEADER_NAME = 'Inference-Header-Content-Length';

/**
 * Cuts a binary request body into its JSON header (parsed, not yet validated: the route's schema does that)
 * and the bytes after it. Throws {@link InvalidRequestError} when the length header is missing or not a
 * whole number, points past the body, or the header is not a JSON object.
 */
export function splitBinaryBody(body: Buffer, headerLength: string | string[] | undefined): { header: unknown; binary: Buffer } {
  if (headerLength === undefined) {
    throw new InvalidRequestError(
      `a binary body needs the ${HEADER_NAME} header: how many of its ${body.length} bytes are the JSON header before the tensor bytes (or send Content-Type: application/json with a JSON body)`,
    );
  }
  const text = Array.isArray(headerLength) ? headerLength.join(',') : headerLength;
  if (!/^\d{1,15}$/.test(text.trim())) {
    throw new InvalidRequestError(`${HEADER_NAME} is ${JSON.stringify(text)}; it must be a whole number of bytes (the JSON header's length)`);
  }
  const length = Number(text.trim());
  if (length > body.length) {
    throw new InvalidRequestError(`${HEADER_NAME} is ${length}, past the end of the body (${body.length} bytes); it must be the JSON header's length, at most the body's`);
  }
  let header: unknown;
  try {
    header = JSON.parse(body.toString('utf8', 0, length));
  } catch (error) {
    throw new InvalidRequestError(`the first ${length} bytes of the body (${HEADER_NAME}) are not JSON: ${(error as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new InvalidRequestError(`the JSON header (the body's first ${length} bytes) must be an infer request object; got ${Array.isArray(header) ? 'an array' : String(header)}`);
  }
  return { header, binary: body.subarray(length) };
}

/** A `binary_data_size` parameter's value: a whole number of bytes, or undefined when absent. */
function binarySize(tensor: OipTensor): number | undefined {
  const size = tensor.parameters?.binary_data_size;
  if (size === undefined) return undefined;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidRequestError(`input ${tensor.name}: parameters.binary_data_size is ${JSON.stringify(size)}; it must be a whole number of bytes >= 0`);
  }
  return size;
}

/**
 * Each input's bytes, cut from `binary` in the order of `inputs` by their `binary_data_size` (undefined for
 * an input sent as JSON `data`). The sizes must add up to exactly the bytes after the header.
 */
export function binaryInputs(request: OipInferRequest, binary: Buffer): (Buffer | undefined)[] {
  const sizes = request.inputs.map(binarySize);
  const total = sizes.reduce<number>((sum, size) => sum + (size ?? 0), 0);
  if (total !== binary.length) {
    const listed = request.inputs.map((t, i) => `${t.name}: ${sizes[i] ?? 'none'}`).join(', ');
    throw new InvalidRequestError(
      `the inputs' binary_data_size add up to ${total} bytes (${listed}) but ${binary.length} bytes follow the JSON header; they must match exactly`,
    );
  }
  let offset = 0;
  return sizes.map((size) => {
    if (size === undefined) return undefined;
    const bytes = binary.subarray(offset, offset + size);
    offset += size;
    return bytes;
  });
}

function booleanParameter(parameters: Record<string, unknown> | undefined, name: string, where: string): boolean | undefined {
  const value = parameters?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new InvalidRequestError(`${where}parameters.${name} is ${JSON.stringify(value)}; it must be true or false`);
  return value;
}

/**
 * Whether the model's output goes back as binary data: `binary_data` on the requested output if it says,
 * else the request's `binary_data_output`, else JSON (as the extension says). Throws for an output the model
 * does not have.
 */
export function wantsBinaryOutput(request: OipInferRequest, signature: ModelSignature): boolean {
  let binary = booleanParameter(request.parameters, 'binary_data_output', '') ?? false;
  for (const output of request.outputs ?? []) {
    if (output.name !== signature.outputName) throw new InvalidInputError(`unknown output '${output.name}'; the model's output is '${signature.outputName}'`);
    binary = booleanParameter(output.parameters, 'binary_data', `output ${output.name}: `) ?? binary;
  }
  return binary;
}

/**
 * A response with the output as binary data: the JSON header (`fields` plus the output tensor, its data
 * replaced by `parameters.binary_data_size`) followed by the rows as FP32 little-endian bytes. `headerLength`
 * goes in the `Inference-Header-Content-Length` response header.
 */
export function binaryResponse(signature: ModelSignature, outputs: readonly Float32Array[], fields: Record<string, unknown>): { body: Buffer; headerLength: number } {
  const width = outputs[0]?.length ?? signature.outputSize;
  const bytes = rowsToBytes(outputs, width);
  const header = Buffer.from(
    JSON.stringify({
      ...fields,
      outputs: [{ name: signature.outputName, datatype: 'FP32', shape: [outputs.length, width], parameters: { binary_data_size: bytes.length } }],
    }),
  );
  return { body: Buffer.concat([header, bytes]), headerLength: header.length };
}
