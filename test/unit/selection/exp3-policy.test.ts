import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { InternalError, InvalidOptionError } from '../../../src/errors.js';
import { Exp3Policy, exp3Defaults, type Exp3Options } from '../../../src/selection/exp3-policy.js';
import type { PolicySnapshot } from '../../../src/selection/selection-policy.js';

type Losses = Record<string, number>;
const losses = (l: Losses): Map<string, number> => new Map(Object.entries(l));

function close(t: ExecutionContext, actual: number, expected: number, tolerance: number, label: string): void {
  t.true(Math.abs(actual - expected) <= tolerance, `${label}: ${actual} is not within ${tolerance} of ${expected}`);
}

function closeRecord(t: ExecutionContext, actual: Record<string, number>, expected: Record<string, number>, label: string): void {
  t.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), label);
  for (const [k, v] of Object.entries(expected)) close(t, actual[k], v, 1e-12, `${label} [${k}]`);
}

/** A policy whose log weights are set by hand (restore shifts them so the largest is 0). */
function withWeights(logWeights: Record<string, number>, options: Exp3Options = {}): Exp3Policy {
  const p = new Exp3Policy(options);
  p.restore({ kind: 'exp3', logWeights });
  return p;
}

const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

test('a random source outside [0, 1) is refused, naming the option (the draw is checked by drawUniform: kernel/random.test.ts)', (t) => {
  const p = new Exp3Policy({ random: () => 1 });
  t.throws(() => p.select(['a', 'b']), { instanceOf: InvalidOptionError, message: /exp3\.random must return/ });
});

test('full-information updates give the hand-computed log weights', (t) => {
  const cases: { eta: number; events: Losses[]; expected: Record<string, number> }[] = [
    { eta: 0.5, events: [{ a: 1, b: 0 }], expected: { a: -0.5, b: 0 } },
    { eta: 0.5, events: [{ a: 1, b: 0 }, { a: 0, b: 1 }], expected: { a: 0, b: 0 } },
    // a: -0.1, b: -0.2, shifted up by 0.1 so the largest is 0.
    { eta: 0.2, events: [{ a: 0.5, b: 1 }], expected: { a: 0, b: -0.1 } },
    // a: -2, b: -0.5, c: -0.25, shifted up by 0.25.
    { eta: 1, events: [{ a: 1, b: 0.5, c: 0 }, { a: 1, b: 0, c: 0.25 }], expected: { a: -1.75, b: -0.25, c: 0 } },
    { eta: 0.3, events: [{ a: 1, b: 1 }], expected: { a: 0, b: 0 } },
    // c joins at the mean weight (e^-0.5 + 1) / 2 of the table, then loses nothing.
    { eta: 0.5, events: [{ a: 1, b: 0 }, { c: 0 }], expected: { a: -0.5, b: 0, c: Math.log((Math.exp(-0.5) + 1) / 2) } },
    // Feedback about some models only leaves the others alone (up to the shift).
    { eta: 0.5, events: [{ a: 1, b: 0 }, { b: 1 }], expected: { a: 0, b: 0 } },
    { eta: 0.5, events: [{ a: 1, b: 0 }, {}], expected: { a: -0.5, b: 0 } },
  ];
  for (const { eta, events, expected } of cases) {
    const p = new Exp3Policy({ eta });
    for (const e of events) p.feedback(losses(e));
    const label = `eta ${eta}, ${JSON.stringify(events)}`;
    closeRecord(t, p.snapshot().logWeights, expected, label);
    t.is(p.updates, events.filter((e) => Object.keys(e).length > 0).length, label);
  }
});

test('probabilities are the normalised weights: eta 0.5, losses [1, 0] -> [e^-0.5, 1] / (1 + e^-0.5)', (t) => {
  const p = new Exp3Policy({ eta: 0.5 });
  p.feedback(losses({ a: 1, b: 0 }));
  const probs = p.probabilities(['a', 'b']);
  close(t, probs.get('a') as number, Math.exp(-0.5) / (1 + Math.exp(-0.5)), 1e-15, 'p(a)');
  close(t, probs.get('b') as number, 1 / (1 + Math.exp(-0.5)), 1e-15, 'p(b)');
  t.deepEqual([...p.probabilities().keys()], ['a', 'b'], 'default: every model seen');
});

