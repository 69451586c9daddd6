/**
 * Turns a {@link WireError} from a model worker (any kind: thread, process, remote) into an error on this side:
 * the top level into its catalogue class (by code: a load failure stays a {@link ModelLoadError}, anything else
 * is a {@link ModelRuntimeError}), and its cause chain into plain errors that keep the name, code, message and
 * the worker's stack. Here, not in actors/worker: the worker side never imports the catalogue.
 */
import { ModelLoadError, ModelRuntimeError } from '../src/errors.js';
import type { WireError } from './worker/protocol.js';
import { workerErrorCodes } from './worker/wire-error.js';

export function reviveWireError(wire: WireError): ModelRuntimeError | ModelLoadError {
  const options = wire.cause === undefined ? undefined : { cause: reviveCause(wire.cause) };
  if (wire.code === workerErrorCodes.load) return new ModelLoadError(wire.message, options);
  if (wire.code === workerErrorCodes.runtime) return new ModelRuntimeError(wire.message, options);
  // Not a catalogue error (a worker that sends what the model threw as is): wrap it, so the client still sees
  // a code from the catalogue and the original under `cause`.
  return new ModelRuntimeError(`${wire.name}: ${wire.message}`, { cause: reviveCause(wire) });
}

function reviveCause(wire: WireError): Error {
  const error = new Error(wire.message, wire.cause === undefined ? undefined : { cause: reviveCause(wire.cause) });
  error.name = wire.name;
  if (wire.code !== undefined) (error as Error & { code?: string }).code = wire.code;
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}
