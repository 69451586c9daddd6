import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';
import { InternalError, InvalidOptionError, ModelRuntimeError } from '../../../src/errors.js';
import { Exp4Policy, exp4Defaults, type Exp4Options } from '../../../src/selection/exp4-policy.js';
import type { ModelOutput, PolicySnapshot } from '../../../src/selection/selection-policy.js';

type Losses = Record<string, number>;
const losses = (l: Losses): Map<string, number> => new Map(Object.entries(l));
const out = (model: string, scores: number[], version = '1'): ModelOutput => ({ model, version, scores: Float32Array.from(scores) });
const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

function close(t: ExecutionContext, actual: number, expected: number, tolerance: number, label: string): void {
  t.true(Math.abs(actual - expected) <= tolerance, `${label}: ${actual} is not within ${tolerance} of ${expected}`);
}

function closeArray(t: ExecutionContext, actual: ArrayLike<number>, expected: number[], tolerance: number, label: string): void {
  t.is(actual.length, expected.length, `${label}: length`);
  expected.forEach((e, i) => close(t, actual[i], e, tolerance, `${label} [${i}]`));
}

function withWeights(logWeights: Record<string, number>, options: Exp4Options = {}): Exp4Policy {
  const p = new Exp4Policy(options);
  p.restore({ kind: 'exp4', logWeights });
  return p;
}

test('select returns every linked model, each once, in order', (t) => {
  const p = new Exp4Policy();
  t.deepEqual(p.select(['a', 'b', 'c']), ['a', 'b', 'c']);
  t.deepEqual(p.select(['c', 'a', 'c']), ['c', 'a']);
  t.deepEqual(p.select([]), []);
  t.deepEqual(Object.keys(p.snapshot().logWeights), ['a', 'b', 'c'], 'selected models join the table');
});

test('every model\'s weight is updated with its own loss: hand-computed log weights and probabilities', (t) => {
  const cases: { eta: number; events: Losses[]; expected: Record<string, number> }[] = [
    { eta: 0.5, events: [{ a: 1, b: 0 }], expected: { a: -0.5, b: 0 } },
    { eta: 0.5, events: [{ a: 1, b: 0 }, { a: 1, b: 0 }, { a: 0, b: 1 }], expected: { a: -0.5, b: 0 } },
    // a: -0.25, b: -1, c: -0.5, shifted up by 0.25.
    { eta: 1, events: [{ a: 0.25, b: 1, c: 0.5 }], expected: { a: 0, b: -0.75, c: -0.25 } },
    { eta: 2, events: [{ a: 0.1, b: 0.2 }, { a: 0.3, b: 0.1 }], expected: { a: -0.2, b: 0 } },
  ];
  for (const { eta, events, expected } of cases) {
    const p = new Exp4Policy({ eta });
    for (const e of events) p.feedback(losses(e));
    const label = `eta ${eta}, ${JSON.stringify(events)}`;
    const got = p.snapshot().logWeights;
    t.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort(), label);
    for (const [m, w] of Object.entries(expected)) close(t, got[m], w, 1e-12, `${label} [${m}]`);
    const total = Object.values(expected).reduce((s, w) => s + Math.exp(w), 0);
    const probs = p.probabilities();
    for (const [m, w] of Object.entries(expected)) close(t, probs.get(m) as number, Math.exp(w) / total, 1e-12, `${label} p(${m})`);
    close(t, sum(probs), 1, 1e-12, `${label} sum`);
    t.is(p.updates, events.length);
  }
});

