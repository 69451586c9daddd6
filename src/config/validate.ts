/**
 * The checks every options resolver uses: each throws {@link InvalidOptionError} with a message that names
 * the option, what was expected and what was given (`model.batching.maxBatchSize must be an integer in
 * [1, 65536]; got 0`).
 */
import { inspect } from 'node:util';
import { InvalidOptionError } from '../errors.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A value as an error message shows it: JSON where JSON can say it. */
export function show(got: unknown): string {
  if (typeof got === 'function') return 'a function';
  try {
    return typeof got === 'object' || typeof got === 'string' ? (JSON.stringify(got) ?? String(got)) : String(got);
  } catch {
    // Circular structures and BigInts: JSON cannot show them, inspect can.
    return inspect(got, { depth: 2, breakLength: Number.POSITIVE_INFINITY });
  }
}

export function fail(what: string, expected: string, got: unknown): never {
  throw new InvalidOptionError(`${what} must be ${expected}; got ${show(got)}`);
}


export function checkObject(what: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(what, 'an object', value);
  return value as Record<string, unknown>;
}

export function checkKnownKeys(what: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw new InvalidOptionError(`${what}.${key} is not an option; known options: ${known.join(', ')}`);
  }
}

export function checkName(what: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME.test(value)) fail(what, 'a name of 1-64 letters, digits, ".", "_" or "-" starting with a letter or digit', value);
  return value as string;
}

export function checkInteger(what: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(what, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`, value);
  }
  return value as number;
}

export function checkNumber(what: string, value: unknown, min: number, max: number, { exclusiveMin = false } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value > max || (exclusiveMin ? value <= min : value < min)) {
    fail(what, `a number in ${exclusiveMin ? '(' : '['}${min}, ${max}]`, value);
  }
  return value as number;
}

export function checkOneOf<T extends string>(what: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) fail(what, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
  return value as T;
}


export function checkBoolean(what: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(what, 'true or false', value);
  return value as boolean;
}
