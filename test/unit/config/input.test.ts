import { ROOT_CONTEXT } from '@opentelemetry/api';
import test from 'ava';
import { InvalidInputError } from '../../../src/errors.js';
import { checkQueryContext, toInputRow } from '../../../src/config/input.js';
import { resolveAppOptions, type RegisterAppOptions } from '../../../src/config/options.js';

const app = (name: string, inputType: RegisterAppOptions['inputType'], inputShape: number[]) =>
  resolveAppOptions({ name, inputType, inputShape, defaultOutput: null });

const apps = {
  flat: app('flat', 'float32', [4]),
  grid: app('grid', 'float32', [2, 2]),
  ints: app('ints', 'int32', [3]),
  cube: app('cube', 'float32', [2, 1, 2]),
};

test('valid inputs become one typed-array row of the application\'s type', (t) => {
  const cases: [name: string, app: keyof typeof apps, input: unknown, type: typeof Float32Array | typeof Int32Array, values: number[]][] = [
    ['flat array', 'flat', [1, 2, 3, 4], Float32Array, [1, 2, 3, 4]],
    ['negative and fractional', 'flat', [-1.5, 0, 0.25, 1e-3], Float32Array, [-1.5, 0, 0.25, Math.fround(1e-3)]],
    ['Float32Array', 'flat', new Float32Array([1, 2, 3, 4]), Float32Array, [1, 2, 3, 4]],
    ['Float64Array', 'flat', new Float64Array([1, 2, 3, 4]), Float32Array, [1, 2, 3, 4]],
    ['Int32Array into float32', 'flat', new Int32Array([1, 2, 3, 4]), Float32Array, [1, 2, 3, 4]],
    ['Uint8Array', 'flat', new Uint8Array([1, 2, 3, 255]), Float32Array, [1, 2, 3, 255]],
    ['nested [2, 2]', 'grid', [[1, 2], [3, 4]], Float32Array, [1, 2, 3, 4]],
    ['flat for a [2, 2] shape', 'grid', [1, 2, 3, 4], Float32Array, [1, 2, 3, 4]],
    ['typed array for a [2, 2] shape', 'grid', new Float32Array([1, 2, 3, 4]), Float32Array, [1, 2, 3, 4]],
    ['nested [2, 1, 2]', 'cube', [[[1, 2]], [[3, 4]]], Float32Array, [1, 2, 3, 4]],
    ['int32 array', 'ints', [1, -2, 3], Int32Array, [1, -2, 3]],
    ['int32 extremes', 'ints', [2147483647, -2147483648, 0], Int32Array, [2147483647, -2147483648, 0]],
    ['Int32Array', 'ints', new Int32Array([7, 8, 9]), Int32Array, [7, 8, 9]],
    ['whole floats into int32', 'ints', new Float64Array([1, 2, 3]), Int32Array, [1, 2, 3]],
  ];
  for (const [name, appName, input, type, values] of cases) {
    const row = toInputRow(apps[appName], input);
    t.true(row instanceof type, `${name}: ${row.constructor.name}`);
    t.deepEqual([...row], values, name);
  }
});

test('the row is a copy: changing the input afterwards changes nothing', (t) => {
  const input = new Float32Array([1, 2, 3, 4]);
  const row = toInputRow(apps.flat, input);
  t.not(row, input);
  input[0] = 99;
  t.is(row[0], 1);
});

test('rows of many queries never overlap, and keep their values while later rows are made', (t) => {
  // Rows are views into shared buffers (no ArrayBuffer per query): each must be its own slice of one.
  const image = app('image', 'float32', [784]);
  const rows = Array.from({ length: 2000 }, (_, q) => toInputRow(image, Float32Array.from({ length: 784 }, (_, i) => q * 1000 + i)));
  for (let q = 0; q < rows.length; q += 97) {
    const row = rows[q] as Float32Array;
    t.is(row.length, 784);
    t.is(row[0], q * 1000);
    t.is(row[783], q * 1000 + 783);
  }
  const ints = toInputRow(apps.ints, [7, 8, 9]);
  t.true(ints instanceof Int32Array);
  t.deepEqual(Array.from(ints), [7, 8, 9]);
  t.is((rows[1999] as Float32Array)[5], 1999 * 1000 + 5, 'an int row made afterwards does not overwrite a float row');
  // A row too large to share a buffer has one of its own.
  const large = toInputRow(app('large', 'float32', [100_000]), new Float32Array(100_000).fill(1));
  t.is(large.byteOffset, 0);
  t.is(large.buffer.byteLength, 400_000);
});

