import { context as otelContext, defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Where traces go, and how to stop sending them (flushes what is buffered). */
export interface Tracing {
  tracer: Tracer;
  shutdown(): Promise<void>;
}

/**
 * Exports spans over OTLP/HTTP (JSON) to a collector: `endpoint` is its base URL (`http://collector:4318`,
 * to which `/v1/traces` is added, as `OTEL_EXPORTER_OTLP_ENDPOINT` works) or the full traces URL. Spans are
 * sent in batches every `delayMs`; none are recorded when tracing is not started.
 */
export function startTracing(endpoint: string, options: { serviceName?: string; version?: string; delayMs?: number } = {}): Tracing {
  const url = new URL(endpoint);
  if (!url.pathname.endsWith('/v1/traces')) url.pathname = `${url.pathname.replace(/\/$/, '')}/v1/traces`;
  const exporter = new OTLPTraceExporter({ url: url.toString() });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName ?? 'clipper-ts', ...(options.version === undefined ? {} : { 'service.version': options.version }) }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.delayMs ?? 1000 })],
  });
  return { tracer: provider.getTracer('clipper-ts', options.version), shutdown: () => provider.shutdown() };
}

const propagator = new W3CTraceContextPropagator();

/** Routes whose requests get no span: probes and scrapes, many a second, of no interest in a trace. */
function untraced(url: string): boolean {
  return url.startsWith('/v2/health') || url === '/metrics';
}

const spans = new WeakMap<FastifyRequest, Span>();

/**
 * A span per HTTP request (kind server), child of the caller's W3C `traceparent` when it sends one, whose own
 * context is returned in the response's `traceparent` header. Handlers pass {@link requestTraceContext} with the
 * query so that the router's, queues' and batches' spans hang under it.
 */
export function traceRequests(app: FastifyInstance, tracer: Tracer): void {
  app.addHook('onRequest', async (request, reply) => {
    if (untraced(request.url)) return;
    const parent = propagator.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter);
    const route = request.routeOptions.url ?? request.url;
    const span = tracer.startSpan(
      `${request.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method, 'http.route': route, 'url.path': request.url.split('?')[0] as string } },
      parent,
    );
    spans.set(request, span);
    const headers: Record<string, string> = {};
    propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
    for (const [name, value] of Object.entries(headers)) reply.header(name, value);
  });
  app.addHook('onResponse', async (request, reply) => {
    const span = spans.get(request);
    if (span === undefined) return;
    span.setAttribute('http.response.status_code', reply.statusCode);
    if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
}

/** The context a handler passes with its query: the request's span as parent (undefined when not traced). */
export function requestTraceContext(request: FastifyRequest): Context | undefined {
  const span = spans.get(request);
  return span === undefined ? undefined : trace.setSpan(otelContext.active(), span);
}
