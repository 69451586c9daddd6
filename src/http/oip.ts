/**
 * Open Inference Protocol (KServe v2, spoken by Triton, KServe and MLServer): turning an infer request's
 * input tensor into query rows, and model outputs into a response tensor. Pure; the routes are in
 * query-server.ts.
 */
import { elementCount } from '../index.js';
import { InvalidInputError } from '../errors.js';
import { checkRawSize, rawDatatypes, rawValues, shapeElements } from '../wire/raw-tensor.js';

/** OIP element types this server accepts on input (converted to the model's own type). */
export const acceptedDatatypes: readonly string[] = Object.keys(rawDatatypes);

export interface OipTensor {
  name: string;
  shape: number[];
  datatype: string;
  /** Absent when the tensor travels as binary data after the JSON header (`parameters.binary_data_size`). */
  data?: unknown;
  parameters?: Record<string, unknown>;
}

export interface OipInferRequest {
  id?: string;
  inputs: OipTensor[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
  parameters?: Record<string, unknown>;
}

/** What a model takes, as the OIP metadata endpoint reports it. */
export interface ModelSignature {
  inputName: string;
  /** One query's shape (no batch dimension). */
  featureShape: readonly number[];
  outputName: string;
  outputSize: number;
}

function flatten(data: unknown, tensor: string): unknown[] {
  if (!Array.isArray(data)) throw new InvalidInputError(`input ${tensor}: data must be an array (flat or nested); got ${typeof data}`);
  return data.some(Array.isArray) ? (data as unknown[]).flat(Number.POSITIVE_INFINITY) : data;
}

/**
 * Splits an infer request's one input tensor into rows, one query each. The shape may carry a batch
 * dimension (`[N, 784]`, `[N, 1, 28, 28]`: N queries) or not (`[784]`: one query); either way its element
 * count must be a whole number of the model's rows and match the data: JSON `data` (flat or nested) of that
 * many values, or, for a tensor sent as binary data (`binary`, cut from the body by oip-binary.ts), exactly
 * that many elements' bytes, which become the rows with no per-element conversion for FP32.
 */
export function requestRows(request: OipInferRequest, model: string, signature: ModelSignature, binary?: readonly (Uint8Array | undefined)[]): ArrayLike<number>[] {
  if (request.inputs.length !== 1) {
    throw new InvalidInputError(`model ${model} takes exactly one input (${signature.inputName}); the request has ${request.inputs.length}`);
  }
  const tensor = request.inputs[0] as OipTensor;
  if (tensor.name !== signature.inputName) {
    throw new InvalidInputError(`unexpected inference input '${tensor.name}' for model '${model}'; expected '${signature.inputName}'`);
  }
  if (!acceptedDatatypes.includes(tensor.datatype)) {
    throw new InvalidInputError(`input ${tensor.name} has datatype ${JSON.stringify(tensor.datatype)}; model ${model} takes numeric tensors (${acceptedDatatypes.join(', ')})`);
  }
  const elements = shapeElements(tensor.name, tensor.shape);
  const perRow = elementCount(signature.featureShape);
  if (elements === 0 || elements % perRow !== 0) {
    throw new InvalidInputError(
      `input ${tensor.name} has shape [${tensor.shape.join(', ')}]; model ${model} expects [N, ${signature.featureShape.join(', ')}] (a multiple of ${perRow} elements)`,
    );
  }
  const bytes = binary?.[0];
  if (bytes !== undefined) {
    if (tensor.data !== undefined) throw new InvalidInputError(`input ${tensor.name} has both data and parameters.binary_data_size; send one or the other`);
    checkRawSize(`input ${tensor.name}: binary data (binary_data_size)`, bytes.byteLength, tensor.datatype, tensor.shape, elements);
    const flat = rawValues(bytes, tensor.datatype, elements) as Float32Array | Float64Array;
    const rows: ArrayLike<number>[] = [];
    for (let start = 0; start < elements; start += perRow) rows.push(flat.subarray(start, start + perRow));
    return rows;
  }
  if (tensor.data === undefined) throw new InvalidInputError(`input ${tensor.name} has no data; send data, or binary data after the JSON header with parameters.binary_data_size`);
  const integer = tensor.datatype.startsWith('INT') || tensor.datatype.startsWith('UINT');
  const flat = flatten(tensor.data, tensor.name);
  if (flat.length !== elements) {
    throw new InvalidInputError(`input ${tensor.name} has shape [${tensor.shape.join(', ')}] (${elements} elements) but ${flat.length} data values`);
  }
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number') throw new InvalidInputError(`input ${tensor.name}: data[${i}] is ${v === null ? 'null' : typeof v}; ${tensor.datatype} data must be numbers`);
    if (integer && !Number.isInteger(v)) throw new InvalidInputError(`input ${tensor.name}: data[${i}] is ${v}; ${tensor.datatype} data must be integers`);
  }
  // One row is the data itself (no copy); the query path copies each row into its own typed row anyway.
  if (flat.length === perRow) return [flat as number[]];
  const rows: number[][] = [];
  for (let start = 0; start < flat.length; start += perRow) rows.push(flat.slice(start, start + perRow) as number[]);
  return rows;
}

/** The response tensor for a batch of output rows: FP32, shape `[N, outputSize]`, flat data. */
export function responseTensor(signature: ModelSignature, outputs: readonly Float32Array[], requested: OipInferRequest['outputs']): OipTensor[] {
  if (requested !== undefined) {
    for (const o of requested) {
      if (o.name !== signature.outputName) throw new InvalidInputError(`unknown output '${o.name}'; the model's output is '${signature.outputName}'`);
    }
  }
  const data: number[] = [];
  for (const row of outputs) for (const v of row) data.push(v);
  return [{ name: signature.outputName, datatype: 'FP32', shape: [outputs.length, signature.outputSize], data }];
}