test('combine is the weighted average, renormalised over the outputs that arrived', (t) => {
  // Over a, b, c the weights are 0.6, 0.2, 0.2.
  const weights = { a: 0, b: Math.log(1 / 3), c: Math.log(1 / 3) };
  const cases: { outputs: ModelOutput[]; expected: number[]; label: string }[] = [
    { label: 'all three', outputs: [out('a', [1, 0, 0]), out('b', [0, 1, 0]), out('c', [0, 0, 1])], expected: [0.6, 0.2, 0.2] },
    { label: 'a and b: 0.75 / 0.25', outputs: [out('a', [1, 0, 0]), out('b', [0, 1, 0])], expected: [0.75, 0.25, 0] },
    { label: 'c then a, order does not matter', outputs: [out('c', [0, 0, 1]), out('a', [1, 0, 0])], expected: [0.75, 0, 0.25] },
    { label: 'b and c: 0.5 / 0.5', outputs: [out('b', [0.2, 0.8, 0]), out('c', [0.6, 0.4, 0])], expected: [0.4, 0.6, 0] },
    { label: 'a alone: its own scores', outputs: [out('a', [0.1, 0.3, 0.6])], expected: [0.1, 0.3, 0.6] },
    { label: 'regression', outputs: [out('a', [10]), out('b', [20])], expected: [0.75 * 10 + 0.25 * 20] },
  ];
  const p = withWeights(weights);
  for (const { outputs, expected, label } of cases) {
    const combined = p.combine(outputs);
    t.true(combined.scores instanceof Float32Array, label);
    closeArray(t, combined.scores, expected, 1e-6, label);
    t.deepEqual(combined.contributors, outputs.map((o) => o.model), label);
  }
  t.deepEqual(p.snapshot().logWeights, withWeights(weights).snapshot().logWeights, 'combine changes no weight');
});

test('an unseen model in combine counts at the mean weight of the others', (t) => {
  const p = withWeights({ a: 0, b: Math.log(0.5) });
  // c would join at weight 0.75: shares 1 / 2.25, 0.5 / 2.25, 0.75 / 2.25.
  const combined = p.combine([out('a', [1, 0, 0]), out('b', [0, 1, 0]), out('c', [0, 0, 1])]);
  closeArray(t, combined.scores, [1 / 2.25, 0.5 / 2.25, 0.75 / 2.25], 1e-6, 'scores');
});

test('confidence is the share of contributors, counted equally, whose own label is the combined label', (t) => {
  const cases: { label: string; weights?: Record<string, number>; options?: Exp4Options; outputs: ModelOutput[]; confidence: number }[] = [
    {
      label: '4 of 5 agree',
      outputs: [out('a', [0.9, 0.1]), out('b', [0.8, 0.2]), out('c', [0.6, 0.4]), out('d', [0.7, 0.3]), out('e', [0.1, 0.9])],
      confidence: 0.8,
    },
    { label: '5 of 5 agree', outputs: ['a', 'b', 'c', 'd', 'e'].map((m) => out(m, [0.2, 0.5, 0.3])), confidence: 1 },
    { label: '2 of 4', outputs: [out('a', [0.9, 0.1]), out('b', [0.8, 0.2]), out('c', [0.3, 0.7]), out('d', [0.4, 0.6])], confidence: 0.5 },
    { label: 'one model', outputs: [out('a', [0.3, 0.7])], confidence: 1 },
    {
      label: 'a heavy model outvotes two light ones, but confidence counts heads: 1 of 3',
      weights: { a: 0, b: -10, c: -10 },
      outputs: [out('a', [0, 1]), out('b', [0.9, 0.1]), out('c', [0.8, 0.2])],
      confidence: 1 / 3,
    },
    {
      label: 'regression within tolerance 1: mean 2.9, 3 of 4 within',
      options: { regressionTolerance: 1 },
      outputs: [out('a', [2]), out('b', [2.2]), out('c', [2.4]), out('d', [5])],
      confidence: 0.75,
    },
    {
      label: 'regression within tolerance 0.75: 2 of 4',
      options: { regressionTolerance: 0.75 },
      outputs: [out('a', [2]), out('b', [2.2]), out('c', [2.4]), out('d', [5])],
      confidence: 0.5,
    },
    { label: 'regression, tolerance 0, all equal', options: { regressionTolerance: 0 }, outputs: [out('a', [3]), out('b', [3])], confidence: 1 },
  ];
  for (const { label, weights, options, outputs, confidence } of cases) {
    const p = weights === undefined ? new Exp4Policy(options) : withWeights(weights, options);
    close(t, p.combine(outputs).confidence as number, confidence, 1e-12, label);
  }
});

