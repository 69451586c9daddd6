import { elementCount } from './shape.js';
import { InvalidInputError } from '../errors.js';
import type { PredictOptions } from '../api.js';
import type { ResolvedAppOptions } from './options.js';
import { show } from './validate.js';

/**
 * Where query rows live: views carved in turn out of shared 32 KiB buffers, instead of one new ArrayBuffer per
 * query. A row of 784 floats as its own ArrayBuffer is a separate off-heap allocation that the garbage
 * collector must track and free (at ~100k queries/s, a quarter of the main thread's time went to collection);
 * a view is one small heap object. Nothing is reused by hand: a buffer is freed by the collector once every row
 * cut from it is gone, and a query's row lives only until its answer (the cache keeps hashes, not inputs), so
 * a buffer outlives its last query by at most one SLO. Rows larger than a quarter of a buffer get their own.
 * Nothing may transfer or detach a row's `.buffer` (it is shared): the replica copies rows into its batch.
 *
 * Why 32 KiB and not 1 MiB: a buffer past the C allocator's mmap threshold (128 KiB by default in glibc) is
 * fresh pages from the kernel every time, and the first write to each page faults and zeroes it; a small one
 * comes from memory the allocator already holds (freed buffers). Copying and checking a 784-float row measured
 * 1.1-1.2 µs in 32 KiB buffers, 1.9-3.0 µs in 1 MiB ones and 0.5-0.9 µs in one buffer reused forever
 * (a loop of toInputRow's copy and check alone, on the shared 2-core machine, 2026-11-30).
 */
const ARENA_BYTES = 1 << 15;
let arena = new ArrayBuffer(ARENA_BYTES);
let arenaUsed = 0;

function newRow(type: 'float32' | 'int32', length: number): Float32Array | Int32Array {
  const bytes = length * 4;
  if (bytes > ARENA_BYTES / 4) return type === 'int32' ? new Int32Array(length) : new Float32Array(length);
  if (arenaUsed + bytes > ARENA_BYTES) {
    arena = new ArrayBuffer(ARENA_BYTES);
    arenaUsed = 0;
  }
  const row = type === 'int32' ? new Int32Array(arena, arenaUsed, length) : new Float32Array(arena, arenaUsed, length);
  arenaUsed += bytes;
  return row;
}