test('bad inputs throw InvalidInputError naming what was wrong and what was expected', (t) => {
  const arrayLike = { length: 4, 0: 1, 1: 2, 2: 3, 3: 4 };
  const cases: [name: string, app: keyof typeof apps, input: unknown, message: RegExp][] = [
    ['too short', 'flat', [1, 2, 3], /^input has 3 values; application flat expects 4 float32 values \(shape \[4\]\)$/],
    ['too long', 'flat', [1, 2, 3, 4, 5], /^input has 5 values; application flat expects 4 float32 values/],
    ['empty', 'flat', [], /^input has 0 values/],
    ['typed array of the wrong length', 'flat', new Float32Array(3), /^input has 3 values; application flat expects 4/],
    ['a string', 'flat', '1234', /^input is a string; application flat expects an array of 4 float32 values \(shape \[4\]\)$/],
    ['a number', 'flat', 4, /^input is a number; application flat expects an array of 4/],
    ['null', 'flat', null, /^input is null; application flat expects an array/],
    ['undefined', 'flat', undefined, /^input is missing; application flat expects an array/],
    ['an array-like object', 'flat', arrayLike, /^input is an? object; application flat expects an array/],
    ['a DataView', 'flat', new DataView(new ArrayBuffer(16)), /^input is a DataView/],
    ['a string element', 'flat', [1, '2', 3, 4], /^input\[1\] is a string; application flat expects float32 numbers$/],
    ['a null element', 'flat', [1, 2, null, 4], /^input\[2\] is null; application flat expects float32 numbers$/],
    ['an object element', 'flat', [1, 2, 3, {}], /^input\[3\] is an? object; application flat expects float32 numbers$/],
    ['a hole', 'flat', [1, , 3, 4], /^input\[1\] is missing/],
    ['a boolean element', 'flat', [true, 2, 3, 4], /^input\[0\] is a boolean/],
    ['a bigint element', 'flat', new BigInt64Array(4), /^input\[0\] is a bigint/],
    ['NaN', 'flat', [NaN, 2, 3, 4], /^input\[0\] is NaN; application flat expects finite float32 numbers \(no NaN or Infinity\)$/],
    ['NaN in a typed array', 'flat', new Float64Array([1, NaN, 3, 4]), /^input\[1\] is NaN/],
    ['Infinity', 'flat', [1, Infinity, 3, 4], /^input\[1\] is Infinity; .*finite/],
    ['-Infinity', 'flat', [1, 2, 3, -Infinity], /^input\[3\] is -Infinity; .*finite/],
    ['beyond float32', 'flat', [1e39, 2, 3, 4], /^input\[0\] is 1e\+39; it does not fit in float32$/],
    ['beyond float32, negative', 'flat', [1, -1e39, 3, 4], /^input\[1\] is -1e\+39; it does not fit in float32$/],
    ['non-integer for int32', 'ints', [1, 2.5, 3], /^input\[1\] is 2\.5; application ints expects 32-bit integers$/],
    ['non-integer in a typed array for int32', 'ints', new Float32Array([1, 0.5, 2]), /^input\[1\] is 0\.5; application ints expects 32-bit integers$/],
    ['above int32', 'ints', [2147483648, 0, 0], /^input\[0\] is 2147483648; application ints expects 32-bit integers$/],
    ['below int32', 'ints', [0, 0, -2147483649], /^input\[2\] is -2147483649; application ints expects 32-bit integers$/],
    ['NaN for int32', 'ints', [0, NaN, 0], /^input\[1\] is NaN; application ints expects finite int32 numbers/],
    ['nested row too short', 'grid', [[1, 2], [3]], /^input\[1\] has length 1; application grid expects shape \[2\] here$/],
    ['nested row too long', 'grid', [[1, 2, 3], [4, 5]], /^input\[0\] has length 3; application grid expects shape \[2\] here$/],
    ['too many nested rows', 'grid', [[1, 2], [3, 4], [5, 6]], /^input has length 3; application grid expects shape \[2, 2\] here$/],
    ['a number where a row belongs', 'grid', [[1, 2], 3], /^input\[1\] is a number; application grid expects an array of 2 there$/],
    ['nested deeper than the shape', 'grid', [[1, 2], [3, [4]]], /^input\[3\] is an array of length 1; application grid expects float32 numbers$/],
    ['a mismatch deep inside', 'cube', [[[1, 2]], [[3]]], /^input\[1\]\[0\] has length 1; application cube expects shape \[2\] here$/],
    ['a flat array of the wrong size for [2, 2]', 'grid', [1, 2, 3], /^input has 3 values; application grid expects 4 float32 values \(shape \[2, 2\]\)$/],
    ['nested input for a flat shape', 'flat', [[1, 2], [3, 4]], /^input has 2 values; application flat expects 4 float32 values/],
  ];
  for (const [name, appName, input, message] of cases) {
    const error = t.throws(() => toInputRow(apps[appName], input), { instanceOf: InvalidInputError }, name);
    if (error === undefined) continue;
    t.is(error.code, 'INVALID_INPUT', name);
    t.is(error.status, 400, name);
    t.regex(error.message, message, name);
  }
});

