import test from 'ava';
import { InvalidInputError, InvalidOptionError } from '../../../src/errors.js';
import { Exp3Policy } from '../../../src/selection/exp3-policy.js';
import { Exp4Policy } from '../../../src/selection/exp4-policy.js';
import { KeyedPolicy, type KeyedPolicyOptions } from '../../../src/selection/keyed-policy.js';
import { StaticPolicy, type PolicySnapshot, type SelectionPolicy } from '../../../src/selection/selection-policy.js';
import { SelectionLog } from '../../../src/selection/selection-log.js';

const losses = (l: Record<string, number>): Map<string, number> => new Map(Object.entries(l));
const exp4 = (): Exp4Policy => new Exp4Policy({ eta: 1 });
const weightsOf = (policy: SelectionPolicy | undefined): Record<string, number> => (policy as Exp4Policy).snapshot().logWeights;
const linked = ['a', 'b'];

test('each uid learns on its own; feedback without a uid trains the shared policy only', (t) => {
  const p = new KeyedPolicy(exp4, { inheritShared: false });
  p.feedback(losses({ a: 1, b: 0 }), { uid: 'alice' });
  p.feedback(losses({ a: 0, b: 1 }), { uid: 'bob' });
  p.feedback(losses({ a: 0.5, b: 0 }));
  t.deepEqual(weightsOf(p.policy('alice')), { a: -1, b: 0 });
  t.deepEqual(weightsOf(p.policy('bob')), { a: 0, b: -1 });
  t.deepEqual(weightsOf(p.policy()), { a: -0.5, b: 0 });
  t.deepEqual(p.keys().sort(), ['alice', 'bob']);

  // And each answer uses its own weights: alice trusts b, bob trusts a.
  const outputs = [
    { model: 'a', version: '1', scores: Float32Array.of(1, 0) },
    { model: 'b', version: '1', scores: Float32Array.of(0, 1) },
  ];
  const e = Math.exp(-1);
  t.true(Math.abs(p.combine(outputs, { uid: 'alice' }).scores[0] - e / (1 + e)) < 1e-6);
  t.true(Math.abs(p.combine(outputs, { uid: 'bob' }).scores[0] - 1 / (1 + e)) < 1e-6);
});

test('a new uid starts from a copy of the shared policy, or fresh with inheritShared: false', (t) => {
  for (const inheritShared of [true, false]) {
    const p = new KeyedPolicy(exp4, { inheritShared });
    p.feedback(losses({ a: 1, b: 0 }));
    p.feedback(losses({ a: 0, b: 0.25 }), { uid: 'carol' });
    t.deepEqual(weightsOf(p.policy('carol')), inheritShared ? { a: -0.75, b: 0 } : { a: 0, b: -0.25 }, `inheritShared ${inheritShared}`);
    t.deepEqual(weightsOf(p.policy()), { a: -1, b: 0 }, 'the shared policy is untouched by carol');
  }
});

test('until their first feedback a user is answered by the shared (or one fresh) policy and holds no key', (t) => {
  const inherit = new KeyedPolicy(exp4);
  inherit.feedback(losses({ a: 1, b: 0 }));
  const outputs = [
    { model: 'a', version: '1', scores: Float32Array.of(1, 0) },
    { model: 'b', version: '1', scores: Float32Array.of(0, 1) },
  ];
  t.deepEqual(inherit.combine(outputs, { uid: 'dave' }), inherit.combine(outputs));
  t.deepEqual(inherit.select(linked, { uid: 'dave' }), linked);
  t.deepEqual(inherit.keys(), []);

  const fresh = new KeyedPolicy(exp4, { inheritShared: false });
  fresh.feedback(losses({ a: 1, b: 0 }));
  t.deepEqual([...fresh.combine(outputs, { uid: 'dave' }).scores], [0.5, 0.5], 'equal weights, not the shared ones');
  t.deepEqual(fresh.keys(), []);
});