test('bandit updates without their draw touch only the chosen model, importance-weighted by its probability now', (t) => {
  for (const gamma of [0, 0.2]) {
    const eta = 0.5;
    const p = new Exp3Policy({ eta, gamma, fullInformation: false });
    p.select(['a', 'b']);
    const mix = (q: number): number => (1 - gamma) * q + gamma / 2;
    // Both at weight 1: p(a) = 0.5, so a loses eta * 1 / 0.5.
    let a = -eta / mix(0.5);
    p.feedback(losses({ a: 1 }));
    closeRecord(t, p.snapshot().logWeights, { a, b: 0 }, `gamma ${gamma}, first`);
    // Now p(a) = mix(e^a / (1 + e^a)).
    a -= (eta * 1) / mix(Math.exp(a) / (1 + Math.exp(a)));
    p.feedback(losses({ a: 1 }));
    closeRecord(t, p.snapshot().logWeights, { a, b: 0 }, `gamma ${gamma}, second`);
    // b, at p(b) = mix(1 / (1 + e^a)), loses half a unit.
    const b = -(eta * 0.5) / mix(1 / (1 + Math.exp(a)));
    p.feedback(losses({ b: 0.5 }));
    const top = Math.max(a, b);
    closeRecord(t, p.snapshot().logWeights, { a: a - top, b: b - top }, `gamma ${gamma}, third`);
  }
});

test('bandit feedback about a model outside the last selection counts it among the linked models', (t) => {
  const p = new Exp3Policy({ eta: 0.5, fullInformation: false });
  p.select(['a', 'b']);
  p.feedback(losses({ c: 1 }));
  // c joined at weight 1 among three: p(c) = 1/3.
  closeRecord(t, p.snapshot().logWeights, { a: 0, b: 0, c: -1.5 }, 'c');
});

test('bandit feedback with its draw divides by the probability the draw had, not the probability now (issue 14, bug 4)', (t) => {
  // Three queries of one input draw a at p = 0.5 each; their three feedback events must each cost a
  // eta / 0.5 = 1. Read at feedback time, p(a) shrinks after every update: 0 -> -1 -> -2.86 -> -12.08.
  const p = new Exp3Policy({ eta: 0.5, fullInformation: false, random: () => 0 });
  const draws = [0, 1, 2].map(() => {
    const selected = p.select(['a', 'b']);
    return { models: selected, probability: p.selectionProbability(selected, ['a', 'b']) };
  });
  t.deepEqual(draws.map((d) => [d.models, d.probability]), [[['a'], 0.5], [['a'], 0.5], [['a'], 0.5]]);
  for (const [k, draw] of draws.entries()) {
    p.feedback(losses({ a: 1 }), undefined, draw);
    closeRecord(t, p.snapshot().logWeights, { a: -(k + 1), b: 0 }, `after feedback ${k + 1}`);
  }
  t.is(p.updates, 3);
});

test('selectionProbability is the draw\'s own probability, and the probability over the linked models otherwise', (t) => {
  const p = withWeights({ a: 0, b: Math.log(3) }, { fullInformation: false, random: () => 0.99 });
  const selected = p.select(['a', 'b']);
  t.deepEqual(selected, ['b']);
  close(t, p.selectionProbability(selected, ['a', 'b']), 0.75, 1e-12, 'the draw');
  close(t, p.selectionProbability(['a'], ['a', 'b']), 0.25, 1e-12, 'a, not drawn');
  close(t, p.selectionProbability(['a'], ['a', 'b', 'a']), 0.25, 1e-12, 'repeats count once');
  t.is(p.selectionProbability(['c'], ['a', 'b']), 0, 'not linked');
  t.is(p.selectionProbability(['a', 'b'], ['a', 'b']), 0, 'Exp3 never selects two');
});

