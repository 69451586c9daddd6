import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { credentials, loadPackageDefinition, Metadata, type Client, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import test from 'ava';
import { grpcProtoPath } from '../../src/grpc/grpc-server.js';
import { digit, loadMnist } from '../../src/data/mnist-data.js';
import { serve, type RunningServer } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';

// OpenTelemetry traces end to end: a real server started with --otlp-endpoint, real HTTP queries carrying a W3C
// traceparent, and a small OTLP/HTTP receiver standing in for the collector. The spans are read back as the
// collector gets them (OTLP JSON) and checked as a tree: request -> route -> one span per model.

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  links?: { traceId: string; spanId: string }[];
}

const { test: heldOut } = loadMnist();
const received: OtlpSpan[] = [];
const contentTypes: string[] = [];
let collector: Server;
let server: RunningServer;

test.before(async () => {
  collector = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      if (request.url === '/v1/traces') {
        contentTypes.push(String(request.headers['content-type']));
        const payload = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const resource of payload.resourceSpans) for (const scope of resource.scopeSpans) received.push(...scope.spans);
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  server = await serve(resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent', '--slo-ms', '2000', '--max-event-loop-delay-ms', '0', '--otlp-endpoint', endpoint]));
});
test.after.always(async () => {
  await server?.close();
  await new Promise((resolve) => collector?.close(resolve));
});

const attribute = (span: OtlpSpan, key: string): unknown => {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value === undefined ? undefined : Object.values(value)[0];
};

/** Waits until the collector holds spans of `traceId` named as asked (the exporter sends every second). */
async function spansOf(traceId: string, names: string[]): Promise<OtlpSpan[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const spans = received.filter((s) => s.traceId === traceId);
    if (names.every((n) => spans.some((s) => s.name === n)) || Date.now() > deadline) return spans;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Batch spans are roots of their own traces, linked from the queries in them: found by their links. */
async function batchesLinkedFrom(traceId: string, count: number): Promise<OtlpSpan[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const batches = received.filter((s) => s.name === 'clipper.batch' && (s.links ?? []).some((l) => l.traceId === traceId));
    if (batches.length >= count || Date.now() > deadline) return batches;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test.serial('a Clipper REST query is traced: the caller\'s traceparent is the parent, and the response names the request span', async (t) => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpan = '00f067aa0ba902b7';
  const response = await fetch(`${server.queryUrl}/digits/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01` },
    body: JSON.stringify({ input: Array.from(digit(heldOut, 0)) }),
  });
  t.is(response.status, 200);
  const body = (await response.json()) as { output: number; default: boolean };
  t.false(body.default);
  const returned = response.headers.get('traceparent') ?? '';
  t.regex(returned, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`), 'the response carries the same trace, with the server span as parent');

  const spans = await spansOf(traceId, ['POST /:app/predict', 'clipper.route', 'clipper.model', 'clipper.queue']);
  const request = spans.find((s) => s.name === 'POST /:app/predict');
  t.truthy(request, `spans received: ${spans.map((s) => s.name).join(', ')}`);
  t.is(request?.parentSpanId, callerSpan);
  t.is(request?.kind, 2, 'kind SERVER');
  t.is(request?.spanId, returned.split('-')[2]);
  t.is(attribute(request as OtlpSpan, 'http.response.status_code'), 200);

  const route = spans.find((s) => s.name === 'clipper.route');
  t.is(route?.parentSpanId, request?.spanId);
  t.is(attribute(route as OtlpSpan, 'clipper.app'), 'digits');
  t.is(attribute(route as OtlpSpan, 'clipper.default'), false);

  // The bundled application is an Exp4 ensemble of the three models: one span for each, under the route span.
  const models = spans.filter((s) => s.name === 'clipper.model');
  t.deepEqual(models.map((s) => attribute(s, 'clipper.model')).sort(), ['mnist-cnn', 'mnist-linear', 'mnist-mlp']);
  for (const model of models) {
    t.is(model.parentSpanId, route?.spanId);
    t.is(attribute(model, 'clipper.cache'), 'miss');
    t.true((attribute(model, 'clipper.batch_size') as number) >= 1);
  }
  // Under each model span, the query's wait in a replica's queue; and the batch it ran in, linked from it.
  const modelSpans = new Set(models.map((m) => m.spanId));
  const queues = spans.filter((s) => s.name === 'clipper.queue');
  t.is(queues.length, 3);
  for (const queue of queues) t.true(modelSpans.has(queue.parentSpanId ?? ''), 'a queue span hangs under a model span');
  const batches = await batchesLinkedFrom(traceId, 3);
  t.is(batches.length, 3, 'one batch per model ran this query');
  for (const batch of batches) {
    t.true((batch.links ?? []).some((l) => l.traceId === traceId && modelSpans.has(l.spanId)));
    t.true(Number(attribute(batch, 'clipper.batch_size')) >= 1);
    t.regex(String(attribute(batch, 'clipper.replica')), /^mnist-(cnn|mlp|linear)@1#0$/);
  }
  t.true(contentTypes.every((c) => c.startsWith('application/json')), 'OTLP/HTTP JSON');
});

test.serial('an OIP infer request without a traceparent starts its own trace', async (t) => {
  const response = await fetch(`${server.queryUrl}/v2/models/mnist-mlp/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [2, 784], datatype: 'FP32', data: [...digit(heldOut, 1), ...digit(heldOut, 2)] }] }),
  });
  t.is(response.status, 200);
  const returned = response.headers.get('traceparent') ?? '';
  const [, traceId, spanId] = returned.split('-');
  t.regex(traceId ?? '', /^[0-9a-f]{32}$/);
  const spans = await spansOf(traceId as string, ['POST /v2/models/:model/infer', 'clipper.infer']);
  const request = spans.find((s) => s.name === 'POST /v2/models/:model/infer');
  t.is(request?.spanId, spanId);
  t.is(request?.parentSpanId ?? '', '', 'a root span');
  const infer = spans.find((s) => s.name === 'clipper.infer');
  t.is(infer?.parentSpanId, spanId);
  t.is(attribute(infer as OtlpSpan, 'clipper.model'), 'mnist-mlp');
  t.is(Number(attribute(infer as OtlpSpan, 'clipper.rows')), 2);
  const queues = (await spansOf(traceId as string, ['clipper.queue'])).filter((s) => s.name === 'clipper.queue');
  t.is(queues.length, 2, 'one queue span per row');
  for (const queue of queues) t.is(queue.parentSpanId, infer?.spanId);
  t.true((await batchesLinkedFrom(traceId as string, 1)).length >= 1);
});