test('Exp3 per user: each user\'s draws follow their own learning', (t) => {
  const p = new KeyedPolicy(() => new Exp3Policy({ eta: 1 }));
  for (let i = 0; i < 50; i++) {
    p.feedback(losses({ a: 1, b: 0 }), { uid: 'likes-b' });
    p.feedback(losses({ a: 0, b: 1 }), { uid: 'likes-a' });
  }
  for (let i = 0; i < 100; i++) {
    t.deepEqual(p.select(linked, { uid: 'likes-b' }), ['b']);
    t.deepEqual(p.select(linked, { uid: 'likes-a' }), ['a']);
  }
  t.is(p.name, 'keyed-exp3');
});

test('at most maxKeys users keep a policy: the least recently used is dropped', (t) => {
  const p = new KeyedPolicy(exp4, { maxKeys: 2 });
  p.feedback(losses({ a: 1 }), { uid: 'u1' });
  p.feedback(losses({ a: 1 }), { uid: 'u2' });
  p.feedback(losses({ a: 1 }), { uid: 'u3' });
  t.deepEqual(p.keys(), ['u3', 'u2'], 'u1 was the oldest');
  t.is(p.policy('u1'), undefined);

  // A query counts as a use: u2 is touched, so u3 goes next.
  p.select(linked, { uid: 'u2' });
  p.feedback(losses({ b: 1 }), { uid: 'u4' });
  t.deepEqual(p.keys(), ['u4', 'u2']);

  // A dropped user who comes back starts over (from the shared policy).
  p.feedback(losses({ b: 1 }), { uid: 'u1' });
  t.deepEqual(weightsOf(p.policy('u1')), { b: 0 });
  t.deepEqual(p.keys(), ['u1', 'u4']);
});

test('snapshot and restore round-trip every user, in recency order', (t) => {
  const p = new KeyedPolicy(exp4, { maxKeys: 3 });
  p.feedback(losses({ a: 0.5, b: 0 }));
  p.feedback(losses({ a: 1, b: 0 }), { uid: 'alice' });
  p.feedback(losses({ a: 0, b: 1 }), { uid: 'bob' });
  p.feedback(losses({ a: 0.2, b: 0.7 }), { uid: '__proto__' });
  p.select(linked, { uid: 'alice' });
  const snapshot = JSON.parse(JSON.stringify(p.snapshot())) as PolicySnapshot;
  t.like(snapshot, { kind: 'keyed', name: 'keyed-ensemble', maxKeys: 3, inheritShared: true });
  t.deepEqual(
    (snapshot.users as [string, unknown][]).map(([uid]) => uid),
    ['bob', '__proto__', 'alice'],
    'least recently used first',
  );

  const q = new KeyedPolicy(exp4, { maxKeys: 3 });
  q.restore(snapshot);
  t.deepEqual(q.snapshot(), p.snapshot());
  t.deepEqual(q.keys(), p.keys());
  t.deepEqual(weightsOf(q.policy('__proto__')), weightsOf(p.policy('__proto__')));

  // Into a smaller bound, the most recent users survive.
  const small = new KeyedPolicy(exp4, { maxKeys: 2 });
  small.restore(snapshot);
  t.deepEqual(small.keys(), ['alice', '__proto__']);
});

test('policies without snapshots are kept as null and made fresh on restore', (t) => {
  const p = new KeyedPolicy(() => new StaticPolicy('a'));
  p.feedback(losses({ a: 1 }), { uid: 'x' });
  const snapshot = p.snapshot();
  t.deepEqual(snapshot, { kind: 'keyed', name: 'keyed-static', maxKeys: 10_000, inheritShared: true, shared: null, users: [['x', null]] });
  const q = new KeyedPolicy(() => new StaticPolicy('a'));
  q.restore(snapshot);
  t.deepEqual(q.keys(), ['x']);
  t.deepEqual(q.select(['b', 'a'], { uid: 'x' }), ['a']);
});