test('bandit feedback whose draw is for another model, or has no valid probability, is refused and changes nothing', (t) => {
  const p = new Exp3Policy({ fullInformation: false });
  p.select(['a', 'b']);
  const before = p.snapshot();
  t.throws(() => p.feedback(losses({ a: 1 }), undefined, { models: ['b'], probability: 0.5 }), {
    instanceOf: InvalidOptionError,
    message: 'exp3.feedback: the loss is for a, but the draw it answers selected b',
  });
  for (const probability of [0, -0.1, 1.5, Number.NaN, '0.5' as unknown as number]) {
    t.throws(() => p.feedback(losses({ a: 1 }), undefined, { models: ['a'], probability }), {
      instanceOf: InvalidOptionError,
      message: /^exp3\.feedback: the draw's probability must be in \(0, 1\]; got/,
    });
  }
  t.deepEqual(p.snapshot(), before);
});

test('a zero loss leaves a weight alone even when its probability underflows to 0 (issue 14, bug 6: was NaN)', (t) => {
  // maxLogWeightGap 1000 lets b trail by 800: p(b) = e^-800 underflows to 0, and eta / p to Infinity.
  const p = withWeights({ a: 0, b: -800 }, { eta: 0.5, fullInformation: false, maxLogWeightGap: 1000 });
  t.is(p.probabilities(['a', 'b']).get('b'), 0);
  p.select(['a', 'b']);
  p.feedback(losses({ b: 0 }));
  t.deepEqual(p.snapshot().logWeights, { a: 0, b: -800 }, 'not NaN, and not sunk to the bottom');
  p.feedback(losses({ b: 1 }));
  t.deepEqual(p.snapshot().logWeights, { a: 0, b: -1000 }, 'a positive loss at p = 0 lands on the gap bound');
  const full = withWeights({ a: 0, b: -800 }, { maxLogWeightGap: 1000 });
  full.feedback(losses({ a: 0, b: 0 }));
  t.deepEqual(full.snapshot().logWeights, { a: 0, b: -800 });
});

