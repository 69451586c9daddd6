import { performance } from 'node:perf_hooks';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions, type HookHandlerDoneFunction } from 'fastify';
import type { Tracer } from '@opentelemetry/api';
import { Cancellation, CancelledError, ClipperError, OverloadedError, type Answer, type Clipper, type ModelSignatureInfo } from '../index.js';
import type { ServerMetrics } from './metrics.js';
import { requestRows, responseTensor, type ModelSignature, type OipInferRequest } from './oip.js';
import { binaryInputs, binaryResponse, HEADER_LENGTH, splitBinaryBody, wantsBinaryOutput } from './oip-binary.js';
import { installErrorHandling } from './http-errors.js';
import { queuesBehind } from './lag-guard.js';
import { requestTraceContext, traceRequests } from './tracing.js';

export interface QueryServerOptions {
  clipper: Clipper;
  metrics: ServerMetrics;
  /** Largest request body, bytes (Fastify `bodyLimit`). */
  bodyLimit: number;
  /** Most values in one request's arrays. */
  maxArrayLength: number;
  /** Default per-request timeout for OIP infer, ms (overridable with `parameters.timeout`, microseconds). */
  inferTimeoutMs: number;
  logger: FastifyServerOptions['logger'];
  version: string;
  /** Above this mean event-loop delay, queries are refused with 503 before their body is read; 0 turns it off. */
  maxEventLoopDelayMs: number;
  /** The status of a query refused for overload: 503 (default) or 429. */
  shedStatus?: 429 | 503;
  /** Whether the server is ready for queries; default `clipper.ready`. */
  ready?: () => boolean;
  /** Traces each query request (a server span, W3C `traceparent` in and out); none when absent. */
  tracer?: Tracer;
}

const numberArray = { type: 'array' } as const;

/** Clipper's REST shape for one answer. */
function clipperAnswer(answer: Answer): Record<string, unknown> {
  return {
    query_id: answer.queryId,
    output: answer.output,
    default: answer.isDefault,
    ...(answer.explanation === undefined ? {} : { default_explanation: answer.explanation }),
    ...(answer.model === undefined ? {} : { model: answer.model, model_version: answer.version }),
    ...(answer.confidence === undefined ? {} : { confidence: answer.confidence }),
    ...(answer.missing === undefined ? {} : { missing_models: answer.missing }),
  };
}

/**
 * A request's cancel signal: it aborts when the client disconnects before its reply is sent (the response
 * closes unfinished), and the request's queries still queued are then dropped unrun.
 */
function cancelOnDisconnect(reply: FastifyReply): Cancellation {
  const cancellation = new Cancellation();
  const response = reply.raw;
  response.once('close', () => {
    if (!response.writableFinished) cancellation.abort();
  });
  return cancellation;
}

/**
 * The query port: Clipper's REST API (`POST /{app}/predict`, `POST /{app}/update`), the Open Inference
 * Protocol (`/v2/...`: metadata, health, infer) and Prometheus `/metrics`.
 */
