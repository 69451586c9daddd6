import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import fc from 'fast-check';
import { digit, loadMnist, projectRoot } from '../../src/index.js';
import { serve, type RunningServer } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';

// The OIP binary tensor data extension over a real socket (Node's fetch) against a real server on the bundled
// mnist-mlp (onnxruntime on worker threads), with real held-out MNIST digits.

const run = promisify(execFile);
const { test: heldOut } = loadMnist();
let server: RunningServer;
const BODY_LIMIT = 256 * 1024;

test.before(async () => {
  // A generous SLO: the suite's other files load the same two cores.
  server = await serve(
    resolveServeSettings(['--port', '0', '--admin-port', '0', '--grpc-port', '0', '--log-level', 'silent', '--slo-ms', '2000', '--max-event-loop-delay-ms', '0', '--body-limit', String(BODY_LIMIT)]),
  );
});
test.after.always(async () => {
  await server?.close();
});

const inferUrl = (): string => `${server.queryUrl}/v2/models/mnist-mlp/infer`;

/** A binary body: the JSON header, then `tensor`'s bytes; the header's length for Inference-Header-Content-Length. */
function binaryBody(header: object, tensor: Uint8Array): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, tensor]), headerLength: json.length };
}

const bytesOf = (values: Float32Array): Buffer => Buffer.from(values.buffer, values.byteOffset, values.byteLength);

/** `rows` digits from `first` on, as one FP32 [rows, 784] tensor's bytes. */
function digits(first: number, rows: number): Float32Array {
  const all = new Float32Array(rows * 784);
  for (let r = 0; r < rows; r++) all.set(digit(heldOut, first + r), r * 784);
  return all;
}

function binaryRequest(values: Float32Array, rows: number, extra: object = {}): { body: Buffer; headerLength: number } {
  return binaryBody({ inputs: [{ name: 'input', shape: [rows, 784], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }], ...extra }, bytesOf(values));
}

async function post(body: Buffer | string, headers: Record<string, string>): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const response = await fetch(inferUrl(), { method: 'POST', headers, body: body as unknown as BodyInit });
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

const binaryHeaders = (headerLength: number, contentType: string | undefined = 'application/octet-stream'): Record<string, string> => ({
  'inference-header-content-length': String(headerLength),
  ...(contentType === undefined ? {} : { 'content-type': contentType }),
});

/** A response's output values, JSON or binary (decoded by its Inference-Header-Content-Length). */
function outputValues(response: { headers: Headers; bytes: Buffer }): { header: any; values: number[] } {
  const length = response.headers.get('inference-header-content-length');
  if (length === null) {
    const json = JSON.parse(response.bytes.toString());
    return { header: json, values: json.outputs[0].data };
  }
  const header = JSON.parse(response.bytes.subarray(0, Number(length)).toString());
  const tensor = response.bytes.subarray(Number(length));
  const copy = new Uint8Array(tensor.length);
  copy.set(tensor);
  return { header, values: Array.from(new Float32Array(copy.buffer)) };
}

const argmax = (values: number[]): number => values.indexOf(Math.max(...values));

test.serial('binary and JSON bodies give the same answers for 1,000 real digits', async (t) => {
  const n = 1000;
  const inFlight = 16;
  const mismatches: string[] = [];
  let largest = 0;
  let correct = 0;
  for (let start = 0; start < n; start += inFlight) {
    await Promise.all(
      Array.from({ length: Math.min(inFlight, n - start) }, async (_, k) => {
        const i = start + k;
        const values = digits(i, 1);
        const json = await post(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: Array.from(values) }] }), { 'content-type': 'application/json' });
        const { body, headerLength } = binaryRequest(values, 1);
        const binary = await post(body, binaryHeaders(headerLength));
        if (json.status !== 200 || binary.status !== 200) {
          mismatches.push(`digit ${i}: JSON ${json.status}, binary ${binary.status} ${binary.bytes.toString().slice(0, 200)}`);
          return;
        }
        const a = outputValues(json).values;
        const b = outputValues(binary).values;
        if (a.length !== 10 || b.length !== 10) mismatches.push(`digit ${i}: ${a.length} and ${b.length} values`);
        if (argmax(a) !== argmax(b)) mismatches.push(`digit ${i}: JSON says ${argmax(a)}, binary ${argmax(b)}`);
        if (argmax(b) === heldOut.labels[i]) correct++;
        for (let j = 0; j < 10; j++) largest = Math.max(largest, Math.abs((a[j] as number) - (b[j] as number)));
      }),
    );
  }
  t.deepEqual(mismatches, []);
  // The same float32 input either way; only the batch a query lands in (its summation order) may move the last bits.
  t.true(largest < 1e-5, `largest difference ${largest}`);
  t.true(correct > 950, `${correct} of ${n} digits classified right`);
});

