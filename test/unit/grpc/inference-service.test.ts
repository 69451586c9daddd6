import { Metadata, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import test from 'ava';
import { DeadlineExceededError, OverloadedError, UnknownModelError, type CancelSignal, type ModelVersionInfo } from '../../../src/index.js';
import { inferenceService, inferPriority, inferTimeoutMs, type InferenceBackend } from '../../../src/grpc/inference-service.js';
import type { ModelInferRequest } from '../../../src/grpc/tensor-codec.js';

// The handlers on a fake backend and fake calls: no sockets, no threads. The clock is a fixed number.

const NOW = 1_000_000;

function info(overrides: Partial<ModelVersionInfo> = {}): ModelVersionInfo {
  return {
    model: 'm',
    version: '3',
    current: true,
    path: '/m/3/model.onnx',
    platform: 'onnx',
    input: { name: 'x', dtype: 'float32', shape: [2] },
    output: { name: 'y', size: 2, kind: 'regression' },
    ready: true,
    linkedSloMs: undefined,
    ...overrides,
  } as ModelVersionInfo;
}

interface Fake {
  backend: InferenceBackend;
  inferCalls: { model: string; rows: number[][]; options: { version?: string; timeoutMs?: number } }[];
  /** The abort signal each infer call was given. */
  signals: (CancelSignal | undefined)[];
}

function fake(overrides: { describe?: Partial<ModelVersionInfo>; infer?: () => Promise<Float32Array[]> } = {}): Fake {
  const inferCalls: Fake['inferCalls'] = [];
  const signals: Fake['signals'] = [];
  const describe = (model: string): ModelVersionInfo => {
    if (model !== 'm') throw new UnknownModelError(`no model named ${JSON.stringify(model)}`);
    return info(overrides.describe);
  };
  const backend = {
    ready: true,
    describeModel: describe,
    modelSignature: describe,
    getModel: () => ({ name: 'm', currentVersion: '3', versions: [info({ version: '2' }), info()], linkedApps: [] }),
    async infer(model: string, rows: readonly unknown[], options: { version?: string; timeoutMs?: number; signal?: CancelSignal } = {}) {
      const { signal, ...rest } = options;
      signals.push(signal);
      inferCalls.push({ model, rows: (rows as ArrayLike<number>[]).map((r) => Array.from(r)), options: rest });
      if (overrides.infer !== undefined) return overrides.infer();
      return (rows as ArrayLike<number>[]).map((r) => new Float32Array([(r[0] as number) + (r[1] as number), 0]));
    },
  } as unknown as InferenceBackend;
  return { backend, inferCalls, signals };
}

/** Calls one handler as grpc-js would; resolves with the reply or the status it failed with. */
function invoke(f: Fake, rpc: string, request: object, deadline: Date | number = Infinity, emitter = new EventEmitter()): Promise<{ reply?: any; error?: { code: status; details: string; metadata: Metadata } }> {
  const handlers = inferenceService({ clipper: f.backend, name: 'clipper-ts', version: '9.9.9', inferTimeoutMs: 1000, now: () => NOW });
  // A call is an EventEmitter ('cancelled' when the client cancels).
  const call = Object.assign(emitter, { request, getDeadline: () => deadline, metadata: new Metadata() }) as unknown as ServerUnaryCall<unknown, unknown>;
  return new Promise((resolve) => {
    const callback: sendUnaryData<unknown> = (error, reply) => resolve(error === null ? { reply } : { error: error as { code: status; details: string; metadata: Metadata } });
    (handlers[rpc] as (c: typeof call, cb: typeof callback) => void)(call, callback);
  });
}

const inferRequest = (extra: Partial<ModelInferRequest> = {}): ModelInferRequest => ({
  model_name: 'm',
  model_version: '',
  id: 'q',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2], contents: { fp32_contents: [1, 2, 3, 4] } }],
  ...extra,
});

test('health and metadata come from the facade', async (t) => {
  const f = fake();
  t.deepEqual((await invoke(f, 'ServerLive', {})).reply, { live: true });
  t.deepEqual((await invoke(f, 'ServerReady', {})).reply, { ready: true });
  t.deepEqual((await invoke(f, 'ServerMetadata', {})).reply, { name: 'clipper-ts', version: '9.9.9', extensions: [] });
  t.deepEqual((await invoke(f, 'ModelReady', { name: 'm', version: '' })).reply, { ready: true });
  t.deepEqual((await invoke(f, 'ModelMetadata', { name: 'm', version: '' })).reply, {
    name: 'm',
    versions: ['2', '3'],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }],
  });
  const missing = await invoke(f, 'ModelMetadata', { name: 'nope', version: '' });
  t.is(missing.error?.code, status.NOT_FOUND);
});

