import test from 'ava';
import { AbSplitPolicy } from '../../../src/selection/ab-policy.js';
import { Exp3Policy } from '../../../src/selection/exp3-policy.js';
import { SelectionLog } from '../../../src/selection/selection-log.js';
import { StaticPolicy, type SelectionPolicy } from '../../../src/selection/selection-policy.js';

/** A policy that reports every draw of `model` at probability `p`, so draws are told apart by what they carry. */
function fixed(p = 0.5): SelectionPolicy {
  return { name: 'fixed', select: (linked) => linked.slice(0, 1), combine: () => { throw new Error('unused'); }, selectionProbability: () => p, learnsFrom: 'selected' };
}
const policy = fixed();
const draw = (model: string, probability = 0.5): { models: string[]; probability: number } => ({ models: [model], probability });
const linked = ['a', 'b', 'c', 'd', 'none', 'empty', 'dash', 'hash', 'empty-context'];

test('a draw is taken once: a repeated feedback finds nothing (issue 14, bug 4)', (t) => {
  const log = new SelectionLog();
  log.record('D', undefined, policy, ['a'], linked);
  t.deepEqual(log.take('D', undefined, policy), draw('a'));
  t.is(log.take('D', undefined, policy), undefined);
  t.is(log.size, 0, 'an input with no draw left holds no entry');
});

test('repeated queries of one input are separate draws, taken oldest first, each with its own probability', (t) => {
  const log = new SelectionLog();
  log.record('D', { uid: 'u' }, policy, ['a'], linked);
  const other = fixed(0.25);
  log.record('D', { uid: 'u' }, { ...policy, selectionProbability: other.selectionProbability }, ['b'], linked);
  log.record('E', { uid: 'u' }, policy, ['c'], linked);
  t.deepEqual(log.take('D', { uid: 'u' }, policy), draw('a', 0.5));
  t.is(log.take('D', { uid: 'u' }, policy), undefined, 'the second draw was made by another policy object');
  t.deepEqual(log.take('E', { uid: 'u' }, policy), draw('c'));
});

test('no uid, uid "" and other uids are different users (issue 14, bug 7)', (t) => {
  const log = new SelectionLog();
  log.record('D', undefined, policy, ['none'], linked);
  log.record('D', {}, policy, ['empty-context'], linked);
  log.record('D', { uid: '' }, policy, ['empty'], linked);
  log.record('D', { uid: '-' }, policy, ['dash'], linked);
  log.record('D', { uid: 'a#b' }, policy, ['hash'], linked);
  t.deepEqual(log.take('D', { uid: '' }, policy), draw('empty'));
  t.is(log.take('D', { uid: '' }, policy), undefined);
  t.deepEqual(log.take('D', { uid: 'a#b' }, policy), draw('hash'));
  t.deepEqual(log.take('D', { uid: '-' }, policy), draw('dash'));
  t.deepEqual(log.take('D', undefined, policy), draw('none'), 'no context and an empty context are both "no uid"');
  t.deepEqual(log.take('D', {}, policy), draw('empty-context'));
});

test('a draw belongs to the policy that made it: after the policy is replaced, its old draws are dropped', (t) => {
  const log = new SelectionLog();
  const old = fixed(0.5);
  const replacement = fixed(0.25);
  log.record('D', undefined, old, ['a'], linked);
  log.record('D', undefined, old, ['b'], linked);
  log.record('D', undefined, replacement, ['c'], linked);
  t.deepEqual(log.take('D', undefined, replacement), draw('c', 0.25), 'the two older draws by the old policy are skipped');
  t.is(log.size, 0, 'and dropped');
  log.record('D', undefined, old, ['a'], linked);
  t.is(log.take('D', undefined, replacement), undefined);
  t.is(log.take('D', undefined, old), undefined, 'dropped, not kept for the old policy');
});

test('bounded: at most maxDrawsPerKey per input (oldest dropped) and maxKeys inputs (least recently used dropped)', (t) => {
  const log = new SelectionLog(2, 3);
  for (const m of ['a', 'b', 'c', 'd']) log.record('D', undefined, policy, [m], linked);
  t.deepEqual([0, 1, 2, 3].map(() => log.take('D', undefined, policy)?.models[0]), ['b', 'c', 'd', undefined]);
  log.record('D', undefined, policy, ['a'], linked);
  log.record('E', undefined, policy, ['b'], linked);
  log.record('D', undefined, policy, ['c'], linked);
  log.record('F', undefined, policy, ['d'], linked);
  t.is(log.size, 2);
  t.is(log.take('E', undefined, policy), undefined, 'E was the least recently used');
  t.deepEqual(log.take('D', undefined, policy), draw('a'));
  log.clear();
  t.is(log.size, 0);
});

test('record asks the policy for its draw\'s probability; a deterministic policy\'s draw has probability 1', (t) => {
  const log = new SelectionLog();
  const exp3 = new Exp3Policy({ fullInformation: false, random: () => 0 });
  const four = ['a', 'b', 'c', 'd'];
  log.record('D', undefined, exp3, exp3.select(four), four);
  t.deepEqual(log.take('D', undefined, exp3), { models: ['a'], probability: 0.25 });
  const ab = new AbSplitPolicy({ a: 3, b: 1 });
  log.record('D', undefined, ab, ['a'], ['a', 'b']);
  t.deepEqual(log.take('D', undefined, ab), { models: ['a'], probability: 1 }, 'A/B reports no probability (it learns nothing)');
  const fixedModel = new StaticPolicy();
  log.record('D', undefined, fixedModel, fixedModel.select(['a', 'b']), ['a', 'b']);
  t.deepEqual(log.take('D', undefined, fixedModel), { models: ['a'], probability: 1 });
});

test('no uid and the uid "undefined" are different users', (t) => {
  const log = new SelectionLog();
  log.record('D', undefined, policy, ['none'], linked);
  t.is(log.take('D', { uid: 'undefined' }, policy), undefined);
  t.deepEqual(log.take('D', undefined, policy), draw('none'));
});
