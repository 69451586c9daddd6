import test from 'ava';
import { InternalError } from '../../../src/errors.js';
import { chosenAnswer, StaticPolicy } from '../../../src/selection/selection-policy.js';

const out = (model: string, scores: number[]): { model: string; version: string; scores: Float32Array } => ({ model, version: '1', scores: Float32Array.from(scores) });

test('static: the named model when linked, else none; without a name, the first linked model', (t) => {
  t.deepEqual(new StaticPolicy('b').select(['a', 'b']), ['b']);
  t.deepEqual(new StaticPolicy('c').select(['a', 'b']), []);
  t.deepEqual(new StaticPolicy().select(['a', 'b']), ['a']);
  t.deepEqual(new StaticPolicy().select([]), []);
});

test('a single-model policy passes its model\'s answer through; no output at all is an internal error, not an option error', (t) => {
  const answer = chosenAnswer('exp3', [out('a', [0.2, 0.8]), out('b', [1, 0])]);
  t.deepEqual(answer, { scores: Float32Array.of(0.2, 0.8), model: 'a', version: '1', confidence: 1, contributors: ['a'] });
  t.deepEqual(new StaticPolicy().combine([out('a', [3])]), { scores: Float32Array.of(3), model: 'a', version: '1', confidence: 1, contributors: ['a'] });
  t.throws(() => new StaticPolicy().combine([]), { instanceOf: InternalError, message: 'static.combine needs at least one output; got none' });
});
