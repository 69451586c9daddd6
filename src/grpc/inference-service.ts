import { Metadata, status, type handleUnaryCall, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { Cancellation, DeadlineExceededError, InvalidInputError, type Clipper, type ModelSignatureInfo } from '../index.js';
import { toGrpcFailure } from './grpc-status.js';
import { parameterValue, replyRaw, requestRows, responseTensor, type ModelInferRequest, type TensorSignature } from './tensor-codec.js';

/** What the service needs of the system: the public facade's serving and metadata calls (a fake in unit tests). */
export type InferenceBackend = Pick<Clipper, 'ready' | 'describeModel' | 'modelSignature' | 'getModel' | 'infer'>;

export interface InferenceServiceOptions {
  clipper: InferenceBackend;
  /** Server name and version for ServerMetadata. */
  name: string;
  version: string;
  /** The deadline of a query with neither a gRPC deadline, a `timeout` parameter nor a linked application, ms. */
  inferTimeoutMs: number;
  /** Called with every failure that is a bug (INTERNAL), for the log. */
  onInternalError?: (error: unknown) => void;
  /** Wall-clock ms (gRPC deadlines are wall-clock times); injectable for tests. */
  now?: () => number;
  /** Traces each ModelInfer call (a server span, W3C `traceparent` metadata in and out); none when absent. */
  tracer?: Tracer;
}

const propagator = new W3CTraceContextPropagator();
const metadataGetter: TextMapGetter<Metadata> = {
  get: (carrier, key) => carrier.get(key).map(String),
  keys: (carrier) => Object.keys(carrier.getMap()),
};

/**
 * A server span for one call, child of the caller's `traceparent` metadata when it sends one; its own context
 * goes back in the response's initial metadata, as the HTTP adapter returns it in a header.
 */
function startCallSpan(tracer: Tracer, call: ServerUnaryCall<unknown, unknown>, rpc: string): Span {
  const parent = propagator.extract(ROOT_CONTEXT, call.metadata, metadataGetter);
  const span = tracer.startSpan(`inference.GRPCInferenceService/${rpc}`, { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': 'inference.GRPCInferenceService', 'rpc.method': rpc } }, parent);
  const reply = new Metadata();
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), reply, { set: (carrier, key, value) => carrier.set(key, value) });
  call.sendMetadata(reply);
  return span;
}

/** Longest `timeout` parameter accepted, µs (ten minutes, as the HTTP adapter's bound). */
const MAX_TIMEOUT_MICROSECONDS = 600_000_000;

const signatureOf = (info: Pick<ModelSignatureInfo, 'input' | 'output'>): TensorSignature => ({
  inputName: info.input.name ?? 'input',
  featureShape: info.input.shape,
  outputName: info.output.name ?? 'output',
  outputSize: info.output.size,
});

/** An empty string is proto3's "not set": the model's current version. */
const versionOf = (version: string | undefined): string | undefined => (version === undefined || version === '' ? undefined : version);

/**
 * How long a ModelInfer query may take, ms. A gRPC deadline on the call and a `timeout` parameter (µs, as
 * Triton's) both bound it and the tighter wins: past the call's deadline the client has gone, whatever the
 * parameter said. With neither, the query gets what the HTTP OIP adapter gives it: the tightest SLO of the
 * applications its model serves (so admission control applies), else the server's default infer timeout.
 */
export function inferTimeoutMs(request: ModelInferRequest, callDeadline: Date | number, info: Pick<ModelSignatureInfo, 'linkedSloMs'>, defaultMs: number, now: number): number {
  const bounds: number[] = [];
  const deadline = callDeadline instanceof Date ? callDeadline.getTime() : callDeadline;
  if (Number.isFinite(deadline)) bounds.push(deadline - now);
  const timeout = parameterValue(request.parameters?.timeout);
  if (timeout !== undefined) {
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MICROSECONDS) {
      throw new InvalidInputError(`parameter timeout is ${JSON.stringify(timeout)}; it must be an integer number of microseconds in [1, ${MAX_TIMEOUT_MICROSECONDS}]`);
    }
    bounds.push(timeout / 1000);
  }
  return bounds.length > 0 ? Math.min(...bounds) : (info.linkedSloMs ?? defaultMs);
}

/** Highest `priority` parameter accepted (the HTTP adapter's bound: a 32-bit signed integer). */
const MAX_PRIORITY = 2_147_483_647;

/**
 * The query's scheduling priority from the `priority` parameter (Triton's scheduling extension, as the HTTP
 * OIP adapter takes it): 1 most urgent, larger numbers less, 0 or absent the default level.
 */
