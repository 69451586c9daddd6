import test from 'ava';
import { InvalidInputError } from '../../../src/index.js';
import { parameterValue, replyRaw, requestRows, responseTensor, type InferInputTensor, type ModelInferRequest, type TensorSignature } from '../../../src/grpc/tensor-codec.js';

const signature: TensorSignature = { inputName: 'x', featureShape: [2, 2], outputName: 'y', outputSize: 3 };
const request = (tensor: Partial<InferInputTensor>, raw?: Uint8Array[]): ModelInferRequest => ({
  model_name: 'm',
  model_version: '',
  id: '',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2, 2], ...tensor }],
  ...(raw === undefined ? {} : { raw_input_contents: raw }),
});
const le = (Type: Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor | Uint16ArrayConstructor | Int8ArrayConstructor, values: number[]): Uint8Array => new Uint8Array(new Type(values).buffer);
const rowsOf = (r: ModelInferRequest) => requestRows(r, 'm', signature).rows.map((row) => Array.from(row));

test('raw little-endian bytes of each datatype become rows of the model\'s row size', (t) => {
  const values = [1, 2, 3, 4, 5, 6, 7, 8];
  t.deepEqual(rowsOf(request({}, [le(Float32Array, values)])), [[1, 2, 3, 4], [5, 6, 7, 8]]);
  t.deepEqual(rowsOf(request({ datatype: 'FP64' }, [le(Float64Array, values)])), [[1, 2, 3, 4], [5, 6, 7, 8]]);
  t.deepEqual(rowsOf(request({ datatype: 'INT32' }, [le(Int32Array, [-1, 2, 3, 4, 5, 6, 7, 8])])), [[-1, 2, 3, 4], [5, 6, 7, 8]]);
  t.deepEqual(rowsOf(request({ datatype: 'INT8' }, [le(Int8Array, [-1, 2, 3, 4, 5, 6, 7, 8])])), [[-1, 2, 3, 4], [5, 6, 7, 8]]);
  const int64 = new Uint8Array(new BigInt64Array([-3n, 2n, 3n, 4n]).buffer);
  t.deepEqual(rowsOf(request({ datatype: 'INT64', shape: [1, 4] }, [int64])), [[-3, 2, 3, 4]]);
  // FP16: 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800, 65504 = 0x7bff (largest half).
  t.deepEqual(rowsOf(request({ datatype: 'FP16', shape: [4] }, [le(Uint16Array, [0x3c00, 0xc000, 0x3800, 0x7bff])])), [[1, -2, 0.5, 65504]]);
  // An unaligned slice of a larger buffer (as protobuf decoding hands them out) reads the same.
  const shifted = new Uint8Array(33);
  shifted.set(le(Float32Array, values), 1);
  t.deepEqual(rowsOf(request({}, [shifted.subarray(1)])), [[1, 2, 3, 4], [5, 6, 7, 8]]);
  t.true(requestRows(request({}, [le(Float32Array, values)]), 'm', signature).raw);
});

test('typed contents: the datatype\'s own field, exactly shape\'s element count', (t) => {
  const values = [1, 2, 3, 4, 5, 6, 7, 8];
  const typed = requestRows(request({ contents: { fp32_contents: values } }), 'm', signature);
  t.false(typed.raw);
  t.deepEqual(typed.rows.map((r) => Array.from(r)), [[1, 2, 3, 4], [5, 6, 7, 8]]);
  t.deepEqual(rowsOf(request({ datatype: 'INT16', shape: [4], contents: { int_contents: [1, -2, 3, 4] } })), [[1, -2, 3, 4]]);
  t.deepEqual(rowsOf(request({ datatype: 'UINT8', shape: [4], contents: { uint_contents: [0, 255, 3, 4] } })), [[0, 255, 3, 4]]);
  t.deepEqual(rowsOf(request({ datatype: 'INT64', shape: [4], contents: { int64_contents: [1, 2, 3, 4] } })), [[1, 2, 3, 4]]);
  t.deepEqual(rowsOf(request({ datatype: 'FP64', shape: [4], contents: { fp64_contents: [0.5, 2, 3, 4], fp32_contents: [] } })), [[0.5, 2, 3, 4]], 'an empty other field is no conflict');
});