test('checkQueryContext takes no context, or a uid that is a non-empty string of at most 256 characters', (t) => {
  t.deepEqual(checkQueryContext(undefined), {});
  t.deepEqual(checkQueryContext({}), {});
  t.deepEqual(checkQueryContext({ uid: 'alice' }), { uid: 'alice' });
  t.deepEqual(checkQueryContext({ uid: 'x'.repeat(256) }), { uid: 'x'.repeat(256) });
  t.is(checkQueryContext({ trace: ROOT_CONTEXT }).trace, ROOT_CONTEXT);
  const cases: [unknown, RegExp][] = [
    [{ uid: '' }, /^uid must be a non-empty string of at most 256 characters, or absent for no user; got ""$/],
    [{ uid: 7 }, /got 7$/],
    [{ uid: null }, /got null$/],
    [{ uid: 'x'.repeat(257) }, /^uid must be a non-empty string/],
    [null, /^the query context must be an object such as \{ uid: "alice" \}; got null$/],
    ['alice', /^the query context must be an object/],
    [[1], /^the query context must be an object/],
    [{ trace: 'abc' }, /^trace must be an OpenTelemetry Context/],
    [{ trace: {} }, /^trace must be an OpenTelemetry Context/],
  ];
  for (const [context, message] of cases) t.throws(() => checkQueryContext(context as never), { instanceOf: InvalidInputError, message }, JSON.stringify(context));
});

test('a Float32Array with NaN or ±Infinity anywhere is refused, naming the position (each of the check\'s four lanes and the tail)', (t) => {
  // Seven values: positions 0-3 and 4-6 cover the four running sums of the check and the leftover loop.
  const seven = app('seven', 'float32', [7]);
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    for (let at = 0; at < 7; at++) {
      const input = Float32Array.from({ length: 7 }, (_, i) => i + 0.5);
      input[at] = bad;
      const error = t.throws(() => toInputRow(seven, input), { instanceOf: InvalidInputError });
      t.true(error?.message.startsWith(`input[${at}] is ${bad};`), error?.message);
    }
  }
  t.deepEqual([...toInputRow(seven, Float32Array.from({ length: 7 }, (_, i) => -i * 1e30))], Array.from({ length: 7 }, (_, i) => Math.fround(-i * 1e30)));
});