test('restore refuses malformed snapshots with InvalidOptionError and changes nothing', (t) => {
  const p = new KeyedPolicy(exp4);
  p.feedback(losses({ a: 1, b: 0 }), { uid: 'alice' });
  const before = p.snapshot();
  const good = { kind: 'exp4', logWeights: { a: 0 } };
  const cases: [snapshot: unknown, message: RegExp][] = [
    [null, /^keyed snapshot must be an object; got null/],
    [{ kind: 'exp4', shared: null, users: [] }, /^keyed snapshot\.kind must be "keyed"; got "exp4"/],
    [{ kind: 'keyed', shared: null }, /^keyed snapshot\.users must be an array of \[uid, snapshot\] pairs; got undefined/],
    [{ kind: 'keyed', shared: 'x', users: [] }, /^keyed snapshot\.shared must be an object; got "x"/],
    [{ kind: 'keyed', shared: { kind: 3 }, users: [] }, /^keyed snapshot\.shared\.kind must be a string; got 3/],
    [{ kind: 'keyed', shared: { kind: 'exp3', logWeights: {} }, users: [] }, /^keyed snapshot\.shared: exp4 snapshot\.kind must be "exp4"; got "exp3"/],
    [{ kind: 'keyed', shared: null, users: [['alice']] }, /^keyed snapshot\.users\[0\] must be a \[uid, snapshot\] pair/],
    [{ kind: 'keyed', shared: null, users: [[7, good]] }, /^keyed snapshot\.users\[0\] must be a \[uid, snapshot\] pair with a string uid/],
    [
      { kind: 'keyed', shared: good, users: [['alice', good], ['bob', { kind: 'exp4', logWeights: { a: 'x' } }]] },
      /^keyed snapshot\.users\[1\] \(uid "bob"\): exp4 snapshot\.logWeights\["a"\] must be a finite number/,
    ],
  ];
  for (const [snapshot, message] of cases) {
    t.throws(() => p.restore(snapshot as PolicySnapshot), { instanceOf: InvalidOptionError, message }, JSON.stringify(snapshot));
  }
  t.deepEqual(p.snapshot(), before);
});

