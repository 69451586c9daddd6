import { Metadata, status } from '@grpc/grpc-js';
import { ClipperError, InternalError, OverloadedError } from '../index.js';

/**
 * gRPC status codes for the HTTP statuses of the error catalogue (src/errors.ts), so a gRPC client and an HTTP
 * client see the same failure for the same request. The pairs are the ones google.rpc.Code documents for each
 * code's HTTP equivalent (code.proto): INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403,
 * NOT_FOUND 404, ALREADY_EXISTS 409, RESOURCE_EXHAUSTED 429 (here: a message over the size limit, 413, which
 * grpc-js itself reports as RESOURCE_EXHAUSTED), INTERNAL 500, UNAVAILABLE 503, DEADLINE_EXCEEDED 504. A 415
 * cannot happen over gRPC (the message is protobuf by construction); it is the client's fault, so
 * INVALID_ARGUMENT. A catalogue error with a status missing here fails the test that walks the catalogue.
 */
export const grpcStatusByHttpStatus: Readonly<Record<number, status>> = Object.freeze({
  400: status.INVALID_ARGUMENT,
  401: status.UNAUTHENTICATED,
  403: status.PERMISSION_DENIED,
  404: status.NOT_FOUND,
  409: status.ALREADY_EXISTS,
  413: status.RESOURCE_EXHAUSTED,
  415: status.INVALID_ARGUMENT,
  // A client that cancelled (nginx's 499, "client closed request").
  499: status.CANCELLED,
  500: status.INTERNAL,
  503: status.UNAVAILABLE,
  504: status.DEADLINE_EXCEEDED,
});

/** What a failed call sends: its status code, the message, and trailing metadata. */
export interface GrpcFailure {
  code: status;
  details: string;
  metadata: Metadata;
}

/**
 * Turns any failure into the call's status. A catalogue error keeps its message and its stable code (trailer
 * `clipper-error-code`); UNAVAILABLE carries a retry hint (trailer `retry-after`, seconds, as the HTTP
 * adapter's Retry-After header); anything else is a bug and becomes INTERNAL.
 */
export function toGrpcFailure(error: unknown): GrpcFailure {
  const known = error instanceof ClipperError ? error : new InternalError(`internal error: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  const code = grpcStatusByHttpStatus[known.status] ?? status.INTERNAL;
  const metadata = new Metadata();
  metadata.set('clipper-error-code', known.code);
  if (code === status.UNAVAILABLE) metadata.set('retry-after', String(known instanceof OverloadedError ? known.retryAfterSeconds : 1));
  return { code, details: known.message, metadata };
}
