import test from 'ava';
import { InvalidOptionError } from '../../../src/errors.js';
import { AbSplitPolicy } from '../../../src/selection/ab-policy.js';
import { Exp3Policy } from '../../../src/selection/exp3-policy.js';
import { Exp4Policy } from '../../../src/selection/exp4-policy.js';
import { KeyedPolicy } from '../../../src/selection/keyed-policy.js';
import { createPolicy } from '../../../src/selection/policy-factory.js';
import { StaticPolicy } from '../../../src/selection/selection-policy.js';

const losses = (l: Record<string, number>): Map<string, number> => new Map(Object.entries(l));

test('each kind builds its policy with its options', (t) => {
  const s = createPolicy({ kind: 'static', model: 'b' });
  t.true(s instanceof StaticPolicy);
  t.deepEqual(s.select(['a', 'b']), ['b']);
  const e3 = createPolicy({ kind: 'exp3', eta: 0.5, fullInformation: false, name: 'bandit' });
  t.true(e3 instanceof Exp3Policy);
  t.like((e3 as Exp3Policy).options, { eta: 0.5, fullInformation: false, name: 'bandit' });
  t.is(e3.learnsFrom, 'selected');
  const e4 = createPolicy({ kind: 'exp4', eta: 0.2 });
  t.true(e4 instanceof Exp4Policy);
  t.is((e4 as Exp4Policy).options.eta, 0.2);
  const ab = createPolicy({ kind: 'ab', weights: { a: 1, b: 3 }, seed: 9 });
  t.true(ab instanceof AbSplitPolicy);
  t.deepEqual((ab as AbSplitPolicy).weights, { a: 1, b: 3 });
  t.is((ab as AbSplitPolicy).options.seed, 9);
});

test('perUser wraps the kind in a KeyedPolicy whose users each get their own policy of that kind and options', (t) => {
  const p = createPolicy({ kind: 'exp4', eta: 1, perUser: { maxKeys: 2, inheritShared: false } });
  t.true(p instanceof KeyedPolicy);
  const keyed = p as KeyedPolicy;
  t.is(keyed.name, 'keyed-ensemble');
  t.deepEqual(keyed.options, { maxKeys: 2, inheritShared: false, name: 'keyed-ensemble' });
  t.is(keyed.learnsFrom, 'all');
  keyed.feedback(losses({ a: 1, b: 0 }), { uid: 'alice' });
  keyed.feedback(losses({ a: 0, b: 1 }), { uid: 'bob' });
  const alice = keyed.policy('alice');
  t.true(alice instanceof Exp4Policy);
  t.is((alice as Exp4Policy).options.eta, 1, 'the user\'s policy has the spec\'s options');
  t.deepEqual((alice as Exp4Policy).snapshot().logWeights, { a: -1, b: 0 });
  t.deepEqual((keyed.policy('bob') as Exp4Policy).snapshot().logWeights, { a: 0, b: -1 });
  t.not(keyed.policy('alice'), keyed.policy(), 'not the shared policy');
  t.deepEqual((keyed.policy() as Exp4Policy).snapshot().logWeights, {}, 'the shared policy learned nothing');
  keyed.feedback(losses({ a: 1 }), { uid: 'carol' });
  t.deepEqual(keyed.keys().sort(), ['bob', 'carol'], 'maxKeys 2: alice, least recently used, is dropped');
});

test('perUser bandit Exp3 learns from its selection, and {} takes the per-user defaults', (t) => {
  const p = createPolicy({ kind: 'exp3', fullInformation: false, perUser: {} }) as KeyedPolicy;
  t.true(p instanceof KeyedPolicy);
  t.is(p.learnsFrom, 'selected');
  t.deepEqual(p.options, { maxKeys: 10_000, inheritShared: true, name: 'keyed-exp3' });
  t.true(p.policy() instanceof Exp3Policy);
});

test('an unknown kind or per-user option is refused naming it', (t) => {
  t.throws(() => createPolicy({ kind: 'magic' } as never), { instanceOf: InvalidOptionError, message: 'policy.kind must be one of "static", "exp3", "exp4", "ab"; got "magic"' });
  t.throws(() => createPolicy(null as never), { instanceOf: InvalidOptionError, message: /^policy\.kind must be one of .*; got undefined$/ });
  t.throws(() => createPolicy({ kind: 'exp3', perUser: { maxKeys: 0 } }), { instanceOf: InvalidOptionError, message: 'keyed.maxKeys must be an integer in [1, 10000000]; got 0' });
  t.throws(() => createPolicy({ kind: 'exp3', perUser: { users: 3 } as never }), { instanceOf: InvalidOptionError, message: /^keyed\.users is not an option; known options: maxKeys, inheritShared, name$/ });
  t.throws(() => createPolicy({ kind: 'exp3', eta: -1, perUser: {} }), { instanceOf: InvalidOptionError, message: /^exp3\.eta must be a number in/ });
});

test('selectsAll says whether select is sure to return every linked model: then a query can be refused unread', (t) => {
  const kinds = {
    static: createPolicy({ kind: 'static' }),
    staticNamed: createPolicy({ kind: 'static', model: 'a' }),
    exp3: createPolicy({ kind: 'exp3' }),
    exp4: createPolicy({ kind: 'exp4' }),
    ab: createPolicy({ kind: 'ab', weights: { a: 1, b: 0 } }),
    perUser: createPolicy({ kind: 'exp3', perUser: {} }),
  };
  const verdicts = (linked: string[]) => Object.fromEntries(Object.entries(kinds).map(([k, p]) => [k, p.selectsAll?.(linked) ?? 'unknown']));
  t.deepEqual(verdicts(['a']), { static: true, staticNamed: true, exp3: true, exp4: true, ab: true, perUser: 'unknown' });
  // A static policy naming another model, an A/B weight of 0: select returns none (the default answer).
  t.deepEqual(verdicts(['b']), { static: true, staticNamed: false, exp3: true, exp4: true, ab: false, perUser: 'unknown' });
  // Two models: only the ensemble asks both.
  t.deepEqual(verdicts(['a', 'b']), { static: false, staticNamed: false, exp3: false, exp4: true, ab: false, perUser: 'unknown' });
  // Where it says true, select agrees.
  for (const linked of [['a'], ['b'], ['a', 'b']]) {
    for (const p of Object.values(kinds)) if (p.selectsAll?.(linked) === true) t.deepEqual([...p.select(linked)].sort(), linked);
  }
});
