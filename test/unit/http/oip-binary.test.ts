import test from 'ava';
import fc from 'fast-check';
import { ClipperError, InvalidInputError, InvalidRequestError } from '../../../src/errors.js';
import { binaryInputs, binaryResponse, splitBinaryBody, wantsBinaryOutput } from '../../../src/http/oip-binary.js';
import { requestRows, type ModelSignature, type OipInferRequest } from '../../../src/http/oip.js';

const signature: ModelSignature = { inputName: 'x', featureShape: [2, 2], outputName: 'y', outputSize: 3 };

/** A binary body: the header's JSON text, then the bytes. */
function body(header: object, bytes: Uint8Array): { body: Buffer; length: string } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, bytes]), length: String(json.length) };
}
const f32 = (values: number[]): Buffer => Buffer.from(new Float32Array(values).buffer);
const request = (tensor: Record<string, unknown>, extra: Partial<OipInferRequest> = {}): OipInferRequest =>
  ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2, 2], ...tensor }], ...extra }) as OipInferRequest;

/** The whole pure path a binary infer body takes: split, cut by binary_data_size, rows. */
function decode(b: { body: Buffer; length: string | undefined }): number[][] {
  const { header, binary } = splitBinaryBody(b.body, b.length);
  const parsed = header as OipInferRequest;
  return requestRows(parsed, 'm', signature, binaryInputs(parsed, binary)).map((r) => Array.from(r));
}

test('a JSON header then FP32 bytes becomes rows of the model\'s row size', (t) => {
  const values = [1, 2, 3, 4, 5, 6, 7, 8];
  t.deepEqual(decode(body(request({ parameters: { binary_data_size: 32 } }), f32(values))), [[1, 2, 3, 4], [5, 6, 7, 8]]);
  // One query without a batch dimension, and other datatypes, read as little-endian.
  t.deepEqual(decode(body(request({ shape: [4], datatype: 'INT8', parameters: { binary_data_size: 4 } }), Buffer.from(new Int8Array([-1, 2, -3, 4]).buffer))), [[-1, 2, -3, 4]]);
  t.deepEqual(decode(body(request({ shape: [4], datatype: 'FP16', parameters: { binary_data_size: 8 } }), Buffer.from(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff]).buffer))), [[1, -2, 0.5, 65504]]);
  t.deepEqual(decode(body(request({ shape: [1, 4], datatype: 'FP64', parameters: { binary_data_size: 32 } }), Buffer.from(new Float64Array([0.25, 2, 3, 4]).buffer))), [[0.25, 2, 3, 4]]);
});

test('FP32 rows are views over the body\'s bytes when aligned, one copy when not, the same values either way', (t) => {
  const bytes = new Uint8Array(8 + 16);
  bytes.set(new Uint8Array(new Float32Array([1.5, -2, 3, 4]).buffer), 8);
  const aligned = requestRows(request({ shape: [4] }), 'm', signature, [bytes.subarray(8)]);
  t.is((aligned[0] as Float32Array).buffer, bytes.buffer, 'no copy: a Float32Array over the same memory');
  t.deepEqual(Array.from(aligned[0] as Float32Array), [1.5, -2, 3, 4]);
  const shifted = new Uint8Array(1 + 16);
  shifted.set(bytes.subarray(8), 1);
  const copied = requestRows(request({ shape: [4] }), 'm', signature, [shifted.subarray(1)]);
  t.not((copied[0] as Float32Array).buffer, shifted.buffer);
  t.deepEqual(Array.from(copied[0] as Float32Array), [1.5, -2, 3, 4]);
});

