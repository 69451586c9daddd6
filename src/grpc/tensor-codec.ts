/**
 * ModelInfer's tensors: turning a request's one input tensor (raw little-endian bytes or the typed `contents`)
 * into query rows, and output rows into a response tensor (raw bytes or `fp32_contents`). Pure; the RPC
 * handlers are in inference-service.ts. The message shapes are what @grpc/proto-loader decodes
 * grpc_service.proto into with {@link protoLoadOptions}.
 */
import { InvalidInputError, elementCount } from '../index.js';
import { checkRawSize, rawDatatypes, rawValues, rowsToBytes, shapeElements, type RawDatatype } from '../wire/raw-tensor.js';

/** One `InferParameter`: proto-loader sets the member that was sent and names it in `parameter_choice`. */
export interface InferParameter {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  uint64_param?: number;
}

export interface InferTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: number[];
  uint_contents?: number[];
  uint64_contents?: number[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

export interface InferInputTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, InferParameter>;
  contents?: InferTensorContents | null;
}

export interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Record<string, InferParameter>;
  inputs: InferInputTensor[];
  outputs?: { name: string; parameters?: Record<string, InferParameter> }[];
  raw_input_contents?: Uint8Array[];
}

export interface InferOutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  contents?: InferTensorContents;
}

/** What a model takes and gives, as ModelMetadata reports it. */
export interface TensorSignature {
  inputName: string;
  /** One query's shape (no batch dimension). */
  featureShape: readonly number[];
  outputName: string;
  outputSize: number;
}

/** The options the server and its clients load grpc_service.proto with (field names as in the .proto). */
export const protoLoadOptions = Object.freeze({ keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });

type ContentsField = keyof InferTensorContents;

interface Datatype extends RawDatatype {
  /** Where typed contents of this type go; FP16 has none (raw only, as the specification says). */
  field: ContentsField | undefined;
}

const contentsFieldOf: Readonly<Record<string, ContentsField | undefined>> = {
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  FP16: undefined,
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
};

/** The numeric datatypes ModelInfer accepts (BOOL and BYTES are not numbers a model here takes), with their contents field. */
export const datatypes: Readonly<Record<string, Datatype>> = Object.freeze(
  Object.fromEntries(Object.entries(rawDatatypes).map(([name, type]) => [name, { ...type, field: contentsFieldOf[name] }])),
);

const contentsFields: readonly ContentsField[] = ['bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents'];

/** The value of a parameter, whichever member carries it; undefined when absent or empty. */
export function parameterValue(parameter: InferParameter | undefined): boolean | number | string | undefined {
  if (parameter === undefined || parameter === null) return undefined;
  if (parameter.parameter_choice !== undefined) return parameter[parameter.parameter_choice];
  return parameter.bool_param ?? parameter.int64_param ?? parameter.string_param ?? parameter.double_param ?? parameter.uint64_param;
}

/** The typed-contents fields that hold values, with their counts. */
function filledFields(contents: InferTensorContents | null | undefined): [ContentsField, number][] {
  if (contents === undefined || contents === null) return [];
  return contentsFields.map((f): [ContentsField, number] => [f, contents[f]?.length ?? 0]).filter(([, n]) => n > 0);
}

/**
 * Splits a ModelInfer request's one input tensor into rows, one query each. The shape may carry a batch
 * dimension (`[N, 784]`: N queries) or not (`[784]`: one query); its element count must be a whole number of
 * the model's rows and match the data: `raw_input_contents[0]` of exactly elements x datatype size bytes, or
 * exactly that many values in the datatype's `contents` field, never both. Throws {@link InvalidInputError}
 * naming what was wrong and what was expected. `raw` says which form the request used (the reply uses it too).
 */