test('combine names the ensemble, its members\' versions and its contributors', (t) => {
  const p = new Exp4Policy();
  const combined = p.combine([out('mnist-mlp', [1, 0], '1'), out('mnist-cnn', [0, 1], '3')]);
  t.is(combined.model, 'ensemble');
  t.is(combined.version, 'mnist-mlp@1+mnist-cnn@3');
  t.deepEqual(combined.contributors, ['mnist-mlp', 'mnist-cnn']);
  t.is(new Exp4Policy({ name: 'digits' }).combine([out('a', [1])]).model, 'digits');
  const twice = p.combine([out('a', [1, 0]), out('a', [0, 1]), out('b', [1, 0])]);
  t.deepEqual(twice.contributors, ['a', 'b'], 'a model answering twice counts once');
  closeArray(t, twice.scores, [1, 0], 1e-6, 'the first answer of a');
});

test('combine refuses rows of different lengths and an empty set of outputs', (t) => {
  const p = new Exp4Policy();
  const error = t.throws(() => p.combine([out('a', [1, 0]), out('b', [1, 0, 0])]), { instanceOf: ModelRuntimeError });
  t.is(error.message, 'ensemble: ensemble outputs differ in length: a returned 2 scores, b returned 3');
  t.throws(() => p.combine([]), { instanceOf: InternalError, message: 'ensemble.combine needs at least one output; got none' });
});

test('a model wrong every time fades to ~0 within 1000 events and the answer follows the others', (t) => {
  const p = new Exp4Policy();
  for (let i = 0; i < 1000; i++) p.feedback(losses({ bad: 1, good: 0, fair: 0.2 }));
  const probs = p.probabilities(['bad', 'good', 'fair']);
  t.true((probs.get('bad') as number) < 1e-6, `p(bad) = ${probs.get('bad')}`);
  t.true((probs.get('good') as number) > 1 - 1e-6, `p(good) = ${probs.get('good')}`);
  const combined = p.combine([out('bad', [1, 0]), out('good', [0, 1]), out('fair', [0.4, 0.6])]);
  closeArray(t, combined.scores, [0, 1], 1e-6, 'the good model decides');
  close(t, combined.confidence as number, 2 / 3, 1e-12, 'confidence');
});

test('10^6 updates stay finite, sum to 1 and push the always-wrong model under 1e-6, in a few seconds', (t) => {
  const p = new Exp4Policy();
  const linked = ['bad', 'good', 'middling'];
  p.select(linked);
  const events = [losses({ bad: 1, good: 0, middling: 1 }), losses({ bad: 1, good: 0.25, middling: 0 })];
  const started = performance.now();
  for (let i = 0; i < 1_000_000; i++) p.feedback(events[i & 1]);
  const elapsed = performance.now() - started;
  const snapshot = p.snapshot();
  t.true(Object.values(snapshot.logWeights).every(Number.isFinite), JSON.stringify(snapshot.logWeights));
  t.deepEqual(JSON.parse(JSON.stringify(snapshot)), snapshot);
  const probs = p.probabilities(linked);
  t.true([...probs.values()].every((x) => Number.isFinite(x) && x >= 0));
  close(t, sum(probs), 1, 1e-9, 'sum');
  t.true((probs.get('bad') as number) < 1e-6, `p(bad) = ${probs.get('bad')}`);
  const combined = p.combine([out('bad', [1, 0]), out('good', [0.2, 0.8]), out('middling', [0.6, 0.4])]);
  t.true([...combined.scores].every(Number.isFinite));
  t.is(p.updates, 1_000_000);
  t.true(elapsed < 5_000, `took ${elapsed.toFixed(0)} ms`);
  t.log(`10^6 updates in ${elapsed.toFixed(0)} ms`);
});

test('losses outside [0, 1] are refused before any weight changes', (t) => {
  const p = new Exp4Policy();
  p.feedback(losses({ a: 1, b: 0 }));
  const before = p.snapshot();
  for (const bad of [{ a: 0, b: 2 }, { a: -0.5 }, { a: Number.NaN }] as Losses[]) {
    t.throws(() => p.feedback(losses(bad)), { instanceOf: InvalidOptionError, message: /^ensemble\.feedback: the loss of/ });
  }
  t.deepEqual(p.snapshot(), before);
});

