import { status } from '@grpc/grpc-js';
import test from 'ava';
import { ClipperError, DeadlineExceededError, errorCatalogue, InvalidInputError, NoReplicaAvailableError, OverloadedError, UnknownModelError } from '../../../src/index.js';
import { grpcStatusByHttpStatus, toGrpcFailure } from '../../../src/grpc/grpc-status.js';

type CatalogueClass = (typeof errorCatalogue)[number];
const build = (Class: CatalogueClass): ClipperError =>
  Class === OverloadedError ? new OverloadedError('busy', 3) : new (Class as typeof InvalidInputError)('what went wrong');

/** The HTTP status each gRPC code stands for (google.rpc.Code's documented equivalents). */
const httpOf: Partial<Record<status, number[]>> = {
  [status.INVALID_ARGUMENT]: [400, 415],
  [status.CANCELLED]: [499],
  [status.UNAUTHENTICATED]: [401],
  [status.PERMISSION_DENIED]: [403],
  [status.NOT_FOUND]: [404],
  [status.ALREADY_EXISTS]: [409],
  [status.RESOURCE_EXHAUSTED]: [413, 429],
  [status.INTERNAL]: [500],
  [status.UNAVAILABLE]: [503],
  [status.DEADLINE_EXCEEDED]: [504],
};

test('every error of the catalogue has a gRPC code, and the code means its HTTP status', (t) => {
  for (const Class of errorCatalogue) {
    const error = build(Class);
    t.true(Object.hasOwn(grpcStatusByHttpStatus, error.status), `${Class.name}: HTTP ${error.status} has no gRPC code in grpcStatusByHttpStatus`);
    const failure = toGrpcFailure(error);
    t.is(failure.code, grpcStatusByHttpStatus[error.status], Class.name);
    t.true(httpOf[failure.code]?.includes(error.status), `${Class.name}: ${status[failure.code]} does not stand for HTTP ${error.status}`);
    t.is(failure.details, error.message);
    t.deepEqual(failure.metadata.get('clipper-error-code'), [error.code], Class.name);
  }
});

test('the codes the protocol names: INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE with a retry hint, DEADLINE_EXCEEDED', (t) => {
  t.is(toGrpcFailure(new InvalidInputError('bad shape')).code, status.INVALID_ARGUMENT);
  t.is(toGrpcFailure(new UnknownModelError('no model')).code, status.NOT_FOUND);
  t.is(toGrpcFailure(new DeadlineExceededError('late')).code, status.DEADLINE_EXCEEDED);
  const overloaded = toGrpcFailure(new OverloadedError('busy', 3));
  t.is(overloaded.code, status.UNAVAILABLE);
  t.deepEqual(overloaded.metadata.get('retry-after'), ['3'], "the error's own hint");
  const noReplica = toGrpcFailure(new NoReplicaAvailableError('none ready'));
  t.is(noReplica.code, status.UNAVAILABLE);
  t.deepEqual(noReplica.metadata.get('retry-after'), ['1']);
  t.deepEqual(toGrpcFailure(new InvalidInputError('x')).metadata.get('retry-after'), [], 'no retry hint for what a retry cannot fix');
});

test('anything outside the catalogue is a bug: INTERNAL', (t) => {
  const failure = toGrpcFailure(new TypeError('x is undefined'));
  t.is(failure.code, status.INTERNAL);
  t.regex(failure.details, /internal error: x is undefined/);
  t.deepEqual(failure.metadata.get('clipper-error-code'), ['INTERNAL']);
  t.is(toGrpcFailure('a string').code, status.INTERNAL);
});