/** What a query's input may be: a flat array or typed array, or arrays nested to the application's shape. */
export type QueryInput = ArrayLike<number> | readonly unknown[];

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (value instanceof DataView) return `a DataView of ${value.byteLength} bytes`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as unknown as ArrayLike<number>).length}`;
  const type = typeof value;
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

/** Flattens nested arrays whose shape matches `shape` exactly; throws naming the first mismatch. */
function flattenNested(input: readonly unknown[], shape: readonly number[], app: string, out: number[], at: string): void {
  const [dim, ...rest] = shape;
  if (input.length !== dim) {
    throw new InvalidInputError(`input${at} has length ${input.length}; application ${app} expects shape [${shape.join(', ')}] here`);
  }
  for (let i = 0; i < input.length; i++) {
    const item = input[i];
    if (rest.length === 0) out.push(item as number);
    else if (Array.isArray(item)) flattenNested(item, rest, app, out, `${at}[${i}]`);
    else throw new InvalidInputError(`input${at}[${i}] is ${describe(item)}; application ${app} expects an array of ${rest[0]} there`);
  }
}

/** The values an application expects, for error messages (built only when an input is refused). */
function wanted(app: ResolvedAppOptions, expected: number): string {
  return `${expected} ${app.inputType} values (shape [${app.inputShape.join(', ')}])`;
}

/**
 * Copies a Float32Array into a row and checks it: `x * 0` is 0 for every finite x and NaN for NaN and
 * ±Infinity, so sums of `x * 0` check the row without a branch per element. Four sums, not one: a single sum
 * is a chain of dependent additions (one add's latency per element); four run side by side. False when a value
 * is not finite (the caller finds which). Monomorphic (Float32Array in and out).
 */
function copyFinite(input: Float32Array, row: Float32Array, n: number): boolean {
  row.set(input);
  let p0 = 0;
  let p1 = 0;
  let p2 = 0;
  let p3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    p0 += (row[i] as number) * 0;
    p1 += (row[i + 1] as number) * 0;
    p2 += (row[i + 2] as number) * 0;
    p3 += (row[i + 3] as number) * 0;
  }
  for (; i < n; i++) p0 += (row[i] as number) * 0;
  return p0 + p1 + p2 + p3 === 0;
}

/**
 * Checks a query's input against an application's type and shape and returns it as one typed-array row,
 * ready to batch. Throws {@link InvalidInputError} naming what was wrong and what was expected.
 */
export function toInputRow(app: ResolvedAppOptions, input: unknown): Float32Array | Int32Array {
  const expected = elementCount(app.inputShape);
  if (app.inputType === 'float32' && input instanceof Float32Array && input.length === expected) {
    // Fast path: a Float32Array holds only float32 numbers, so NaN and Infinity are all there is to check.
    const row = newRow('float32', expected) as Float32Array;
    if (!copyFinite(input, row, expected)) {
      const i = row.findIndex((v) => !Number.isFinite(v));
      throw new InvalidInputError(`input[${i}] is ${row[i]}; application ${app.name} expects finite ${app.inputType} numbers (no NaN or Infinity)`);
    }
    return row;
  }
  let flat: ArrayLike<unknown>;
  if (ArrayBuffer.isView(input) && !(input instanceof DataView)) flat = input as unknown as ArrayLike<number>;
  else if (Array.isArray(input)) {
    if (input.length > 0 && Array.isArray(input[0]) && app.inputShape.length > 1) {
      const out: number[] = [];
      flattenNested(input, app.inputShape, app.name, out, '');
      flat = out;
    } else flat = input;
  } else {
    throw new InvalidInputError(`input is ${describe(input)}; application ${app.name} expects an array of ${wanted(app, expected)}`);
  }
  if (flat.length !== expected) {
    throw new InvalidInputError(`input has ${flat.length} values; application ${app.name} expects ${wanted(app, expected)}`);
  }
  const row = newRow(app.inputType, expected);
  // Float32 from plain numbers (a JSON body): one test per value covers NaN, ±Infinity and the float32 range
  // (each fails `Math.abs(v) <= FLT_MAX`); the first value that fails sends the row to the loop below, which
  // names what was wrong.
  let i = 0;
  if (app.inputType === 'float32') {
    for (; i < expected; i++) {
      const v = flat[i];
      if (typeof v !== 'number' || !(Math.abs(v) <= 3.4028234663852886e38)) break;
      row[i] = v;
    }
  }
  for (; i < expected; i++) {
    const v = flat[i];
    if (typeof v !== 'number') {
      throw new InvalidInputError(`input[${i}] is ${describe(v)}; application ${app.name} expects ${app.inputType} numbers`);
    }
    if (!Number.isFinite(v)) {
      throw new InvalidInputError(`input[${i}] is ${v}; application ${app.name} expects finite ${app.inputType} numbers (no NaN or Infinity)`);
    }
    if (app.inputType === 'int32' && (!Number.isInteger(v) || v < -2147483648 || v > 2147483647)) {
      throw new InvalidInputError(`input[${i}] is ${v}; application ${app.name} expects 32-bit integers`);
    }
    if (app.inputType === 'float32' && Math.abs(v) > 3.4028234663852886e38) {
      throw new InvalidInputError(`input[${i}] is ${v}; it does not fit in float32`);
    }
    row[i] = v;
  }
  return row;
}

/** Longest `uid` a query may carry (the HTTP schema's bound too). */
export const MAX_UID_LENGTH = 256;

/**
 * Checks a query's context (what it carries besides its input) and returns it. A `uid` is a non-empty string:
 * an empty one would be a user of its own that a client cannot tell from "no user", and a number would reach
 * per-user policies keyed by strings. Throws {@link InvalidInputError}, so only that query fails.
 */
export function checkQueryContext(context: PredictOptions | undefined): PredictOptions {
  if (context === undefined) return {};
  if (typeof context !== 'object' || context === null || Array.isArray(context)) {
    throw new InvalidInputError(`the query context must be an object such as { uid: "alice" }; got ${show(context)}`);
  }
  const uid: unknown = context.uid;
  if (uid !== undefined && (typeof uid !== 'string' || uid.length === 0 || uid.length > MAX_UID_LENGTH)) {
    throw new InvalidInputError(`uid must be a non-empty string of at most ${MAX_UID_LENGTH} characters, or absent for no user; got ${show(uid)}`);
  }
  const trace: unknown = context.trace;
  if (trace !== undefined && (typeof trace !== 'object' || trace === null || typeof (trace as { getValue?: unknown }).getValue !== 'function')) {
    throw new InvalidInputError(`trace must be an OpenTelemetry Context (from @opentelemetry/api), or absent; got ${show(trace)}`);
  }
  return context;
}
