import test from 'ava';
import * as errors from '../../src/errors.js';
import { ClipperError, errorCatalogue, OverloadedError } from '../../src/errors.js';

type CatalogueClass = (typeof errorCatalogue)[number];

/** Builds any catalogue error with a message and a cause (OverloadedError takes retryAfterSeconds second). */
function build(Class: CatalogueClass, message: string, cause?: unknown): ClipperError {
  const options = cause === undefined ? undefined : { cause };
  return Class === OverloadedError ? new OverloadedError(message, undefined, options) : new (Class as typeof errors.InvalidOptionError)(message, options);
}

/** The wire contract: changing a code or status breaks clients, so it is pinned here. */
const expected: Record<string, [code: string, status: number]> = {
  InvalidOptionError: ['INVALID_OPTION', 400],
  InvalidInputError: ['INVALID_INPUT', 400],
  UnknownApplicationError: ['UNKNOWN_APPLICATION', 404],
  UnknownModelError: ['UNKNOWN_MODEL', 404],
  UnknownVersionError: ['UNKNOWN_VERSION', 404],
  AlreadyExistsError: ['ALREADY_EXISTS', 409],
  OverloadedError: ['OVERLOADED', 503],
  BatchTooLargeError: ['BATCH_TOO_LARGE', 400],
  CancelledError: ['CANCELLED', 499],
  DeadlineExceededError: ['DEADLINE_EXCEEDED', 504],
  ModelLoadError: ['MODEL_LOAD_FAILED', 500],
  ModelRuntimeError: ['MODEL_RUNTIME_ERROR', 500],
  ReplicaFailedError: ['REPLICA_FAILED', 503],
  NoReplicaAvailableError: ['NO_REPLICA_AVAILABLE', 503],
  ShuttingDownError: ['SHUTTING_DOWN', 503],
  ForbiddenPathError: ['FORBIDDEN_PATH', 403],
  IncompatibleModelError: ['INCOMPATIBLE_MODEL', 409],
  StateConflictError: ['STATE_CONFLICT', 409],
  InvalidRequestError: ['INVALID_REQUEST', 400],
  UnsupportedMediaTypeError: ['UNSUPPORTED_MEDIA_TYPE', 415],
  PayloadTooLargeError: ['PAYLOAD_TOO_LARGE', 413],
  UnauthorizedError: ['UNAUTHORIZED', 401],
  RouteNotFoundError: ['NOT_FOUND', 404],
  InternalError: ['INTERNAL', 500],
};

test('the catalogue lists every error class the module exports, and each once', (t) => {
  const exported = Object.values(errors).filter(
    (v): v is typeof ClipperError => typeof v === 'function' && v.prototype instanceof ClipperError,
  );
  t.deepEqual(errorCatalogue.map((c) => c.name).sort(), exported.map((c) => c.name).sort());
  t.is(new Set(errorCatalogue).size, errorCatalogue.length);
  t.deepEqual(errorCatalogue.map((c) => c.name).sort(), Object.keys(expected).sort());
});

for (const Class of errorCatalogue) {
  test(`${Class.name}: stable code and status, name, prototype chain, cause, toJSON`, (t) => {
    const cause = new Error('underlying');
    const error = build(Class, `something about ${Class.name}`, cause);
    const [code, status] = expected[Class.name] ?? ['?', 0];
    t.is(error.code, code);
    t.is(error.status, status);
    t.regex(error.code, /^[A-Z]+(?:_[A-Z]+)*$/);
    t.true(error.status >= 400 && error.status <= 599);
    t.is(error.name, Class.name);
    t.true(error instanceof Class);
    t.true(error instanceof ClipperError);
    t.true(error instanceof Error);
    t.is(error.message, `something about ${Class.name}`);
    t.is(error.cause, cause);
    // BatchTooLargeError's body adds the largest admissible row count.
    const extra = error instanceof errors.BatchTooLargeError ? { largest_rows: 0 } : {};
    t.deepEqual(error.toJSON(), { error: `something about ${Class.name}`, code, ...extra });
    t.is(JSON.stringify(error), JSON.stringify({ error: `something about ${Class.name}`, code, ...extra }));
    t.regex(String(error), new RegExp(`^${Class.name}: something about`));
    t.true(typeof error.stack === 'string' && error.stack.includes(Class.name));
    t.false('cause' in build(Class, 'no cause'), 'no cause property when none was given');
  });
}

test('codes are distinct across the catalogue and differ from the base class', (t) => {
  const codes = errorCatalogue.map((Class) => build(Class, 'x').code);
  t.is(new Set(codes).size, codes.length);
  t.false(codes.includes(new ClipperError('x').code));
});

test('the base class has its own code and a 500 status', (t) => {
  const error = new ClipperError('base', { cause: 'why' });
  t.is(error.code, 'CLIPPER_ERROR');
  t.is(error.status, 500);
  t.is(error.name, 'ClipperError');
  t.is(error.cause, 'why');
});

test('OverloadedError carries retryAfterSeconds (1 by default) and a cause', (t) => {
  const cases: [args: [number?, { cause?: unknown }?], retryAfter: number, cause: unknown][] = [
    [[], 1, undefined],
    [[5], 5, undefined],
    [[0.5, { cause: 'queue full' }], 0.5, 'queue full'],
  ];
  for (const [args, retryAfter, cause] of cases) {
    const error = new OverloadedError('busy', ...args);
    t.is(error.retryAfterSeconds, retryAfter);
    t.is(error.cause, cause);
    t.is(error.status, 503);
    t.deepEqual(error.toJSON(), { error: 'busy', code: 'OVERLOADED' });
  }
});
