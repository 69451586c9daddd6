import test from 'ava';
import { reviveWireError } from '../../../actors/worker-error.js';
import { toWireError, workerErrorCodes } from '../../../actors/worker/wire-error.js';
import { ClipperError, ModelLoadError, ModelRuntimeError } from '../../../src/errors.js';

test("the worker's error codes are the catalogue's", (t) => {
  t.is(workerErrorCodes.runtime, new ModelRuntimeError('').code);
  t.is(workerErrorCodes.load, new ModelLoadError('').code);
});

test('an error crosses with its name, code, message, stack and cause chain', (t) => {
  const root = Object.assign(new TypeError('input[3] is not a number'), { code: 'E_NAN' });
  const thrown = new Error('predict failed', { cause: root });
  const wire = toWireError(thrown);
  t.deepEqual(JSON.parse(JSON.stringify(wire)), wire, 'plain data: it survives structured clone or JSON');
  t.like(wire, { name: 'Error', message: 'predict failed', cause: { name: 'TypeError', code: 'E_NAN', message: 'input[3] is not a number' } });
  t.is(wire.stack, thrown.stack);
});

test('a failed batch comes back as its catalogue class, the model error under cause', (t) => {
  const cause = toWireError(Object.assign(new RangeError('row 0 out of range'), { code: 'E_RANGE' }));
  const cases: [code: string, expected: typeof ModelRuntimeError | typeof ModelLoadError][] = [
    [workerErrorCodes.runtime, ModelRuntimeError],
    [workerErrorCodes.load, ModelLoadError],
  ];
  for (const [code, expected] of cases) {
    const error = reviveWireError({ name: expected.name, code, message: 'model m@1 failed on a batch of 2: row 0 out of range', cause });
    t.true(error instanceof expected, code);
    t.is(error.code, code);
    t.is(error.message, 'model m@1 failed on a batch of 2: row 0 out of range');
    const revived = error.cause as Error & { code?: string };
    t.is(revived.name, 'RangeError');
    t.is(revived.code, 'E_RANGE');
    t.is(revived.message, 'row 0 out of range');
    t.is(revived.stack, cause.stack, "the worker's stack, not this thread's");
  }
});

test('an error that is not from the catalogue is wrapped in ModelRuntimeError, not passed through', (t) => {
  const error = reviveWireError({ name: 'SyntaxError', code: 'E_PARSE', message: 'bad token' });
  t.true(error instanceof ClipperError);
  t.is(error.code, 'MODEL_RUNTIME_ERROR');
  t.is(error.message, 'SyntaxError: bad token');
  t.like(error.cause as object, { name: 'SyntaxError', code: 'E_PARSE' });
});

test('non-errors and runaway cause chains still cross', (t) => {
  t.deepEqual(toWireError('a string'), { name: 'Error', message: 'a string' });
  const cyclic = new Error('loop');
  (cyclic as { cause?: unknown }).cause = cyclic;
  let depth = 0;
  for (let w = toWireError(cyclic).cause; w !== undefined; w = w.cause) depth++;
  t.is(depth, 8);
});