test.serial('a gRPC ModelInfer call continues the traceparent in its metadata and returns its own', async (t) => {
  const definition = loadPackageDefinition(loadSync(grpcProtoPath, { keepCase: true, longs: Number, defaults: true }));
  const Service = (definition.inference as GrpcObject).GRPCInferenceService as ServiceClientConstructor;
  const client: Client = new Service(server.grpcAddress as string, credentials.createInsecure());
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const callerSpan = 'b7ad6b7169203331';
  const metadata = new Metadata();
  metadata.set('traceparent', `00-${traceId}-${callerSpan}-01`);
  let returned = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const call = (client as any).ModelInfer(
        { model_name: 'mnist-linear', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784] }], raw_input_contents: [Buffer.from(Float32Array.from(digit(heldOut, 3)).buffer)] },
        metadata,
        { deadline: Date.now() + 60_000 },
        (error: Error | null) => (error === null ? resolve() : reject(error)),
      );
      call.on('metadata', (m: Metadata) => (returned = String(m.get('traceparent')[0] ?? '')));
    });
  } finally {
    client.close();
  }
  t.regex(returned, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  const spans = await spansOf(traceId, ['inference.GRPCInferenceService/ModelInfer', 'clipper.infer']);
  const call = spans.find((s) => s.name === 'inference.GRPCInferenceService/ModelInfer');
  t.is(call?.parentSpanId, callerSpan);
  t.is(call?.spanId, returned.split('-')[2]);
  t.is(spans.find((s) => s.name === 'clipper.infer')?.parentSpanId, call?.spanId);
});

test.serial('probes and scrapes are not traced', async (t) => {
  const live = await fetch(`${server.queryUrl}/v2/health/live`);
  t.is(live.status, 200);
  t.is(live.headers.get('traceparent'), null);
  const metrics = await fetch(`${server.queryUrl}/metrics`);
  await metrics.text();
  t.is(metrics.headers.get('traceparent'), null);
});

test('an endpoint that is not an http(s) URL is refused with the setting named', (t) => {
  const error = t.throws(() => resolveServeSettings(['--otlp-endpoint', 'localhost:4318']));
  t.regex(error?.message ?? '', /otlpEndpoint must be an http:\/\/ or https:\/\/ URL/);
});