test('bad options and factories are refused with a message naming them', (t) => {
  const cases: [factory: unknown, options: unknown, message: string | RegExp][] = [
    [exp4, { maxKeys: 0 }, 'keyed.maxKeys must be an integer in [1, 10000000]; got 0'],
    [exp4, { maxKeys: 2.5 }, 'keyed.maxKeys must be an integer in [1, 10000000]; got 2.5'],
    [exp4, { inheritShared: 1 }, 'keyed.inheritShared must be a boolean; got 1'],
    [exp4, { name: '' }, /^keyed\.name must be a name/],
    [exp4, { max: 3 }, 'keyed.max is not an option; known options: maxKeys, inheritShared, name'],
    [exp4, 5, 'keyed options must be an object; got 5'],
    [new Exp4Policy(), undefined, /^keyed\.factory must be a function returning a SelectionPolicy; got \{/],
    [() => ({}), undefined, 'keyed.factory() must be a SelectionPolicy (an object with select and combine); got {}'],
  ];
  for (const [factory, options, message] of cases) {
    const error = t.throws(() => new KeyedPolicy(factory as () => SelectionPolicy, options as KeyedPolicyOptions), { instanceOf: InvalidOptionError });
    if (typeof message === 'string') t.is(error.message, message);
    else t.regex(error.message, message);
  }
  const p = new KeyedPolicy(exp4, { name: 'per-user' });
  t.is(p.name, 'per-user');
  t.true(Object.isFrozen(p.options));
  t.throws(() => p.select(linked, { uid: 3 as unknown as string }), { instanceOf: InvalidInputError, message: /^uid must be a non-empty string .*; got 3$/ });
});

test('a uid that is not a non-empty string is the caller\'s error (InvalidInputError), checked before anything changes (issue 14, bugs 2 and 7)', (t) => {
  const p = new KeyedPolicy(exp4);
  // "" too: a user of its own that a client could not tell from no user (the facade refuses it the same way).
  for (const uid of [7, null, { id: 'x' }, ['a'], '']) {
    const context = { uid } as never;
    const message = /^uid must be a non-empty string of at most 256 characters, or absent for no user; got /;
    t.throws(() => p.select(linked, context), { instanceOf: InvalidInputError, message });
    t.throws(() => p.feedback(losses({ a: 1 }), context), { instanceOf: InvalidInputError, message });
  }
  t.deepEqual(p.keys(), []);
  t.deepEqual(weightsOf(p.policy()), {});
});

test('bandit Exp3 per user: a user\'s first feedback divides by the draw\'s probability, not by one over every model the table held', (t) => {
  // The shared table knows a, b and c; only a and b are linked now. The user's draw of a had p = 0.5; their own
  // policy, copied from the shared one at this first feedback, once computed p(a) over a, b and c (1/3).
  const p = new KeyedPolicy(() => new Exp3Policy({ eta: 0.5, fullInformation: false, random: () => 0 }));
  p.feedback(losses({ c: 0 }));
  const alice = { uid: 'alice' };
  const log = new SelectionLog();
  log.record('D', alice, p, p.select(linked, alice), linked);
  const draw = log.take('D', alice, p);
  t.deepEqual(draw, { models: ['a'], probability: 0.5 });
  p.feedback(losses({ a: 1 }), alice, draw);
  t.deepEqual(weightsOf(p.policy('alice')), { a: -1, b: 0, c: 0 });
});

test('maxKeys at both ends of [1, 10000000] is accepted; one past the top is refused', (t) => {
  t.is(new KeyedPolicy(exp4, { maxKeys: 1 }).options.maxKeys, 1);
  t.is(new KeyedPolicy(exp4, { maxKeys: 10_000_000 }).options.maxKeys, 10_000_000);
  t.throws(() => new KeyedPolicy(exp4, { maxKeys: 10_000_001 }), { instanceOf: InvalidOptionError, message: 'keyed.maxKeys must be an integer in [1, 10000000]; got 10000001' });
});

test('a factory that returns null, or an object missing select or combine, is refused', (t) => {
  const select = (): string[] => [];
  const combine = () => ({ scores: new Float32Array(0), model: 'x', version: '1' });
  for (const made of [null, { combine }, { select }]) {
    t.throws(() => new KeyedPolicy(() => made as unknown as SelectionPolicy), { instanceOf: InvalidOptionError, message: /^keyed\.factory\(\) must be a SelectionPolicy \(an object with select and combine\)/ }, String(made));
  }
});

test('learnsFrom is the kept policies\' own, "all" when they do not say', (t) => {
  t.is(new KeyedPolicy(() => new Exp3Policy({ fullInformation: false })).learnsFrom, 'selected');
  t.is(new KeyedPolicy(() => new Exp3Policy()).learnsFrom, 'all');
  t.is(new KeyedPolicy(() => new StaticPolicy()).learnsFrom, 'all');
});

test('with inheritShared: false, queries without a uid are still answered by the shared policy, not the fresh one', (t) => {
  const p = new KeyedPolicy(() => new Exp3Policy({ eta: 1 }), { inheritShared: false });
  for (let i = 0; i < 5; i++) p.feedback(losses({ a: 1, b: 0 }));
  const shared = 1 / (1 + Math.exp(-5));
  t.true(Math.abs(p.selectionProbability(['b'], linked) - shared) < 1e-12, 'no uid: the shared policy');
  t.is(p.selectionProbability(['b'], linked, { uid: 'new' }), 0.5, 'a uid without feedback: the fresh policy');
});

test('a policy without selectionProbability, feedback or snapshot works per user too (static)', (t) => {
  const p = new KeyedPolicy(() => new StaticPolicy('a'));
  t.is(p.selectionProbability(['a'], linked), 1);
  t.is(p.selectionProbability(['a'], linked, { uid: 'u' }), 1);
  t.notThrows(() => p.feedback(losses({ a: 1 })));
  t.notThrows(() => p.feedback(losses({ a: 1 }), { uid: 'u' }));
  t.deepEqual(p.keys(), ['u']);
});

/** A policy that keeps a counter; `snapshot` and `restore` are present or not as asked. */
function counting(parts: { snapshot: boolean; restore: boolean; restoreThrows?: Error }): () => SelectionPolicy {
  return () => {
    let count = 0;
    const policy: SelectionPolicy = {
      name: 'counting',
      select: (l) => l.slice(0, 1),
      combine: () => ({ scores: new Float32Array(0), model: 'x', version: '1' }),
      feedback: () => {
        count++;
      },
    };
    if (parts.snapshot) policy.snapshot = () => ({ kind: 'counting', count });
    if (parts.restore) {
      policy.restore = (s) => {
        if (parts.restoreThrows !== undefined) throw parts.restoreThrows;
        count = s.count as number;
      };
    }
    return policy;
  };
}

test('a new user inherits the shared state only when the policy can both snapshot and restore', (t) => {
  const both = new KeyedPolicy(counting({ snapshot: true, restore: true }));
  both.feedback(losses({ a: 1 }));
  both.feedback(losses({ a: 1 }), { uid: 'u' });
  t.deepEqual(both.policy('u')?.snapshot?.(), { kind: 'counting', count: 2 }, 'one inherited, one its own');
  for (const parts of [{ snapshot: true, restore: false }, { snapshot: false, restore: true }]) {
    const p = new KeyedPolicy(counting(parts));
    p.feedback(losses({ a: 1 }));
    t.notThrows(() => p.feedback(losses({ a: 1 }), { uid: 'u' }), JSON.stringify(parts));
    t.deepEqual(p.keys(), ['u']);
  }
});

test('restore makes a fresh policy for a null snapshot; an error that is not an option error comes through as it is', (t) => {
  const p = new KeyedPolicy(() => new Exp3Policy());
  p.restore({ kind: 'keyed', shared: null, users: [['u', null]] });
  t.deepEqual(p.keys(), ['u']);
  t.deepEqual(p.policy('u')?.snapshot?.().logWeights, {});
  const noRestore = new KeyedPolicy(counting({ snapshot: true, restore: false }));
  noRestore.restore({ kind: 'keyed', shared: { kind: 'counting', count: 3 }, users: [['u', { kind: 'counting', count: 1 }]] });
  t.deepEqual(noRestore.policy()?.snapshot?.(), { kind: 'counting', count: 0 }, 'a policy that cannot restore starts fresh');
  t.deepEqual(noRestore.keys(), ['u']);
  const bug = new TypeError('a bug in restore');
  const q = new KeyedPolicy(counting({ snapshot: true, restore: true, restoreThrows: bug }));
  t.is(t.throws(() => q.restore({ kind: 'keyed', shared: { kind: 'counting', count: 1 }, users: [] })), bug);
});

test('an option error from a user\'s restore names the user and keeps the original as its cause', (t) => {
  const p = new KeyedPolicy(() => new Exp3Policy());
  const error = t.throws(() => p.restore({ kind: 'keyed', shared: null, users: [['alice', { kind: 'exp4', logWeights: {} }]] }), { instanceOf: InvalidOptionError });
  t.regex(error.message, /^keyed snapshot\.users\[0\] \(uid "alice"\): exp3 snapshot\.kind must be "exp3"/);
  t.true(error.cause instanceof InvalidOptionError);
  t.regex((error.cause as Error).message, /^exp3 snapshot\.kind/);
});
