import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ForbiddenPathError, ModelLoadError } from '../../../src/errors.js';
import { readModelConfig, resolveModelPath } from '../../../src/config/model-config.js';

function repository(t: { teardown(f: () => void): void }): string {
  const root = mkdtempSync(path.join(tmpdir(), 'clipper-config-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(path.join(root, 'm', '1'), { recursive: true });
  writeFileSync(path.join(root, 'm', '1', 'model.mjs'), 'export function predict() {}');
  return root;
}

const write = (root: string, config: unknown): string => {
  writeFileSync(path.join(root, 'm', '1', 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return path.join(root, 'm', '1', 'model.mjs');
};

test('readModelConfig reads input, output and the batching block; none without a config.json', (t) => {
  const root = repository(t);
  t.is(readModelConfig(path.join(root, 'm', '1', 'model.mjs')), undefined);
  const file = write(root, { input: { dtype: 'int32', shape: [3] }, output: { shape: [2], kind: 'regression' }, batching: { maxBatchSize: 16 } });
  t.like(readModelConfig(file), { input: { dtype: 'int32', shape: [3] }, output: { shape: [2], kind: 'regression' }, batching: { maxBatchSize: 16 } });
  t.deepEqual(readModelConfig(write(root, { input: { dtype: 'float32', shape: [1] } }))?.output, {}, 'output defaults to {}');
});

test('readModelConfig refuses what it cannot use, naming the file', (t) => {
  const root = repository(t);
  const cases: [unknown, RegExp][] = [
    ['{ not json', /config\.json is not valid JSON/],
    [{ input: { dtype: 'float64', shape: [1] } }, /must have input: \{ dtype: "float32" \| "int32", shape: number\[\] \}/],
    [{ output: {} }, /must have input/],
    [{ input: { dtype: 'float32', shape: [1] }, batching: 8 }, /batching must be an object of batching options/],
    [{ input: { dtype: 'float32', shape: [1] }, batching: [8] }, /batching must be an object/],
  ];
  for (const [config, message] of cases) t.throws(() => readModelConfig(write(root, config)), { instanceOf: ModelLoadError, message }, JSON.stringify(config));
});

test('resolveModelPath confines paths to the repository, symlinks resolved first', (t) => {
  const root = repository(t);
  t.is(resolveModelPath(root, 'm/1/model.mjs'), path.join(root, 'm', '1', 'model.mjs'));
  t.throws(() => resolveModelPath(root, 'm/1/nope.onnx'), { instanceOf: ModelLoadError, message: /does not exist/ });
  const outside = mkdtempSync(path.join(tmpdir(), 'clipper-outside-'));
  t.teardown(() => rmSync(outside, { recursive: true, force: true }));
  writeFileSync(path.join(outside, 'x.onnx'), '');
  t.throws(() => resolveModelPath(root, path.join(outside, 'x.onnx')), { instanceOf: ForbiddenPathError });
  symlinkSync(path.join(outside, 'x.onnx'), path.join(root, 'link.onnx'));
  t.throws(() => resolveModelPath(root, 'link.onnx'), { instanceOf: ForbiddenPathError, message: /resolves outside the model repository/ });
});
