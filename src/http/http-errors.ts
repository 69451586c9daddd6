import type { FastifyError, FastifyInstance } from 'fastify';
import { ClipperError, OverloadedError } from '../errors.js';

/** Fastify's own error codes, mapped to a status and a message a client can act on. */
const fastifyErrors: Record<string, { status: number; message: (e: FastifyError) => string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, message: (e) => `${e.message}; send Content-Type: application/json` },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, message: (e) => e.message },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, message: () => 'the body is empty; send a JSON object' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, message: (e) => e.message },
};

/**
 * Every error leaves as `{"error": "...", "code": "..."}` with its status: 4xx for what the client sent,
 * 503 with Retry-After for overload, 5xx otherwise. Nothing a request sends can crash the server.
 */
export function installErrorHandling(app: FastifyInstance): void {
  // JSON only: a text/plain body is refused with 415 instead of failing validation as a string.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    if (error instanceof ClipperError) {
      if (error instanceof OverloadedError) reply.header('retry-after', String(error.retryAfterSeconds));
      if (error.status >= 500 && !(error instanceof OverloadedError)) request.log.warn({ err: error }, 'request failed');
      return reply.code(error.status).send({ error: error.message, code: error.code });
    }
    const fe = error as FastifyError;
    if (fe.validation !== undefined) {
      return reply.code(400).send({ error: `invalid request: ${fe.message}`, code: 'INVALID_REQUEST' });
    }
    const known = fe.code === undefined ? undefined : fastifyErrors[fe.code];
    if (known !== undefined) return reply.code(known.status).send({ error: known.message(fe), code: fe.code });
    if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
      // Malformed JSON and the like: Fastify already knows it is the client's fault.
      return reply.code(fe.statusCode).send({ error: fe.message, code: fe.code ?? 'BAD_REQUEST' });
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.code(500).send({ error: `internal error: ${error.message}`, code: 'INTERNAL' });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}`, code: 'NOT_FOUND' });
  });
}