test('options: defaults and frozen', (t) => {
  const p = new Exp4Policy();
  t.deepEqual({ ...p.options }, { ...exp4Defaults });
  t.is(p.options.eta, 0.1);
  t.is(p.name, 'ensemble');
  t.true(Object.isFrozen(p.options));
});

test('bad options are refused with a message naming the option', (t) => {
  const cases: [options: unknown, message: string | RegExp][] = [
    [{ eta: -1 }, 'exp4.eta must be a number in (0, 10]; got -1'],
    [{ eta: 0 }, 'exp4.eta must be a number in (0, 10]; got 0'],
    [{ eta: Number.POSITIVE_INFINITY }, 'exp4.eta must be a number in (0, 10]; got Infinity'],
    [{ maxLogWeightGap: 0.5 }, 'exp4.maxLogWeightGap must be a number in [1, 1000000]; got 0.5'],
    [{ regressionTolerance: -0.1 }, /^exp4\.regressionTolerance must be a number in \[0, .*\]; got -0\.1$/],
    [{ name: 'has space' }, /^exp4\.name must be a name/],
    [{ gamma: 0.1 }, /^exp4\.gamma is not an option; known options: eta, maxLogWeightGap, name, regressionTolerance$/],
    ['x', 'exp4 options must be an object; got "x"'],
  ];
  for (const [options, message] of cases) {
    const error = t.throws(() => new Exp4Policy(options as Exp4Options), { instanceOf: InvalidOptionError }, JSON.stringify(options));
    if (typeof message === 'string') t.is(error.message, message);
    else t.regex(error.message, message);
  }
});

test('snapshot is plain JSON and restore brings back the learned state', (t) => {
  const p = new Exp4Policy({ eta: 0.3 });
  p.select(['a', 'b', 'c']);
  p.feedback(losses({ a: 1, b: 0.5, c: 0 }));
  const snapshot = JSON.parse(JSON.stringify(p.snapshot())) as PolicySnapshot;
  t.like(snapshot, { kind: 'exp4', name: 'ensemble', eta: 0.3, maxLogWeightGap: 700, regressionTolerance: 0.5, updates: 1 });
  const q = new Exp4Policy({ eta: 0.3 });
  q.restore(snapshot);
  t.deepEqual(q.snapshot(), p.snapshot());
  const outputs = [out('a', [1, 0]), out('b', [0, 1]), out('c', [0.5, 0.5])];
  t.deepEqual(q.combine(outputs), p.combine(outputs));
});

test('restore refuses malformed snapshots with InvalidOptionError and keeps its state', (t) => {
  const p = new Exp4Policy();
  p.feedback(losses({ a: 1, b: 0 }));
  const before = p.snapshot();
  const cases: [snapshot: unknown, message: RegExp][] = [
    [undefined, /^exp4 snapshot must be an object; got undefined/],
    [{ kind: 'exp3', logWeights: {} }, /^exp4 snapshot\.kind must be "exp4"; got "exp3"/],
    [{ kind: 'exp4', logWeights: 'a=0' }, /^exp4 snapshot\.logWeights must be an object; got "a=0"/],
    [{ kind: 'exp4', logWeights: { a: 0, b: Number.POSITIVE_INFINITY } }, /^exp4 snapshot\.logWeights\["b"\] must be a finite number/],
    [{ kind: 'exp4', logWeights: { a: '0' } }, /\["a"\] must be a finite number; got "0"/],
    [{ kind: 'exp4', logWeights: {}, updates: '3' }, /^exp4 snapshot\.updates must be an integer >= 0; got "3"/],
  ];
  for (const [snapshot, message] of cases) {
    t.throws(() => p.restore(snapshot as PolicySnapshot), { instanceOf: InvalidOptionError, message }, JSON.stringify(snapshot));
  }
  t.deepEqual(p.snapshot(), before);
});

test('feedback with no losses is not counted as an update and changes nothing', (t) => {
  const p = new Exp4Policy();
  p.select(['a', 'b']);
  const before = p.snapshot();
  p.feedback(new Map());
  t.deepEqual(p.snapshot(), before);
  t.is(p.updates, 0);
});
