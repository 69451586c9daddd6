import test from 'ava';
import { Exp3Policy } from '../../../src/selection/exp3-policy.js';
import { drawOf, SelectionLog } from '../../../src/selection/selection-log.js';
import { StaticPolicy } from '../../../src/selection/selection-policy.js';

const draw = (model: string, probability = 0.5): { models: string[]; probability: number } => ({ models: [model], probability });

test('a draw is taken once: a repeated feedback finds nothing (issue 14, bug 4)', (t) => {
  const log = new SelectionLog();
  log.record('D', undefined, draw('a'));
  t.deepEqual(log.take('D', undefined), draw('a'));
  t.is(log.take('D', undefined), undefined);
  t.is(log.size, 0, 'an input with no draw left holds no entry');
});

test('repeated queries of one input are separate draws, taken oldest first', (t) => {
  const log = new SelectionLog();
  log.record('D', { uid: 'u' }, draw('a', 0.5));
  log.record('D', { uid: 'u' }, draw('b', 0.25));
  log.record('E', { uid: 'u' }, draw('c'));
  t.deepEqual(log.take('D', { uid: 'u' }), draw('a', 0.5));
  t.deepEqual(log.take('D', { uid: 'u' }), draw('b', 0.25));
  t.is(log.take('D', { uid: 'u' }), undefined);
  t.deepEqual(log.take('E', { uid: 'u' }), draw('c'));
});

test('no uid, uid "" and other uids are different users (issue 14, bug 7)', (t) => {
  const log = new SelectionLog();
  log.record('D', undefined, draw('none'));
  log.record('D', {}, draw('empty-context'));
  log.record('D', { uid: '' }, draw('empty'));
  log.record('D', { uid: '-' }, draw('dash'));
  log.record('D', { uid: 'a#b' }, draw('hash'));
  t.deepEqual(log.take('D', { uid: '' }), draw('empty'));
  t.is(log.take('D', { uid: '' }), undefined);
  t.deepEqual(log.take('D', { uid: 'a#b' }), draw('hash'));
  t.deepEqual(log.take('D', { uid: '-' }), draw('dash'));
  t.deepEqual(log.take('D', undefined), draw('none'), 'no context and an empty context are both "no uid"');
  t.deepEqual(log.take('D', {}), draw('empty-context'));
});

test('bounded: at most maxDrawsPerKey per input (oldest dropped) and maxKeys inputs (least recently used dropped)', (t) => {
  const log = new SelectionLog(2, 3);
  for (const m of ['a', 'b', 'c', 'd']) log.record('D', undefined, draw(m));
  t.deepEqual([0, 1, 2, 3].map(() => log.take('D', undefined)?.models[0]), ['b', 'c', 'd', undefined]);
  log.record('D', undefined, draw('a'));
  log.record('E', undefined, draw('b'));
  log.record('D', undefined, draw('c'));
  log.record('F', undefined, draw('d'));
  t.is(log.size, 2);
  t.is(log.take('E', undefined), undefined, 'E was the least recently used');
  t.deepEqual(log.take('D', undefined), draw('a'));
  log.clear();
  t.is(log.size, 0);
});

test('drawOf records the probability the policy reports for its draw, or 1 for a deterministic policy', (t) => {
  const exp3 = new Exp3Policy({ fullInformation: false, random: () => 0 });
  const selected = exp3.select(['a', 'b', 'c', 'd']);
  t.deepEqual(drawOf(exp3, selected, ['a', 'b', 'c', 'd']), { models: ['a'], probability: 0.25 });
  const fixed = new StaticPolicy();
  t.deepEqual(drawOf(fixed, fixed.select(['a', 'b']), ['a', 'b']), { models: ['a'], probability: 1 });
});
