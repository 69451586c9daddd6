/**
 * Flattens an error to cross a thread, a process or a network ({@link WireError}), keeping its name, code,
 * message, stack and cause chain. Used where the model runs; {@link ./revive-error.ts} undoes it.
 */
import type { WireError } from './protocol.js';

/**
 * The catalogue codes (src/errors.ts) a worker puts on the errors it reports, written out here because the
 * worker does not import the catalogue; a unit test checks they match it.
 */
export const workerErrorCodes = Object.freeze({ runtime: 'MODEL_RUNTIME_ERROR', load: 'MODEL_LOAD_FAILED' } as const);

/** Causes deeper than this are cut: a cyclic or runaway chain must not make the message unbounded. */
const MAX_CAUSE_DEPTH = 8;

export function toWireError(error: unknown, depth = 0): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const wire: WireError = { name: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') wire.code = String(code);
  if (error.stack !== undefined) wire.stack = error.stack;
  if (error.cause !== undefined && depth < MAX_CAUSE_DEPTH) wire.cause = toWireError(error.cause, depth + 1);
  return wire;
}