export function requestRows(request: ModelInferRequest, model: string, signature: TensorSignature): { rows: ArrayLike<number>[]; raw: boolean } {
  const inputs = request.inputs ?? [];
  const rawContents = request.raw_input_contents ?? [];
  if (inputs.length !== 1) {
    throw new InvalidInputError(`model ${model} takes exactly one input (${signature.inputName}); the request has ${inputs.length}`);
  }
  const tensor = inputs[0] as InferInputTensor;
  if (tensor.name !== signature.inputName) {
    throw new InvalidInputError(`unexpected inference input '${tensor.name}' for model '${model}'; expected '${signature.inputName}'`);
  }
  const type = Object.hasOwn(datatypes, tensor.datatype) ? datatypes[tensor.datatype] : undefined;
  if (type === undefined) {
    throw new InvalidInputError(`input ${tensor.name} has datatype ${JSON.stringify(tensor.datatype)}; model ${model} takes numeric tensors (${Object.keys(datatypes).join(', ')})`);
  }
  const elements = shapeElements(tensor.name, tensor.shape);
  const perRow = elementCount(signature.featureShape);
  if (elements === 0 || elements % perRow !== 0) {
    throw new InvalidInputError(
      `input ${tensor.name} has shape [${tensor.shape.join(', ')}]; model ${model} expects [N, ${signature.featureShape.join(', ')}] (a multiple of ${perRow} elements)`,
    );
  }
  const filled = filledFields(tensor.contents);
  let flat: ArrayLike<number>;
  const raw = rawContents.length > 0;
  if (raw) {
    if (filled.length > 0) {
      throw new InvalidInputError(`input ${tensor.name} has both raw_input_contents and contents (${filled.map(([f]) => f).join(', ')}); send one or the other`);
    }
    if (rawContents.length !== 1) {
      throw new InvalidInputError(`the request has ${rawContents.length} raw_input_contents for 1 input; send one per input, in the order of inputs`);
    }
    const bytes = rawContents[0] as Uint8Array;
    checkRawSize(`input ${tensor.name}: raw_input_contents[0]`, bytes.byteLength, tensor.datatype, tensor.shape, elements);
    flat = rawValues(bytes, tensor.datatype, elements);
  } else {
    if (type.field === undefined) throw new InvalidInputError(`input ${tensor.name} is ${tensor.datatype}, which has no typed contents field; send it in raw_input_contents`);
    const stray = filled.filter(([f]) => f !== type.field);
    if (stray.length > 0) {
      throw new InvalidInputError(`input ${tensor.name} is ${tensor.datatype}, whose values go in contents.${type.field}; it has values in ${stray.map(([f]) => f).join(', ')}`);
    }
    const values = (tensor.contents?.[type.field] ?? []) as number[];
    if (values.length !== elements) {
      throw new InvalidInputError(
        `input ${tensor.name} has shape [${tensor.shape.join(', ')}] (${elements} elements) but ${values.length} values in contents.${type.field}` +
          (values.length === 0 ? ' (and no raw_input_contents)' : ''),
      );
    }
    if (type.min !== undefined && type.max !== undefined) {
      const { min, max } = type;
      const i = values.findIndex((v) => v < min || v > max);
      if (i >= 0) throw new InvalidInputError(`input ${tensor.name}: contents.${type.field}[${i}] is ${values[i]}, outside ${tensor.datatype}'s range [${min}, ${max}]`);
    }
    flat = values;
  }
  const rows: ArrayLike<number>[] = [];
  for (let start = 0; start < elements; start += perRow) {
    rows.push(ArrayBuffer.isView(flat) ? (flat as Float32Array).subarray(start, start + perRow) : (flat as number[]).slice(start, start + perRow));
  }
  return { rows, raw };
}

/**
 * Whether the reply carries its outputs raw: as the request asks (`binary_data` on a requested output, or
 * `binary_data_output` on the request, the names Triton's binary extension uses), else in the form the
 * request's inputs came in. Throws for a requested output the model does not have.
 */
export function replyRaw(request: ModelInferRequest, signature: TensorSignature, inputsRaw: boolean): boolean {
  let raw = inputsRaw;
  const asked = parameterValue(request.parameters?.binary_data_output);
  if (typeof asked === 'boolean') raw = asked;
  for (const output of request.outputs ?? []) {
    if (output.name !== signature.outputName) throw new InvalidInputError(`unknown output '${output.name}'; the model's output is '${signature.outputName}'`);
    const binary = parameterValue(output.parameters?.binary_data);
    if (typeof binary === 'boolean') raw = binary;
  }
  return raw;
}

/** The response's output tensor, FP32 `[N, outputSize]`: as raw little-endian bytes or as `fp32_contents`. */
export function responseTensor(
  signature: TensorSignature,
  outputs: readonly Float32Array[],
  raw: boolean,
): { outputs: InferOutputTensor[]; raw_output_contents: Uint8Array[] } {
  // The rows' own width: a model whose output size is not known yet (0 before its first warm-up) still answers.
  const width = outputs[0]?.length ?? signature.outputSize;
  const tensor: InferOutputTensor = { name: signature.outputName, datatype: 'FP32', shape: [outputs.length, width] };
  if (raw) {
    return { outputs: [tensor], raw_output_contents: [rowsToBytes(outputs, width)] };
  }
  const values: number[] = [];
  for (const row of outputs) for (const v of row) values.push(v);
  return { outputs: [{ ...tensor, contents: { fp32_contents: values } }], raw_output_contents: [] };
}