export function inferPriority(request: ModelInferRequest): number | undefined {
  const priority = parameterValue(request.parameters?.priority);
  if (priority === undefined) return undefined;
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
    throw new InvalidInputError(`parameter priority is ${JSON.stringify(priority)}; it must be an integer in [0, ${MAX_PRIORITY}] (1 most urgent, 0 the default level)`);
  }
  return priority;
}

/** A unary handler from a function of the request: its result is the reply, its failure the call's status. */
function unary<Req, Res>(work: (call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>, onInternalError: (error: unknown) => void): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => work(call))
      .then(
        (reply) => callback(null, reply),
        (error: unknown) => {
          const failure = toGrpcFailure(error);
          if (failure.code === status.INTERNAL) onInternalError(error);
          callback(failure);
        },
      );
  };
}

/**
 * The handlers of `inference.GRPCInferenceService` (grpc_service.proto), on the public facade. They answer
 * as the HTTP OIP endpoints do: the same readiness, metadata, outputs and errors, with the error catalogue's
 * HTTP statuses turned into gRPC codes (grpc-status.ts).
 */
export function inferenceService(options: InferenceServiceOptions): UntypedServiceImplementation {
  const { clipper } = options;
  const now = options.now ?? Date.now;
  const onInternalError = options.onInternalError ?? (() => {});
  /** ModelInfer itself; `span` (tracing on) is the parent of the query's spans. */
  async function modelInfer(call: ServerUnaryCall<ModelInferRequest, unknown>, span: Span | undefined) {
    const request = call.request;
    const model = request.model_name;
    const info = clipper.modelSignature(model, versionOf(request.model_version));
    const signature = signatureOf(info);
    const { rows, raw } = requestRows(request, model, signature);
    const rawReply = replyRaw(request, signature, raw);
    const timeoutMs = inferTimeoutMs(request, call.getDeadline(), info, options.inferTimeoutMs, now());
    if (timeoutMs <= 0) throw new DeadlineExceededError(`the call's deadline passed before model ${model} could take it`);
    const priority = inferPriority(request);
    // A cancelled call (client gone, deadline passed) drops its rows still queued, unrun.
    const cancel = new Cancellation();
    call.once('cancelled', () => cancel.abort());
    const outputs = await clipper.infer(model, rows, { version: info.version, timeoutMs, signal: cancel, ...(priority === undefined ? {} : { priority }), ...(span === undefined ? {} : { trace: trace.setSpan(ROOT_CONTEXT, span) }) });
    return { model_name: model, model_version: info.version, id: request.id, ...responseTensor(signature, outputs, rawReply) };
  }
  const handlers = {
    ServerLive: () => ({ live: true }),
    ServerReady: () => ({ ready: clipper.ready }),
    ServerMetadata: () => ({ name: options.name, version: options.version, extensions: [] as string[] }),
    ModelReady: (call: ServerUnaryCall<{ name: string; version: string }, unknown>) => ({
      // describeModel throws UNKNOWN_MODEL / UNKNOWN_VERSION (NOT_FOUND) for names that are not deployed.
      ready: clipper.describeModel(call.request.name, versionOf(call.request.version)).ready,
    }),
    ModelMetadata: (call: ServerUnaryCall<{ name: string; version: string }, unknown>) => {
      const { name } = call.request;
      const info = clipper.describeModel(name, versionOf(call.request.version));
      const signature = signatureOf(info);
      return {
        name,
        versions: clipper.getModel(name).versions.map((v) => v.version),
        platform: info.platform === 'onnx' ? 'onnxruntime_onnx' : 'javascript',
        inputs: [{ name: signature.inputName, datatype: info.input.dtype === 'int32' ? 'INT32' : 'FP32', shape: [-1, ...signature.featureShape] }],
        outputs: [{ name: signature.outputName, datatype: 'FP32', shape: [-1, signature.outputSize] }],
      };
    },
    ModelInfer: async (call: ServerUnaryCall<ModelInferRequest, unknown>) => {
      if (options.tracer === undefined) return modelInfer(call, undefined);
      const span = startCallSpan(options.tracer, call as ServerUnaryCall<unknown, unknown>, 'ModelInfer');
      try {
        return await modelInfer(call, span);
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        throw error;
      } finally {
        span.end();
      }
    },
  };
  return Object.fromEntries(Object.entries(handlers).map(([rpc, work]) => [rpc, unary(work as (call: ServerUnaryCall<unknown, unknown>) => unknown, onInternalError)]));
}