export function createQueryServer(options: QueryServerOptions): FastifyInstance {
  const { clipper, metrics } = options;
  const app = Fastify({
    logger: options.logger,
    bodyLimit: options.bodyLimit,
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
    // No type coercion: `{"input": 5}` is an error, not `[5]`.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  });
  const shedStatus = options.shedStatus ?? 503;
  installErrorHandling(app, { shedStatus });
  if (options.tracer !== undefined) traceRequests(app, options.tracer);
  if (options.maxEventLoopDelayMs > 0) {
    // Shedding before the body is even parsed: when the event loop itself is behind, every query queued in
    // front of our own admission control would miss its SLO anyway, and parsing it would only deepen the hole.
    // But only when the queues are behind too: lag alone is most often one GC pause (issue 15). Their state is
    // read at most every 50 ms, and only while the loop lags.
    let behind = false;
    let behindAt = -Infinity;
    const queuesAreBehind = (): boolean => {
      const now = performance.now();
      if (now - behindAt >= 50) {
        behind = queuesBehind(clipper.getModels());
        behindAt = now;
      }
      return behind;
    };
    app.register(underPressure, {
      maxEventLoopDelay: options.maxEventLoopDelayMs,
      sampleInterval: 100,
      retryAfter: 1,
      // The plugin sends a returned value itself (its README: "any other return value than a promise or nullish
      // will be sent to the client"); its types say the handler returns void.
      pressureHandler: ((request: FastifyRequest, reply: FastifyReply, _type: string, value: number | undefined) => {
        if (request.url.startsWith('/v2/health') || request.url === '/metrics') return undefined;
        if (!queuesAreBehind()) return undefined;
        metrics.edgeRefusals['event-loop-lag']++;
        const error = new OverloadedError(
          // The plugin reports Infinity when the loop was blocked for a whole sample.
          `server overloaded: the event loop is ${Number.isFinite(Number(value)) ? `${Number(value).toFixed(0)} ms` : 'over 100 ms'} behind (limit ${options.maxEventLoopDelayMs} ms); retry later`,
          1,
        );
        // Returned, not sent: the plugin sends a returned body and stops there. Sent here, the request went on
        // to its handler (the reply is not yet `sent` while the server's async onSend hook runs), and the shed
        // query was parsed, counted and queued behind its own 503.
        reply.code(shedStatus).header('retry-after', String(error.retryAfterSeconds));
        return error.toJSON();
      }) as (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => void,
    });
  }

  const arrayLimit = { ...numberArray, maxItems: options.maxArrayLength };

  // ---- Clipper REST ----
  app.post<{ Params: { app: string }; Body: { input?: unknown[]; input_batch?: unknown[][]; uid?: string } }>(
    '/:app/predict',
    {
      schema: {
        body: {
          type: 'object',
          properties: { input: arrayLimit, input_batch: { type: 'array', maxItems: 10_000, items: arrayLimit }, uid: { type: 'string', maxLength: 256 } },
          oneOf: [{ required: ['input'] }, { required: ['input_batch'] }],
        },
      },
      // Under overload a query is refused before its body is read or parsed (Clipper.refuseUnread): the
      // refusal is the one admission would give, and costs the main thread no JSON parse, validation or copy.
      onRequest: (request, _reply, done) => {
        const name = request.params.app;
        const refusal = clipper.refuseUnread(name);
        if (refusal !== undefined) metrics.failed(name, 'refused');
        done(refusal);
      },
    },
    async (request, reply) => {
      const name = request.params.app;
      const trace = requestTraceContext(request);
      const context = { ...(request.body.uid === undefined ? {} : { uid: request.body.uid }), ...(trace === undefined ? {} : { trace }) };
      try {
        if (request.body.input_batch !== undefined) {
          const answers = await clipper.predictBatch(name, request.body.input_batch, context);
          for (const a of answers) metrics.answered(name, a);
          return { batch_predictions: answers.map(clipperAnswer) };
        }
        const answer = await clipper.predict(name, request.body.input, context);
        metrics.answered(name, answer);
        return clipperAnswer(answer);
      } catch (error) {
        metrics.failed(name, error instanceof OverloadedError ? 'refused' : error instanceof ClipperError && error.status < 500 ? 'invalid' : 'error');
        throw error;
      }
    },
  );

  app.post<{ Params: { app: string }; Body: { input: unknown[]; label: number; uid?: string } }>(
    '/:app/update',
    {
      schema: {
        body: {
          type: 'object',
          required: ['input', 'label'],
          properties: { input: arrayLimit, label: { type: 'number' }, uid: { type: 'string', maxLength: 256 } },
        },
      },
    },
    async (request, reply) => {
      const result = await clipper.feedback(request.params.app, request.body.input, request.body.label, request.body.uid === undefined ? {} : { uid: request.body.uid });
      reply.code(200);
      return { app: request.params.app, applied: true, losses: result.losses };
    },
  );

  // ---- Open Inference Protocol ----
  app.get('/v2', async () => ({ name: 'clipper-ts', version: options.version, extensions: ['model_repository', 'binary_tensor_data'] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  const isReady = options.ready ?? (() => clipper.ready);
  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = isReady();
    reply.code(ready ? 200 : 503);
    return { ready };
  });

  const signatureOf = (info: Pick<ModelSignatureInfo, 'input' | 'output'>): ModelSignature => ({
    inputName: info.input.name ?? 'input',
    featureShape: info.input.shape,
    outputName: info.output.name ?? 'output',
    outputSize: info.output.size,
  });

  const metadata = async (request: { params: { model: string; version?: string } }) => {
    // getModel and describeModel throw UNKNOWN_MODEL / UNKNOWN_VERSION (404) for names that are not deployed.
    const info = clipper.describeModel(request.params.model, request.params.version);
    const signature = signatureOf(info);
    return {
      name: request.params.model,
      versions: clipper.getModel(request.params.model).versions.map((v) => v.version),
      platform: info.platform === 'onnx' ? 'onnxruntime_onnx' : 'javascript',
      inputs: [{ name: signature.inputName, datatype: info.input.dtype === 'int32' ? 'INT32' : 'FP32', shape: [-1, ...signature.featureShape] }],
      outputs: [{ name: signature.outputName, datatype: 'FP32', shape: [-1, signature.outputSize] }],
    };
  };
  app.get<{ Params: { model: string } }>('/v2/models/:model', metadata);
  app.get<{ Params: { model: string; version: string } }>('/v2/models/:model/versions/:version', metadata);

  const modelReady = async (request: { params: { model: string; version?: string } }, reply: { code(n: number): unknown }) => {
    const ready = clipper.describeModel(request.params.model, request.params.version).ready;
    reply.code(ready ? 200 : 503);
    return { name: request.params.model, ready };
  };
  app.get<{ Params: { model: string } }>('/v2/models/:model/ready', modelReady);
  app.get<{ Params: { model: string; version: string } }>('/v2/models/:model/versions/:version/ready', modelReady);

  const inferSchema = {
    body: {
      type: 'object',
      required: ['inputs'],
      properties: {
        id: { type: 'string', maxLength: 256 },
        inputs: {
          type: 'array',
          minItems: 1,
          maxItems: 16,
          items: {
            type: 'object',
            // `data` or, for a tensor sent as binary data, parameters.binary_data_size (checked by requestRows).
            required: ['name', 'shape', 'datatype'],
            properties: {
              name: { type: 'string', maxLength: 256 },
              shape: { type: 'array', maxItems: 8, items: { type: 'integer', minimum: 0 } },
              datatype: { type: 'string', maxLength: 16 },
              data: { type: 'array', maxItems: options.maxArrayLength },
              parameters: { type: 'object' },
            },
          },
        },
        outputs: { type: 'array', maxItems: 16, items: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, parameters: { type: 'object' } } } },
        parameters: { type: 'object', properties: { timeout: { type: 'integer', minimum: 1, maximum: 600_000_000 }, priority: { type: 'integer', minimum: 0, maximum: 2_147_483_647 } } },
      },
    },
  };
  // The binary tensor data extension: a body with an Inference-Header-Content-Length header is a JSON header
  // followed by tensor bytes, whatever its Content-Type says (Triton's clients send none, or JSON, or
  // octet-stream); it is read as one Buffer (under the body limit), its JSON header validated by the route's
  // schema as a JSON body is, and its bytes kept aside for requestRows.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  const binaryBodies = new WeakMap<FastifyRequest, Buffer>();
  const binaryHooks = {
    onRequest: (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
      if (request.headers[HEADER_LENGTH] !== undefined) request.raw.headers['content-type'] = 'application/octet-stream';
      done();
    },
    preValidation: (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
      if (Buffer.isBuffer(request.body)) {
        try {
          const { header, binary } = splitBinaryBody(request.body, request.headers[HEADER_LENGTH]);
          request.body = header;
          binaryBodies.set(request, binary);
        } catch (error) {
          done(error as Error);
          return;
        }
      }
      done();
    },
  };
  const infer = async (request: FastifyRequest<{ Params: { model: string; version?: string }; Body: OipInferRequest }>, reply: FastifyReply) => {
    const started = performance.now();
    const info = clipper.modelSignature(request.params.model, request.params.version);
    const signature = signatureOf(info);
    const version = info.version;
    const binary = binaryBodies.get(request);
    const rows = requestRows(request.body, request.params.model, signature, binary === undefined ? undefined : binaryInputs(request.body, binary));
    const binaryOutput = wantsBinaryOutput(request.body, signature);
    const timeout = request.body.parameters?.timeout;
    // Without a per-request timeout, a model answers under the tightest SLO of the applications it serves
    // (so admission control applies to OIP traffic too), or under the server's default timeout if it serves none.
    const timeoutMs = typeof timeout === 'number' ? timeout / 1000 : (info.linkedSloMs ?? options.inferTimeoutMs);
    let outputs: Float32Array[];
    const signal = cancelOnDisconnect(reply);
    try {
      const trace = requestTraceContext(request);
      const priority = request.body.parameters?.priority;
      outputs = await clipper.infer(request.params.model, rows, {
        version,
        timeoutMs,
        signal,
        ...(typeof priority === 'number' ? { priority } : {}),
        ...(trace === undefined ? {} : { trace }),
      });
    } catch (error) {
      // A client that went away is counted by clipper_cancelled_total (its rows dropped unrun), not as a failure.
      if (!(error instanceof CancelledError)) {
        metrics.failed('', error instanceof OverloadedError ? 'refused' : error instanceof ClipperError && error.status < 500 ? 'invalid' : 'error', request.params.model);
      }
      throw error;
    }
    metrics.inferred(request.params.model, (performance.now() - started) / 1000);
    const fields = { model_name: request.params.model, model_version: version, ...(request.body.id === undefined ? {} : { id: request.body.id }) };
    if (binaryOutput) {
      const { body, headerLength } = binaryResponse(signature, outputs, fields);
      reply.header(HEADER_LENGTH, String(headerLength)).type('application/octet-stream');
      return body;
    }
    return { ...fields, outputs: responseTensor(signature, outputs, request.body.outputs) };
  };
  app.post<{ Params: { model: string; version?: string }; Body: OipInferRequest }>('/v2/models/:model/infer', { schema: inferSchema, ...binaryHooks }, infer);
  app.post<{ Params: { model: string; version?: string }; Body: OipInferRequest }>('/v2/models/:model/versions/:version/infer', { schema: inferSchema, ...binaryHooks }, infer);

  // ---- Prometheus ----
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  return app;
}
