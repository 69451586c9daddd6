import type { FastifyError, FastifyInstance } from 'fastify';
import { ClipperError, InternalError, InvalidRequestError, OverloadedError, PayloadTooLargeError, RouteNotFoundError, UnsupportedMediaTypeError } from '../errors.js';

/**
 * Fastify's own errors as catalogue errors, so a client sees only the catalogue's codes (src/errors.ts):
 * schema validation and unparseable JSON are INVALID_REQUEST, a wrong media type UNSUPPORTED_MEDIA_TYPE, an
 * oversized body PAYLOAD_TOO_LARGE; any other 4xx Fastify raises is the client's fault too (INVALID_REQUEST);
 * anything else is a bug (INTERNAL, with the original as its cause).
 */
export function toCatalogueError(error: FastifyError | Error): ClipperError {
  if (error instanceof ClipperError) return error;
  const fe = error as FastifyError;
  if (fe.validation !== undefined) return new InvalidRequestError(`invalid request: ${fe.message}`, { cause: error });
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(`${fe.message}; send Content-Type: application/json`, { cause: error });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError(fe.message, { cause: error });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new InvalidRequestError('the body is empty; send a JSON object', { cause: error });
    default:
      break;
  }
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
    // Malformed JSON, a bad Content-Length and the like: Fastify already knows it is the client's fault.
    return new InvalidRequestError(fe.message, { cause: error });
  }
  return new InternalError(`internal error: ${error.message}`, { cause: error });
}

/**
 * Every error leaves as `{"error": "...", "code": "..."}` with its status, the code and status taken from the
 * error catalogue: 4xx for what the client sent, 503 with Retry-After for overload (or 429: `shedStatus`), 5xx
 * otherwise. Nothing a request sends can crash the server.
 */
export function installErrorHandling(app: FastifyInstance, options: { shedStatus?: 429 | 503 } = {}): void {
  const shedStatus = options.shedStatus ?? 503;
  // JSON only: a text/plain body is refused with 415 instead of failing validation as a string.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((raw: FastifyError | Error, request, reply) => {
    const error = toCatalogueError(raw);
    if (error instanceof OverloadedError) {
      reply.header('retry-after', String(error.retryAfterSeconds));
      return reply.code(shedStatus).send(error.toJSON());
    }
    if (error instanceof InternalError) request.log.error({ err: raw }, 'unexpected error');
    else if (error.status >= 500) request.log.warn({ err: raw }, 'request failed');
    return reply.code(error.status).send(error.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new RouteNotFoundError(`no route ${request.method} ${request.url.split('?')[0]}`);
    reply.code(error.status).send(error.toJSON());
  });
}