test('ModelInfer passes the rows, the resolved version and the deadline to Clipper.infer', async (t) => {
  const f = fake();
  const { reply } = await invoke(f, 'ModelInfer', inferRequest(), NOW + 250);
  t.deepEqual(f.inferCalls, [{ model: 'm', rows: [[1, 2], [3, 4]], options: { version: '3', timeoutMs: 250 } }]);
  t.is(reply.model_version, '3');
  t.is(reply.id, 'q');
  t.deepEqual(reply.outputs[0].contents.fp32_contents, [3, 0, 7, 0]);
});

test('a cancelled call aborts the signal Clipper.infer was given (its queued rows are then dropped)', async (t) => {
  const f = fake();
  const call = new EventEmitter();
  await invoke(f, 'ModelInfer', inferRequest(), NOW + 250, call);
  const signal = f.signals[0];
  t.false(signal?.aborted ?? true);
  call.emit('cancelled');
  t.true(signal?.aborted);
});

test('which deadline wins: the tighter of the call\'s and the timeout parameter, else the linked SLO, else the default', (t) => {
  const timeout = (us: number) => ({ timeout: { parameter_choice: 'int64_param' as const, int64_param: us } });
  const r = inferRequest();
  t.is(inferTimeoutMs(r, NOW + 250, info(), 1000, NOW), 250, 'the gRPC deadline');
  t.is(inferTimeoutMs(r, new Date(NOW + 40), info(), 1000, NOW), 40, 'a Date deadline');
  t.is(inferTimeoutMs(inferRequest({ parameters: timeout(100_000) }), NOW + 250, info(), 1000, NOW), 100, 'a tighter timeout parameter');
  t.is(inferTimeoutMs(inferRequest({ parameters: timeout(900_000) }), NOW + 250, info(), 1000, NOW), 250, 'a tighter gRPC deadline');
  t.is(inferTimeoutMs(inferRequest({ parameters: timeout(900_000) }), Infinity, info(), 1000, NOW), 900);
  t.is(inferTimeoutMs(r, Infinity, info({ linkedSloMs: 20 }), 1000, NOW), 20, "the linked application's SLO");
  t.is(inferTimeoutMs(r, Infinity, info(), 1000, NOW), 1000, "the server's default");
  t.throws(() => inferTimeoutMs(inferRequest({ parameters: timeout(0) }), Infinity, info(), 1000, NOW), { message: /parameter timeout is 0/ });
});

test('the priority parameter reaches Clipper.infer as the query\'s priority; a bad one is INVALID_ARGUMENT and runs nothing', async (t) => {
  const f = fake();
  await invoke(f, 'ModelInfer', inferRequest({ parameters: { priority: { parameter_choice: 'uint64_param', uint64_param: 1 } } }), NOW + 250);
  await invoke(f, 'ModelInfer', inferRequest(), NOW + 250);
  t.deepEqual(
    f.inferCalls.map((c) => c.options),
    [
      { version: '3', timeoutMs: 250, priority: 1 },
      { version: '3', timeoutMs: 250 },
    ],
  );
  for (const bad of [{ int64_param: -1 }, { int64_param: 2 ** 31 }, { double_param: 1.5 }, { string_param: 'high' }, { bool_param: true }]) {
    const { error } = await invoke(f, 'ModelInfer', inferRequest({ parameters: { priority: bad } }), NOW + 250);
    t.is(error?.code, status.INVALID_ARGUMENT, JSON.stringify(bad));
    t.regex(error?.details ?? '', /^parameter priority is .*; it must be an integer in \[0, 2147483647\]/);
  }
  t.is(f.inferCalls.length, 2, 'no bad priority reached the model');
  t.is(inferPriority(inferRequest({ parameters: { priority: { int64_param: 0 } } })), 0, '0 is the default level, accepted');
  t.is(inferPriority(inferRequest()), undefined);
});

test('a deadline already past is DEADLINE_EXCEEDED without running the model', async (t) => {
  const f = fake();
  const { error } = await invoke(f, 'ModelInfer', inferRequest(), NOW - 1);
  t.is(error?.code, status.DEADLINE_EXCEEDED);
  t.deepEqual(f.inferCalls, []);
});

test('the facade\'s failures become the status of their HTTP equivalents', async (t) => {
  const overloaded = await invoke(fake({ infer: async () => Promise.reject(new OverloadedError('queue full', 2)) }), 'ModelInfer', inferRequest());
  t.is(overloaded.error?.code, status.UNAVAILABLE);
  t.deepEqual(overloaded.error?.metadata.get('retry-after'), ['2']);
  const late = await invoke(fake({ infer: async () => Promise.reject(new DeadlineExceededError('too slow')) }), 'ModelInfer', inferRequest());
  t.is(late.error?.code, status.DEADLINE_EXCEEDED);
  const bug = await invoke(fake({ infer: async () => Promise.reject(new TypeError('oops')) }), 'ModelInfer', inferRequest());
  t.is(bug.error?.code, status.INTERNAL);
  const bad = await invoke(fake(), 'ModelInfer', inferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [3] }] }));
  t.is(bad.error?.code, status.INVALID_ARGUMENT);
});