test('each malformed binary body is a 400 naming what was wrong', (t) => {
  const good = request({ parameters: { binary_data_size: 32 } });
  const eight = f32([1, 2, 3, 4, 5, 6, 7, 8]);
  const cases: [string, { body: Buffer; length: string | undefined }, typeof InvalidRequestError | typeof InvalidInputError, RegExp][] = [
    ['missing header', { body: body(good, eight).body, length: undefined }, InvalidRequestError, /needs the Inference-Header-Content-Length header/],
    ['header not a number', { body: body(good, eight).body, length: '12abc' }, InvalidRequestError, /Inference-Header-Content-Length is "12abc"; it must be a whole number/],
    ['negative header', { body: body(good, eight).body, length: '-1' }, InvalidRequestError, /must be a whole number/],
    ['header past the body', { body: body(good, eight).body, length: '100000' }, InvalidRequestError, /Inference-Header-Content-Length is 100000, past the end of the body \(\d+ bytes\)/],
    ['header not JSON', { body: body(good, eight).body, length: '5' }, InvalidRequestError, /the first 5 bytes of the body .* are not JSON/],
    ['header an array', body([1, 2], eight), InvalidRequestError, /must be an infer request object; got an array/],
    ['sizes short of the body', body(request({ parameters: { binary_data_size: 16 } }), eight), InvalidRequestError, /binary_data_size add up to 16 bytes \(x: 16\) but 32 bytes follow the JSON header/],
    ['sizes past the body', body(request({ parameters: { binary_data_size: 64 } }), eight), InvalidRequestError, /add up to 64 bytes .* but 32 bytes follow/],
    ['bytes but no size', body(request({ data: [1, 2, 3, 4, 5, 6, 7, 8] }), eight), InvalidRequestError, /add up to 0 bytes \(x: none\) but 32 bytes/],
    ['size not a number', body(request({ parameters: { binary_data_size: '32' } }), eight), InvalidRequestError, /binary_data_size is "32"; it must be a whole number of bytes/],
    ['size does not match shape x datatype', body(request({ shape: [2, 4], datatype: 'FP64', parameters: { binary_data_size: 32 } }), eight), InvalidInputError, /has 32 bytes; shape \[2, 4\] of FP64 needs 8 x 8 = 64/],
    ['unknown datatype', body(request({ datatype: 'FP8', parameters: { binary_data_size: 32 } }), eight), InvalidInputError, /datatype "FP8"; model m takes numeric tensors \(FP32,/],
    ['prototype key as datatype', body(request({ datatype: 'constructor', parameters: { binary_data_size: 32 } }), eight), InvalidInputError, /datatype "constructor"/],
    ['both data and bytes', body(request({ data: [1, 2, 3, 4, 5, 6, 7, 8], parameters: { binary_data_size: 32 } }), eight), InvalidInputError, /both data and parameters.binary_data_size/],
    ['not a whole row', body(request({ shape: [3], parameters: { binary_data_size: 12 } }), f32([1, 2, 3])), InvalidInputError, /a multiple of 4 elements/],
    ['neither data nor bytes', body(request({}), new Uint8Array(0)), InvalidInputError, /input x has no data; send data, or binary data/],
  ];
  for (const [name, b, Class, message] of cases) {
    const error = t.throws(() => decode(b), { instanceOf: Class as typeof InvalidRequestError }, name);
    t.regex(error?.message ?? '', message, name);
    t.is((error as ClipperError).status, 400, name);
  }
});

test('binary output: per output binary_data over the request\'s binary_data_output, JSON by default', (t) => {
  t.false(wantsBinaryOutput(request({}), signature));
  t.true(wantsBinaryOutput(request({}, { parameters: { binary_data_output: true } }), signature));
  t.true(wantsBinaryOutput(request({}, { outputs: [{ name: 'y', parameters: { binary_data: true } }] }), signature));
  t.false(wantsBinaryOutput(request({}, { parameters: { binary_data_output: true }, outputs: [{ name: 'y', parameters: { binary_data: false } }] }), signature));
  t.true(wantsBinaryOutput(request({}, { parameters: { binary_data_output: true }, outputs: [{ name: 'y' }] }), signature));
  t.throws(() => wantsBinaryOutput(request({}, { outputs: [{ name: 'z' }] }), signature), { instanceOf: InvalidInputError, message: /unknown output 'z'; the model's output is 'y'/ });
  t.throws(() => wantsBinaryOutput(request({}, { parameters: { binary_data_output: 'yes' } }), signature), { instanceOf: InvalidRequestError, message: /binary_data_output is "yes"; it must be true or false/ });
});

test('a binary response is its JSON header, then the rows\' FP32 bytes, binary_data_size naming their length', (t) => {
  const rows = [new Float32Array([0.5, 0.25, 0.25]), new Float32Array([1, 0, -1])];
  const { body: out, headerLength } = binaryResponse(signature, rows, { model_name: 'm', model_version: '1', id: 'q' });
  const header = JSON.parse(out.subarray(0, headerLength).toString());
  t.deepEqual(header, { model_name: 'm', model_version: '1', id: 'q', outputs: [{ name: 'y', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } }] });
  t.is(out.length, headerLength + 24);
  const values = new Float32Array(out.buffer.slice(out.byteOffset + headerLength, out.byteOffset + out.length));
  t.deepEqual(Array.from(values), [0.5, 0.25, 0.25, 1, 0, -1]);
});

test('any body and any length header: rows or a 400 ClipperError, never another failure (fast-check)', (t) => {
  const headerText = fc.oneof(
    fc.string(),
    fc.record({
      inputs: fc.array(
        fc.record({
          name: fc.constantFrom('x', 'y'),
          datatype: fc.constantFrom('FP32', 'FP16', 'INT64', 'UINT8', 'BOOL', 'BYTES', '__proto__', ''),
          shape: fc.array(fc.integer({ min: -2, max: 9 }), { maxLength: 3 }),
          parameters: fc.record({ binary_data_size: fc.oneof(fc.integer({ min: -4, max: 80 }), fc.constant('8'), fc.double()) }, { requiredKeys: [] }),
        }),
        { maxLength: 2 },
      ),
    }).map((r) => JSON.stringify(r)),
  );
  fc.assert(
    fc.property(headerText, fc.uint8Array({ maxLength: 80 }), fc.oneof(fc.constant('exact'), fc.constant(undefined), fc.nat(200).map(String), fc.string()), (text, bytes, length) => {
      const b = Buffer.concat([Buffer.from(text), bytes]);
      const given = length === 'exact' ? String(Buffer.byteLength(text)) : length;
      try {
        const { header } = splitBinaryBody(b, given);
        // A header without an inputs array is the route schema's to refuse (the feature test sends those).
        if (!Array.isArray((header as { inputs?: unknown }).inputs)) return true;
        const rows = decode({ body: b, length: given });
        // Accepted: every row has the model's row size.
        return rows.every((r) => r.length === 4);
      } catch (error) {
        return error instanceof ClipperError && error.status === 400;
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