test.serial('a batch of digits as one binary tensor, and the output asked back as binary', async (t) => {
  const rows = 32;
  const values = digits(1000, rows);
  const { body, headerLength } = binaryRequest(values, rows, { id: 'batch-1', parameters: { binary_data_output: true } });
  const response = await post(body, binaryHeaders(headerLength));
  t.is(response.status, 200, response.bytes.toString().slice(0, 300));
  t.is(response.headers.get('content-type'), 'application/octet-stream');
  const { header, values: out } = outputValues(response);
  t.deepEqual(header, {
    model_name: 'mnist-mlp',
    model_version: '1',
    id: 'batch-1',
    outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [rows, 10], parameters: { binary_data_size: rows * 10 * 4 } }],
  });
  t.is(out.length, rows * 10);
  const json = await post(JSON.stringify({ inputs: [{ name: 'input', shape: [rows, 784], datatype: 'FP32', data: Array.from(values) }] }), { 'content-type': 'application/json' });
  const expected = outputValues(json).values;
  for (let r = 0; r < rows; r++) t.is(argmax(out.slice(r * 10, r * 10 + 10)), argmax(expected.slice(r * 10, r * 10 + 10)), `row ${r}`);
  for (let j = 0; j < out.length; j++) t.true(Math.abs((out[j] as number) - (expected[j] as number)) < 1e-5);

  // A JSON request may ask for a binary output, and a binary one for JSON (the output's binary_data wins).
  const values1 = digits(7, 1);
  const jsonToBinary = await post(
    JSON.stringify({ inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: Array.from(values1) }], outputs: [{ name: 'probabilities', parameters: { binary_data: true } }] }),
    { 'content-type': 'application/json' },
  );
  t.is(jsonToBinary.status, 200);
  t.not(jsonToBinary.headers.get('inference-header-content-length'), null);
  t.is(argmax(outputValues(jsonToBinary).values), heldOut.labels[7]);
  const one = binaryRequest(values1, 1, { parameters: { binary_data_output: true }, outputs: [{ name: 'probabilities', parameters: { binary_data: false } }] });
  const binaryToJson = await post(one.body, binaryHeaders(one.headerLength));
  t.is(binaryToJson.status, 200);
  t.is(binaryToJson.headers.get('inference-header-content-length'), null);
  t.deepEqual(JSON.parse(binaryToJson.bytes.toString()).outputs[0].shape, [1, 10]);
  t.is(argmax(outputValues(binaryToJson).values), heldOut.labels[7]);
});

test.serial('a binary body is taken under any content type the extension allows; the extension is listed', async (t) => {
  const { body, headerLength } = binaryRequest(digits(3, 1), 1);
  for (const type of ['application/octet-stream', 'application/json', undefined]) {
    const response = await post(body, binaryHeaders(headerLength, type));
    t.is(response.status, 200, `${type}: ${response.bytes.toString().slice(0, 200)}`);
    t.is(argmax(outputValues(response).values), heldOut.labels[3], String(type));
  }
  // The versioned route too.
  const versioned = await fetch(`${server.queryUrl}/v2/models/mnist-mlp/versions/1/infer`, { method: 'POST', headers: binaryHeaders(headerLength), body: body as unknown as BodyInit });
  t.is(versioned.status, 200);
  const meta = await (await fetch(`${server.queryUrl}/v2`)).json();
  t.true(meta.extensions.includes('binary_tensor_data'));
});

