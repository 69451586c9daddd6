/**
 * The error catalogue. Every error the system raises, and every error body the HTTP adapter sends, is one of
 * these classes: a stable `code` (for programs), an HTTP `status` (for the adapter) and a message that says
 * what was wrong and what was expected. Wrapped failures keep their origin in `cause`. No code a client can
 * see is spelled anywhere else: the HTTP adapter maps Fastify's own errors onto these classes.
 */
export class ClipperError extends Error {
  readonly code: string = 'CLIPPER_ERROR';
  readonly status: number = 500;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }

  toJSON(): { error: string; code: string } {
    return { error: this.message, code: this.code };
  }
}

/**
 * Builds an error without capturing a stack trace. For errors made per query on the hot path under
 * overload (deadline misses, full queues): capturing a stack costs more than serving the query, and the
 * stack would only show the batching loop.
 */
export function withoutStack<E extends Error>(make: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** A configuration option is missing, of the wrong type or out of range. */
export class InvalidOptionError extends ClipperError {
  override readonly code = 'INVALID_OPTION';
  override readonly status = 400;
}

/** A query's input does not match the application's declared type and shape. */
export class InvalidInputError extends ClipperError {
  override readonly code = 'INVALID_INPUT';
  override readonly status = 400;
}

/** No application is registered under that name. */
export class UnknownApplicationError extends ClipperError {
  override readonly code = 'UNKNOWN_APPLICATION';
  override readonly status = 404;
}

/** No model is deployed under that name. */
export class UnknownModelError extends ClipperError {
  override readonly code = 'UNKNOWN_MODEL';
  override readonly status = 404;
}

/** The model exists but not in that version. */
export class UnknownVersionError extends ClipperError {
  override readonly code = 'UNKNOWN_VERSION';
  override readonly status = 404;
}

/** Registering something that already exists (an application, or a model version). */
export class AlreadyExistsError extends ClipperError {
  override readonly code = 'ALREADY_EXISTS';
  override readonly status = 409;
}

/** The query was refused at admission: a queue is full. Retry later (HTTP 503 with Retry-After). */
export class OverloadedError extends ClipperError {
  override readonly code = 'OVERLOADED';
  override readonly status = 503;
  /** Seconds the client should wait before retrying. */
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterSeconds = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * A client's batch of rows that could never be answered by its deadline, even by an idle replica (the latency
 * model's fixed + per-row time for that many rows, plus the margins, is more than the time allowed): retrying
 * cannot help, so it is a 400, not a 503. `largestRows` is the most rows that would fit (0: not even one);
 * the JSON body carries it as `largest_rows`.
 */
export class BatchTooLargeError extends ClipperError {
  override readonly code = 'BATCH_TOO_LARGE';
  override readonly status = 400;
  readonly largestRows: number;

  constructor(message: string, options?: { cause?: unknown; largestRows?: number }) {
    super(message, options);
    this.largestRows = options?.largestRows ?? 0;
  }

  override toJSON(): { error: string; code: string; largest_rows: number } {
    return { ...super.toJSON(), largest_rows: this.largestRows };
  }
}

/**
 * The client went away (an HTTP connection closed before the answer, a gRPC call cancelled) or its caller
 * aborted: the queries still queued were dropped unrun. Status 499 (nginx's "client closed request"); no one
 * reads it but the logs and metrics.
 */
export class CancelledError extends ClipperError {
  override readonly code = 'CANCELLED';
  override readonly status = 499;
}

/** The query's deadline passed, or could not be met, before a model ran it. */
export class DeadlineExceededError extends ClipperError {
  override readonly code = 'DEADLINE_EXCEEDED';
  override readonly status = 504;
}

/**
 * An admin change lost a race: the control-plane state changed since it was read (another frontend sharing
 * NATS, or the state file, wrote first). Nothing was stored; read it again and retry.
 */
export class StateConflictError extends ClipperError {
  override readonly code = 'STATE_CONFLICT';
  override readonly status = 409;
}

/** The model could not be loaded (missing or corrupt file, a JS module without `predict`, ...). */
export class ModelLoadError extends ClipperError {
  override readonly code = 'MODEL_LOAD_FAILED';
  override readonly status = 500;
}

/** The model ran and threw, or returned output of the wrong size. Only that batch's queries see it. */
export class ModelRuntimeError extends ClipperError {
  override readonly code = 'MODEL_RUNTIME_ERROR';
  override readonly status = 500;
}

/** A replica's worker died (exit, uncaught error, out of memory) while it held the query. */
export class ReplicaFailedError extends ClipperError {
  override readonly code = 'REPLICA_FAILED';
  override readonly status = 503;
}

/** The model has no replica able to take queries (all failed, or none deployed). */
export class NoReplicaAvailableError extends ClipperError {
  override readonly code = 'NO_REPLICA_AVAILABLE';
  override readonly status = 503;
}

/** The system or the actor is stopping or stopped and takes no new work. */
export class ShuttingDownError extends ClipperError {
  override readonly code = 'SHUTTING_DOWN';
  override readonly status = 503;
}

/** A path names something outside the model repository. */
export class ForbiddenPathError extends ClipperError {
  override readonly code = 'FORBIDDEN_PATH';
  override readonly status = 403;
}

/**
 * Linking a model whose output cannot be combined with the models already linked to the application (a
 * different number of values per row), under a policy that combines their outputs.
 */
export class IncompatibleModelError extends ClipperError {
  override readonly code = 'INCOMPATIBLE_MODEL';
  override readonly status = 409;
}

/** The request was not valid JSON, or its body did not match the route's schema. */
export class InvalidRequestError extends ClipperError {
  override readonly code = 'INVALID_REQUEST';
  override readonly status = 400;
}

/** The request's body is not JSON (`Content-Type` other than `application/json`). */
export class UnsupportedMediaTypeError extends ClipperError {
  override readonly code = 'UNSUPPORTED_MEDIA_TYPE';
  override readonly status = 415;
}

/** The request's body is over the server's limit (`bodyLimit`). */
export class PayloadTooLargeError extends ClipperError {
  override readonly code = 'PAYLOAD_TOO_LARGE';
  override readonly status = 413;
}

/** The admin API was called without its bearer token, or with a wrong one. */
export class UnauthorizedError extends ClipperError {
  override readonly code = 'UNAUTHORIZED';
  override readonly status = 401;
}

/** No route answers that method and path. */
export class RouteNotFoundError extends ClipperError {
  override readonly code = 'NOT_FOUND';
  override readonly status = 404;
}

/** Something failed that no other error describes: a bug. The original error is the `cause`. */
export class InternalError extends ClipperError {
  override readonly code = 'INTERNAL';
  override readonly status = 500;
}

/** Every class in the catalogue, for documentation and the test that walks it. */
export const errorCatalogue = [
  InvalidOptionError,
  InvalidInputError,
  UnknownApplicationError,
  UnknownModelError,
  UnknownVersionError,
  AlreadyExistsError,
  OverloadedError,
  BatchTooLargeError,
  CancelledError,
  DeadlineExceededError,
  ModelLoadError,
  ModelRuntimeError,
  ReplicaFailedError,
  NoReplicaAvailableError,
  ShuttingDownError,
  ForbiddenPathError,
  IncompatibleModelError,
  StateConflictError,
  InvalidRequestError,
  UnsupportedMediaTypeError,
  PayloadTooLargeError,
  UnauthorizedError,
  RouteNotFoundError,
  InternalError,
] as const;