test('bandit feedback carrying more than the chosen model is refused and changes nothing', (t) => {
  const p = new Exp3Policy({ fullInformation: false });
  p.select(['a', 'b']);
  const before = p.snapshot();
  const error = t.throws(() => p.feedback(losses({ a: 1, b: 0 })), { instanceOf: InvalidOptionError });
  t.regex(error.message, /fullInformation: false takes the chosen model's loss only; got 2 losses \(a, b\)/);
  t.deepEqual(p.snapshot(), before);
});

test('losses outside [0, 1] are refused before any weight changes', (t) => {
  const p = new Exp3Policy();
  p.feedback(losses({ a: 1, b: 0 }));
  const before = p.snapshot();
  for (const bad of [{ a: 0, b: 2 }, { a: 0.5, b: -1 }, { a: Number.NaN }] as Losses[]) {
    t.throws(() => p.feedback(losses(bad)), { instanceOf: InvalidOptionError, message: /exp3\.feedback: the loss of/ });
  }
  t.deepEqual(p.snapshot(), before);
});

test('gamma mixes in uniform exploration and minProbability floors every model, both summing to 1', (t) => {
  const cases: { logWeights: Record<string, number>; options: Exp3Options; expected: number[] }[] = [
    { logWeights: { a: 0, b: Math.log(1 / 3) }, options: {}, expected: [0.75, 0.25] },
    { logWeights: { a: 0, b: Math.log(1 / 3) }, options: { gamma: 0.3 }, expected: [0.7 * 0.75 + 0.15, 0.7 * 0.25 + 0.15] },
    { logWeights: { a: 0, b: -5 }, options: { gamma: 1 }, expected: [0.5, 0.5] },
    // q = [0.6, 0.3, 0.1], floor 0.3: c is pinned, which pushes b under the floor too; a keeps the rest.
    { logWeights: { a: Math.log(0.6), b: Math.log(0.3), c: Math.log(0.1) }, options: { minProbability: 0.3 }, expected: [0.4, 0.3, 0.3] },
    { logWeights: { a: 0, b: -100, c: -100 }, options: { minProbability: 0.1 }, expected: [0.8, 0.1, 0.1] },
    { logWeights: { a: 0, b: -100 }, options: { minProbability: 0.6 }, expected: [0.5, 0.5] },
    { logWeights: { a: Math.log(0.6), b: Math.log(0.3), c: Math.log(0.1) }, options: { minProbability: 0.05 }, expected: [0.6, 0.3, 0.1] },
  ];
  for (const { logWeights, options, expected } of cases) {
    const label = `${JSON.stringify(options)} over ${JSON.stringify(logWeights)}`;
    const probs = withWeights(logWeights, options).probabilities(Object.keys(logWeights));
    expected.forEach((e, i) => close(t, [...probs.values()][i], e, 1e-12, `${label} [${i}]`));
    close(t, sum(probs), 1, 1e-12, `${label} sum`);
  }
});

test('select draws by the probabilities: 20,000 seeded draws land within 0.015 of p', (t) => {
  const cases: { logWeights: Record<string, number>; options: Exp3Options }[] = [
    { logWeights: { a: 0, b: -1, c: -2 }, options: { seed: 1 } },
    { logWeights: { a: 0, b: 0 }, options: { seed: 2 } },
    { logWeights: { a: 0, b: -3 }, options: { seed: 3, gamma: 0.4 } },
    { logWeights: { a: 0, b: -50, c: -50, d: -50 }, options: { seed: 4, minProbability: 0.1 } },
  ];
  const draws = 20_000;
  for (const { logWeights, options } of cases) {
    const p = withWeights(logWeights, options);
    const linked = Object.keys(logWeights);
    const expected = p.probabilities(linked);
    const counts = new Map(linked.map((m) => [m, 0]));
    for (let i = 0; i < draws; i++) {
      const chosen = p.select(linked);
      t.is(chosen.length, 1);
      counts.set(chosen[0], (counts.get(chosen[0]) as number) + 1);
    }
    for (const m of linked) close(t, (counts.get(m) as number) / draws, expected.get(m) as number, 0.015, `${JSON.stringify(options)} ${m}`);
  }
});

test('select follows the injected random source along the cumulative probabilities', (t) => {
  const cases: [u: number, expected: string][] = [
    [0, 'a'],
    [0.49, 'a'],
    [0.5, 'b'],
    [0.99, 'b'],
  ];
  for (const [u, expected] of cases) t.deepEqual(new Exp3Policy({ random: () => u }).select(['a', 'b']), [expected], `u = ${u}`);
});

test('select picks only among the linked models, each once, and none when none is linked', (t) => {
  const p = withWeights({ a: 0, b: 0, gone: 0 });
  t.deepEqual(p.select([]), []);
  for (let i = 0; i < 200; i++) t.true(['a', 'b'].includes(p.select(['a', 'b', 'a'])[0]));
  t.deepEqual([...p.probabilities(['a', 'b', 'a']).keys()], ['a', 'b']);
});

test('a newly linked model starts at the mean weight of the linked models it joins, or of all, or at 1', (t) => {
  const empty = new Exp3Policy();
  empty.select(['a', 'b']);
  closeRecord(t, empty.snapshot().logWeights, { a: 0, b: 0 }, 'empty table: weight 1 each');

  const p = withWeights({ a: 0, b: Math.log(0.5), z: Math.log(0.01) });
  p.select(['a', 'b', 'c']);
  close(t, p.snapshot().logWeights.c, Math.log(0.75), 1e-12, 'c: mean of a and b, not of z');
  p.select(['d']);
  close(t, p.snapshot().logWeights.d, Math.log((1 + 0.5 + 0.01 + 0.75) / 4), 1e-12, 'd: no known peer, so the mean of all');
  const q = withWeights({ a: 0, b: Math.log(0.5) });
  close(t, q.probabilities(['a', 'b', 'c']).get('c') as number, 0.75 / 2.25, 1e-12, 'probabilities counts unseen models the same way');
  t.deepEqual(Object.keys(q.snapshot().logWeights), ['a', 'b'], 'without adding them');
});

test('a model wrong every time fades to ~0 and the right one rises to ~1 within 1000 events (both forms)', (t) => {
  for (const fullInformation of [true, false]) {
    const p = new Exp3Policy({ fullInformation, seed: 9 });
    for (let i = 0; i < 1000; i++) {
      if (fullInformation) p.feedback(losses({ bad: 1, good: 0 }));
      else {
        const [chosen] = p.select(['bad', 'good']);
        p.feedback(losses({ [chosen]: chosen === 'bad' ? 1 : 0 }));
      }
    }
    const probs = p.probabilities(['bad', 'good']);
    t.true((probs.get('bad') as number) < 1e-6, `fullInformation ${fullInformation}: p(bad) = ${probs.get('bad')}`);
    t.true((probs.get('good') as number) > 1 - 1e-6, `fullInformation ${fullInformation}: p(good) = ${probs.get('good')}`);
  }
});

test('10^6 updates stay finite, sum to 1 and push the always-wrong model under 1e-6, in a few seconds', (t) => {
  for (const fullInformation of [true, false]) {
    const p = new Exp3Policy({ fullInformation, gamma: fullInformation ? 0 : 0.01, seed: 5 });
    const linked = ['bad', 'good', 'middling'];
    const events = [losses({ bad: 1, good: 0, middling: 1 }), losses({ bad: 1, good: 0.25, middling: 0 })];
    const started = performance.now();
    for (let i = 0; i < 1_000_000; i++) {
      if (fullInformation) p.feedback(events[i & 1]);
      else {
        const [chosen] = p.select(linked);
        p.feedback(new Map([[chosen, events[i & 1].get(chosen) as number]]));
      }
    }
    const elapsed = performance.now() - started;
    const label = `fullInformation ${fullInformation}`;
    const snapshot = p.snapshot();
    t.true(Object.values(snapshot.logWeights).every(Number.isFinite), `${label}: ${JSON.stringify(snapshot.logWeights)}`);
    t.deepEqual(JSON.parse(JSON.stringify(snapshot)), snapshot, `${label}: the snapshot survives JSON`);
    const probs = p.probabilities(linked);
    t.true([...probs.values()].every((x) => Number.isFinite(x) && x >= 0), label);
    close(t, sum(probs), 1, 1e-9, `${label} sum`);
    // Bandit with gamma = 0.01 keeps each model at >= 0.01 / 3: its exploration, by design.
    const bound = fullInformation ? 1e-6 : 0.01 / 3 + 1e-6;
    t.true((probs.get('bad') as number) < bound, `${label}: p(bad) = ${probs.get('bad')}`);
    t.is(p.updates, 1_000_000);
    t.true(elapsed < 5_000, `${label}: took ${elapsed.toFixed(0)} ms`);
    t.log(`${label}: 10^6 updates in ${elapsed.toFixed(0)} ms`);
  }
});

test('log weights never trail the best by more than maxLogWeightGap', (t) => {
  const p = new Exp3Policy({ eta: 1, maxLogWeightGap: 5 });
  for (let i = 0; i < 20; i++) p.feedback(losses({ bad: 1, good: 0 }));
  closeRecord(t, p.snapshot().logWeights, { bad: -5, good: 0 }, 'clamped');
  // So a recovered model wins back the lead in gap / eta events, not in as many as it lost.
  for (let i = 0; i < 6; i++) p.feedback(losses({ bad: 0, good: 1 }));
  closeRecord(t, p.snapshot().logWeights, { bad: 0, good: -1 }, 'recovered');
});

test('combine returns the chosen model\'s answer with confidence 1', (t) => {
  const scores = Float32Array.of(0.2, 0.8);
  const combined = new Exp3Policy().combine([{ model: 'mnist-mlp', version: '3', scores }]);
  t.deepEqual(combined, { scores, model: 'mnist-mlp', version: '3', confidence: 1, contributors: ['mnist-mlp'] });
  t.throws(() => new Exp3Policy().combine([]), { instanceOf: InternalError, message: 'exp3.combine needs at least one output; got none' });
});

test('options: defaults, per-mode eta, frozen', (t) => {
  const full = new Exp3Policy();
  t.is(full.options.eta, exp3Defaults.fullInformationEta);
  t.is(full.options.eta, 0.1);
  t.is(new Exp3Policy({ fullInformation: false }).options.eta, 0.03);
  t.is(new Exp3Policy({ fullInformation: false, eta: 0.01 }).options.eta, 0.01);
  t.is(full.name, 'exp3');
  t.is(new Exp3Policy({ name: 'pick-one' }).name, 'pick-one');
  t.true(Object.isFrozen(full.options));
  t.is(new Exp3Policy({ eta: undefined }).options.eta, 0.1, 'undefined means default');
});

test('bad options are refused with a message naming the option', (t) => {
  const cases: [options: unknown, message: string | RegExp][] = [
    [{ eta: -1 }, 'exp3.eta must be a number in (0, 10]; got -1'],
    [{ eta: 0 }, 'exp3.eta must be a number in (0, 10]; got 0'],
    [{ eta: 11 }, 'exp3.eta must be a number in (0, 10]; got 11'],
    [{ eta: Number.NaN }, 'exp3.eta must be a number in (0, 10]; got NaN'],
    [{ eta: '0.1' }, 'exp3.eta must be a number in (0, 10]; got "0.1"'],
    [{ gamma: 1.5 }, 'exp3.gamma must be a number in [0, 1]; got 1.5'],
    [{ minProbability: -0.1 }, 'exp3.minProbability must be a number in [0, 1]; got -0.1'],
    [{ fullInformation: 'yes' }, 'exp3.fullInformation must be a boolean; got "yes"'],
    [{ maxLogWeightGap: 0 }, 'exp3.maxLogWeightGap must be a number in [1, 1000000]; got 0'],
    [{ name: '' }, /^exp3\.name must be a name/],
    [{ seed: -1 }, 'exp3.seed must be an integer in [0, 2^32); got -1'],
    [{ seed: 1.5 }, 'exp3.seed must be an integer in [0, 2^32); got 1.5'],
    [{ random: 0.5 }, 'exp3.random must be a function returning numbers in [0, 1); got 0.5'],
    [{ etta: 0.1 }, /^exp3\.etta is not an option; known options: eta, gamma/],
    [42, 'exp3 options must be an object; got 42'],
  ];
  for (const [options, message] of cases) {
    const error = t.throws(() => new Exp3Policy(options as Exp3Options), { instanceOf: InvalidOptionError }, JSON.stringify(options));
    if (typeof message === 'string') t.is(error.message, message);
    else t.regex(error.message, message);
  }
});

test('snapshot is plain JSON and restore brings back the learned state', (t) => {
  const p = new Exp3Policy({ eta: 0.4, gamma: 0.1 });
  p.select(['a', 'b', 'c']);
  p.feedback(losses({ a: 1, b: 0.5, c: 0 }));
  p.feedback(losses({ a: 1, b: 0, c: 0.75 }));
  const snapshot = JSON.parse(JSON.stringify(p.snapshot())) as PolicySnapshot;
  t.like(snapshot, { kind: 'exp3', name: 'exp3', eta: 0.4, gamma: 0.1, minProbability: 0, fullInformation: true, maxLogWeightGap: 700, updates: 2 });
  const q = new Exp3Policy({ eta: 0.4, gamma: 0.1 });
  q.restore(snapshot);
  t.deepEqual(q.snapshot(), p.snapshot());
  t.deepEqual(q.probabilities(['a', 'b', 'c']), p.probabilities(['a', 'b', 'c']));
});

test('restore refuses malformed snapshots with InvalidOptionError and keeps its state', (t) => {
  const p = new Exp3Policy();
  p.feedback(losses({ a: 1, b: 0 }));
  const before = p.snapshot();
  const cases: [snapshot: unknown, message: RegExp][] = [
    [null, /^exp3 snapshot must be an object; got null/],
    [[], /^exp3 snapshot must be an object/],
    [{ kind: 'exp4', logWeights: {} }, /^exp3 snapshot\.kind must be "exp3"; got "exp4"/],
    [{ logWeights: {} }, /^exp3 snapshot\.kind must be "exp3"/],
    [{ kind: 'exp3' }, /^exp3 snapshot\.logWeights must be an object; got undefined/],
    [{ kind: 'exp3', logWeights: [0, 1] }, /^exp3 snapshot\.logWeights must be an object/],
    [{ kind: 'exp3', logWeights: { a: 'x' } }, /^exp3 snapshot\.logWeights\["a"\] must be a finite number; got "x"/],
    [{ kind: 'exp3', logWeights: { a: Number.NaN } }, /\["a"\] must be a finite number/],
    [{ kind: 'exp3', logWeights: { a: Number.NEGATIVE_INFINITY } }, /\["a"\] must be a finite number/],
    [{ kind: 'exp3', logWeights: { a: null } }, /\["a"\] must be a finite number; got null/],
    [{ kind: 'exp3', logWeights: { '': 0 } }, /keys must be non-empty model names/],
    [{ kind: 'exp3', logWeights: {}, updates: -1 }, /^exp3 snapshot\.updates must be an integer >= 0; got -1/],
    [{ kind: 'exp3', logWeights: {}, updates: 1.5 }, /^exp3 snapshot\.updates must be an integer >= 0/],
  ];
  for (const [snapshot, message] of cases) {
    t.throws(() => p.restore(snapshot as PolicySnapshot), { instanceOf: InvalidOptionError, message }, JSON.stringify(snapshot));
  }
  t.deepEqual(p.snapshot(), before);
});

test('seeds at both ends of [0, 2^32) are accepted; 2^32 is refused', (t) => {
  t.is(new Exp3Policy({ seed: 0 }).options.seed, 0);
  t.is(new Exp3Policy({ seed: 0xffffffff }).options.seed, 0xffffffff);
  t.throws(() => new Exp3Policy({ seed: 2 ** 32 }), { instanceOf: InvalidOptionError, message: 'exp3.seed must be an integer in [0, 2^32); got 4294967296' });
});

test('learnsFrom is "all" with full information and "selected" for bandit Exp3', (t) => {
  t.is(new Exp3Policy().learnsFrom, 'all');
  t.is(new Exp3Policy({ fullInformation: false }).learnsFrom, 'selected');
});

test('selectionProbability before any select is computed from the weights', (t) => {
  const p = withWeights({ a: 0, b: Math.log(3) });
  close(t, p.selectionProbability(['b'], ['a', 'b']), 0.75, 1e-12, 'b');
});

test('probabilities count a model named twice once', (t) => {
  const p = withWeights({ a: 0, b: 0 });
  t.deepEqual([...p.probabilities(['a', 'a'])], [['a', 1]]);
  t.deepEqual([...p.probabilities(['a', 'b', 'a'])], [['a', 0.5], ['b', 0.5]]);
});

test('bandit feedback with a draw of probability 1 is accepted; a draw of no model is named as such', (t) => {
  const p = withWeights({ a: 0, b: 0 }, { eta: 0.5, fullInformation: false });
  p.feedback(losses({ a: 1 }), undefined, { models: ['a'], probability: 1 });
  closeRecord(t, p.snapshot().logWeights, { a: -0.5, b: 0 }, 'eta * 1 / 1');
  t.throws(() => p.feedback(losses({ a: 1 }), undefined, { models: [], probability: 1 }), {
    instanceOf: InvalidOptionError,
    message: 'exp3.feedback: the loss is for a, but the draw it answers selected no model',
  });
  t.throws(() => p.feedback(losses({ a: 1 }), undefined, { models: ['b', 'c'], probability: 1 }), {
    instanceOf: InvalidOptionError,
    message: 'exp3.feedback: the loss is for a, but the draw it answers selected b, c',
  });
});

test('bandit feedback without its draw uses the probability over the models last selected among, else over every model seen', (t) => {
  const eta = 0.5;
  // Before any select: over every model in the table, a, b and c at weight 1: p(a) = 1/3.
  const fresh = withWeights({ a: 0, b: 0, c: 0 }, { eta, fullInformation: false });
  fresh.feedback(losses({ a: 1 }));
  closeRecord(t, fresh.snapshot().logWeights, { a: -eta * 3, b: 0, c: 0 }, 'before any select');
  // After a select among a and b only: p(a) = 1/2.
  const selected = withWeights({ a: 0, b: 0, c: 0 }, { eta, fullInformation: false });
  selected.select(['a', 'b']);
  selected.feedback(losses({ a: 1 }));
  closeRecord(t, selected.snapshot().logWeights, { a: -eta * 2, b: 0, c: 0 }, 'after a select among a, b');
});