test('each malformed input is an InvalidInputError saying what was wrong and what was expected', (t) => {
  const four = le(Float32Array, [1, 2, 3, 4]);
  const cases: [string, ModelInferRequest, RegExp][] = [
    ['no input', { ...request({}), inputs: [] }, /takes exactly one input \(x\); the request has 0/],
    ['two inputs', { ...request({}), inputs: [request({}).inputs[0]!, request({}).inputs[0]!] }, /the request has 2/],
    ['wrong name', request({ name: 'z' }, [four]), /unexpected inference input 'z' for model 'm'; expected 'x'/],
    ['BOOL', request({ datatype: 'BOOL' }, [four]), /datatype "BOOL"; model m takes numeric tensors/],
    ['lower-case datatype', request({ datatype: 'fp32' }, [four]), /datatype "fp32"/],
    ['prototype key as datatype', request({ datatype: 'constructor' }, [four]), /datatype "constructor"/],
    ['negative dimension', request({ shape: [-1, 4] }, [four]), /each dimension must be a whole number >= 0/],
    ['zero elements', request({ shape: [0, 4] }, [new Uint8Array(0)]), /expects \[N, 2, 2\] \(a multiple of 4 elements\)/],
    ['not a whole row', request({ shape: [3] }, [le(Float32Array, [1, 2, 3])]), /a multiple of 4 elements/],
    ['overflowing shape', request({ shape: [2 ** 40, 2 ** 40] }, [four]), /too many elements/],
    ['raw too short', request({ shape: [2, 4] }, [four]), /raw_input_contents\[0\] has 16 bytes; shape \[2, 4\] of FP32 needs 8 x 4 = 32/],
    ['raw too long', request({ shape: [4], datatype: 'FP16' }, [four]), /has 16 bytes; shape \[4\] of FP16 needs 4 x 2 = 8/],
    ['raw and typed', request({ shape: [4], contents: { fp32_contents: [1, 2, 3, 4] } }, [four]), /both raw_input_contents and contents \(fp32_contents\)/],
    ['two raw for one input', request({ shape: [4] }, [four, four]), /2 raw_input_contents for 1 input/],
    ['typed count off', request({ shape: [4], contents: { fp32_contents: [1, 2, 3] } }), /\(4 elements\) but 3 values in contents.fp32_contents/],
    ['nothing sent', request({ shape: [4] }), /but 0 values in contents.fp32_contents \(and no raw_input_contents\)/],
    ['wrong field', request({ shape: [4], contents: { fp64_contents: [1, 2, 3, 4] } }), /values go in contents.fp32_contents; it has values in fp64_contents/],
    ['FP16 typed', request({ shape: [4], datatype: 'FP16', contents: { fp32_contents: [1, 2, 3, 4] } }), /FP16, which has no typed contents field; send it in raw_input_contents/],
    ['INT8 out of range', request({ shape: [4], datatype: 'INT8', contents: { int_contents: [1, 2, 128, 4] } }), /contents.int_contents\[2\] is 128, outside INT8's range \[-128, 127\]/],
    ['UINT16 negative', request({ shape: [4], datatype: 'UINT16', contents: { uint_contents: [1, 2, 3, 70000] } }), /is 70000, outside UINT16's range/],
  ];
  for (const [name, r, message] of cases) {
    const error = t.throws(() => requestRows(r, 'm', signature), { instanceOf: InvalidInputError }, name);
    t.regex(error?.message ?? '', message, name);
  }
});

test('the reply is raw when the inputs were, unless the request asks otherwise', (t) => {
  const base = request({});
  t.true(replyRaw(base, signature, true));
  t.false(replyRaw(base, signature, false));
  t.true(replyRaw({ ...base, parameters: { binary_data_output: { parameter_choice: 'bool_param', bool_param: true } } }, signature, false));
  t.false(replyRaw({ ...base, outputs: [{ name: 'y', parameters: { binary_data: { bool_param: false } } }] }, signature, true));
  t.true(replyRaw({ ...base, outputs: [{ name: 'y' }] }, signature, true), 'naming the output alone changes nothing');
  t.throws(() => replyRaw({ ...base, outputs: [{ name: 'logits' }] }, signature, true), { instanceOf: InvalidInputError, message: /unknown output 'logits'; the model's output is 'y'/ });
});

test('responseTensor: FP32 [N, width] as little-endian bytes or fp32_contents', (t) => {
  const outputs = [new Float32Array([1, 2, 3]), new Float32Array([4, 5, 6.5])];
  const raw = responseTensor(signature, outputs, true);
  t.deepEqual(raw.outputs, [{ name: 'y', datatype: 'FP32', shape: [2, 3] }]);
  const bytes = raw.raw_output_contents[0] as Uint8Array;
  t.deepEqual(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, 6)), [1, 2, 3, 4, 5, 6.5]);
  t.is(new DataView(bytes.buffer, bytes.byteOffset).getFloat32(20, true), 6.5, 'little-endian');
  const typed = responseTensor(signature, outputs, false);
  t.deepEqual(typed.raw_output_contents, []);
  t.deepEqual(typed.outputs, [{ name: 'y', datatype: 'FP32', shape: [2, 3], contents: { fp32_contents: [1, 2, 3, 4, 5, 6.5] } }]);
  t.deepEqual(responseTensor({ ...signature, outputSize: 0 }, outputs, false).outputs[0]?.shape, [2, 3], 'the rows\' width when the size is not known yet');
});

test('parameterValue reads whichever member was sent', (t) => {
  t.is(parameterValue(undefined), undefined);
  t.is(parameterValue({ parameter_choice: 'int64_param', int64_param: 5, bool_param: false }), 5);
  t.is(parameterValue({ bool_param: true }), true);
  t.is(parameterValue({ string_param: 'a' }), 'a');
  t.is(parameterValue({ parameter_choice: 'double_param', double_param: 0.5 }), 0.5);
  t.is(parameterValue({}), undefined);
});