test.serial('each bad binary body gets 400 with the reason', async (t) => {
  const values = digits(0, 1);
  const good = binaryRequest(values, 1);
  const header = (tensor: object) => ({ inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', parameters: { binary_data_size: 3136 }, ...tensor }] });
  const cases: [string, Buffer, Record<string, string>, string, RegExp][] = [
    ['header length past the body', good.body, binaryHeaders(good.body.length + 1), 'INVALID_REQUEST', /Inference-Header-Content-Length is \d+, past the end of the body/],
    ['header length not a number', good.body, { 'inference-header-content-length': 'ten', 'content-type': 'application/octet-stream' }, 'INVALID_REQUEST', /it must be a whole number of bytes/],
    ['missing header', good.body, { 'content-type': 'application/octet-stream' }, 'INVALID_REQUEST', /needs the Inference-Header-Content-Length header/],
    ['header not JSON', good.body, binaryHeaders(10), 'INVALID_REQUEST', /first 10 bytes of the body .* are not JSON/],
    ['sizes do not add up to the body', good.body.subarray(0, good.body.length - 4), binaryHeaders(good.headerLength), 'INVALID_REQUEST', /add up to 3136 bytes \(input: 3136\) but 3132 bytes follow the JSON header/],
    [
      'size does not match shape x datatype',
      binaryBody(header({ shape: [1, 784], datatype: 'FP64' }), bytesOf(values)).body,
      binaryHeaders(binaryBody(header({ datatype: 'FP64' }), bytesOf(values)).headerLength),
      'INVALID_INPUT',
      /has 3136 bytes; shape \[1, 784\] of FP64 needs 784 x 8 = 6272/,
    ],
    ['unknown datatype', binaryBody(header({ datatype: 'FP8' }), bytesOf(values)).body, binaryHeaders(binaryBody(header({ datatype: 'FP8' }), bytesOf(values)).headerLength), 'INVALID_INPUT', /datatype "FP8"; model mnist-mlp takes numeric tensors/],
    ['header fails the schema', binaryBody({ inputs: 'x' }, bytesOf(values)).body, binaryHeaders(binaryBody({ inputs: 'x' }, bytesOf(values)).headerLength), 'INVALID_REQUEST', /invalid request: body\/inputs must be array/],
  ];
  for (const [name, body, headers, code, reason] of cases) {
    const response = await post(body, headers);
    t.is(response.status, 400, name);
    const json = JSON.parse(response.bytes.toString());
    t.is(json.code, code, name);
    t.regex(json.error, reason, name);
  }
  // Over the body limit: 413 before anything is parsed.
  const huge = binaryRequest(digits(0, 100), 100);
  t.is((await post(huge.body, binaryHeaders(huge.headerLength))).status, 413);
});

test.serial('malformed binary bodies (fast-check): only 400s come back, and the server stays up', async (t) => {
  const values = bytesOf(digits(5, 1));
  const mutation = fc.oneof(
    // Random bytes with a random header length.
    fc.record({ kind: fc.constant('bytes'), bytes: fc.uint8Array({ maxLength: 600 }), length: fc.oneof(fc.nat(700).map(String), fc.string({ maxLength: 8 })) }),
    // A well-formed header whose size, shape or datatype do not fit the bytes that follow.
    fc.record({
      kind: fc.constant('header'),
      size: fc.oneof(fc.integer({ min: -10, max: 7000 }).filter((n) => n !== 3136), fc.constant('3136'), fc.double()),
      shape: fc.oneof(fc.constant([1, 784]), fc.array(fc.integer({ min: -2, max: 800 }), { maxLength: 3 })),
      // None fits in 3,136 bytes or fewer but FP32 [1, 784], whose size is never 3136 here.
      datatype: fc.constantFrom('FP32', 'FP64', 'INT64', 'BOOL', 'BYTES', 'fp32', '__proto__'),
      cut: fc.nat(3136),
    }),
  );
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(mutation, async (m) => {
      let body: Buffer;
      let headers: Record<string, string>;
      if (m.kind === 'bytes') {
        body = Buffer.from(m.bytes);
        headers = { 'inference-header-content-length': m.length, 'content-type': 'application/octet-stream' };
      } else {
        const built = binaryBody({ inputs: [{ name: 'input', shape: m.shape, datatype: m.datatype, parameters: { binary_data_size: m.size } }] }, values.subarray(0, 3136 - m.cut));
        body = built.body;
        headers = binaryHeaders(built.headerLength);
      }
      const response = await post(body, headers);
      sent++;
      const json = JSON.parse(response.bytes.toString());
      return response.status === 400 && (json.code === 'INVALID_REQUEST' || json.code === 'INVALID_INPUT') && typeof json.error === 'string';
    }),
    { numRuns: 300 },
  );
  t.is(sent, 300);
  const { body, headerLength } = binaryRequest(digits(9, 1), 1);
  const after = await post(body, binaryHeaders(headerLength));
  t.is(after.status, 200, 'the server still answers');
  t.is(argmax(outputValues(after).values), heldOut.labels[9]);
});

/** The code block right after an `<!-- example: name -->` marker in the README. */
function readmeExample(name: string): string {
  const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const at = readme.indexOf(`<!-- example: ${name} -->`);
  const match = /```[a-z]*\n([\s\S]*?)```/.exec(readme.slice(at));
  if (at < 0 || match === null) throw new Error(`README has no example ${name}`);
  return match[1] as string;
}

test.serial('the README\'s binary examples run as written: curl with a blank image, Node with a real digit', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clipper-binary-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, CLIPPER_URL: server.queryUrl };
  const curl = await run('bash', ['-c', readmeExample('curl-binary')], { cwd: dir, env, timeout: 30_000 });
  const blank = JSON.parse(curl.stdout);
  t.is(blank.model_name, 'mnist-mlp');
  t.deepEqual(blank.outputs[0].shape, [1, 10]);
  t.is(blank.outputs[0].data.length, 10);
  // Written inside the project, so `import ... from 'clipper-ts'` resolves to this package as it does for users.
  const file = path.join(projectRoot, '.readme-binary-example.mjs');
  writeFileSync(file, readmeExample('node-binary'));
  t.teardown(() => rmSync(file, { force: true }));
  const node = await run(process.execPath, [file], { cwd: projectRoot, env, timeout: 60_000 });
  const answer = JSON.parse(node.stdout.trim());
  t.is(answer.predicted, answer.label, 'the MLP reads the first held-out digit right');
  t.deepEqual(answer.output, { name: 'probabilities', datatype: 'FP32', shape: [1, 10], parameters: { binary_data_size: 40 } });
});
