import test from 'ava';
import { decideAnswer, defaultAnswer, type AnswerDecision, type AnswerRules, type AnswerSituation, type ModelEvaluation } from '../../../src/routing/answer-decision.js';
import { DeadlineExceededError, ModelRuntimeError, OverloadedError } from '../../../src/errors.js';
import type { CacheOutcome } from '../../../src/routing/prediction-cache.js';
import type { Combined, ModelOutput } from '../../../src/selection/selection-policy.js';

const rules: AnswerRules = {
  latencySloMs: 20,
  confidenceThreshold: 0.6,
  defaultOutput: -1,
  toOutput: (_model, scores) => scores.indexOf(Math.max(...scores)),
};

const evaluation = (model: string, scores: number[], outcome: CacheOutcome = 'miss', timings?: ModelEvaluation['timings']): ModelEvaluation => ({
  prediction: { model, version: '1', scores: Float32Array.from(scores) },
  outcome,
  ...(timings === undefined ? {} : { timings }),
});

/** Answers with the first output; confidence as given (undefined: the policy does not say). */
const first = (confidence?: number) => ({
  name: 'first',
  combine: (outputs: readonly ModelOutput[]): Combined => {
    const o = outputs[0] as ModelOutput;
    return { scores: o.scores, model: o.model, version: o.version, ...(confidence === undefined ? {} : { confidence }) };
  },
});

const situation = (s: Partial<AnswerSituation>): AnswerSituation => ({
  arrived: [],
  missing: [],
  failures: [],
  atDeadline: false,
  policy: first(),
  context: undefined,
  ...s,
});

const overloaded = new OverloadedError('replica a#0 has 1024 queries queued');
const expired = new DeadlineExceededError('replica b#0 could not run the query before its deadline');

/** What a decision comes to, for the table: its kind (and reason), its output and explanation, its missing list. */
function summary(d: AnswerDecision): unknown {
  if (d.kind === 'refuse') return { kind: 'refuse', error: d.error.message };
  return {
    kind: d.kind === 'default' ? `default/${d.reason}` : 'model',
    output: d.answer.output,
    isDefault: d.answer.isDefault,
    explanation: d.answer.explanation,
    missing: d.answer.missing,
    contributors: d.answer.contributors,
  };
}

const table: [string, AnswerSituation, unknown][] = [
  [
    'every model answered: the combination, nothing missing',
    situation({ arrived: [evaluation('a', [0.1, 0.9]), evaluation('b', [0.8, 0.2])] }),
    { kind: 'model', output: 1, isDefault: false, explanation: undefined, missing: undefined, contributors: ['a', 'b'] },
  ],
  [
    'the deadline with one of two answered: that answer, the straggler listed',
    situation({ arrived: [evaluation('a', [0.1, 0.9])], missing: ['b'], atDeadline: true }),
    { kind: 'model', output: 1, isDefault: false, explanation: undefined, missing: ['b'], contributors: ['a'] },
  ],
  [
    'one answered, one failed: the answer, the failed model listed',
    situation({ arrived: [evaluation('b', [0.7, 0.3])], failures: [{ model: 'a', error: new ModelRuntimeError('boom') }] }),
    { kind: 'model', output: 0, isDefault: false, explanation: undefined, missing: ['a'], contributors: ['b'] },
  ],
  [
    'stragglers first, then failures, in the missing list',
    situation({ arrived: [evaluation('b', [0.7, 0.3])], missing: ['c'], failures: [{ model: 'a', error: new Error('x') }], atDeadline: true }),
    { kind: 'model', output: 0, isDefault: false, explanation: undefined, missing: ['c', 'a'], contributors: ['b'] },
  ],
  [
    'nothing arrived by the deadline: the default, naming the stragglers and the SLO',
    situation({ missing: ['a', 'b'], atDeadline: true }),
    { kind: 'default/noAnswer', output: -1, isDefault: true, explanation: 'no answer from a, b within the 20 ms SLO', missing: undefined, contributors: undefined },
  ],
  [
    'every model failed: the default, naming each error',
    situation({ failures: [{ model: 'a', error: new ModelRuntimeError('boom') }, { model: 'b', error: 'a string' }] }),
    { kind: 'default/noAnswer', output: -1, isDefault: true, explanation: 'a: boom; b: a string', missing: undefined, contributors: undefined },
  ],
  [
    'the only model refused at admission: refuse with its OverloadedError (503)',
    situation({ failures: [{ model: 'a', error: overloaded }] }),
    { kind: 'refuse', error: overloaded.message },
  ],
  [
    'one refused, one expired: the default (not overload alone)',
    situation({ failures: [{ model: 'a', error: overloaded }, { model: 'b', error: expired }] }),
    {
      kind: 'default/noAnswer',
      output: -1,
      isDefault: true,
      explanation: `a: ${overloaded.message}; b: ${expired.message}`,
      missing: undefined,
      contributors: undefined,
    },
  ],
  [
    'one refused, one still out at the deadline: the default',
    situation({ failures: [{ model: 'a', error: overloaded }], missing: ['b'], atDeadline: true }),
    {
      kind: 'default/noAnswer',
      output: -1,
      isDefault: true,
      explanation: `a: ${overloaded.message}; no answer from b within the 20 ms SLO`,
      missing: undefined,
      contributors: undefined,
    },
  ],
  [
    'the only model expired: the default, not a refusal',
    situation({ failures: [{ model: 'a', error: expired }] }),
    { kind: 'default/noAnswer', output: -1, isDefault: true, explanation: `a: ${expired.message}`, missing: undefined, contributors: undefined },
  ],
  [
    'confidence below the threshold: the default, with the models\' scores and who contributed',
    situation({ arrived: [evaluation('a', [0.1, 0.9])], missing: ['b'], atDeadline: true, policy: first(0.5) }),
    {
      kind: 'default/lowConfidence',
      output: -1,
      isDefault: true,
      explanation: "confidence 0.50 is below the application's threshold 0.6",
      missing: ['b'],
      contributors: ['a'],
    },
  ],
  [
    'confidence exactly at the threshold: the model answer',
    situation({ arrived: [evaluation('a', [0.1, 0.9])], policy: first(0.6) }),
    { kind: 'model', output: 1, isDefault: false, explanation: undefined, missing: undefined, contributors: ['a'] },
  ],
  [
    'combine throws: the default, naming the policy and its error; the arrived models are not contributors',
    situation({
      arrived: [evaluation('a', [0.1, 0.9]), evaluation('b', [0.2, 0.3, 0.5])],
      missing: ['c'],
      atDeadline: true,
      policy: {
        name: 'exp4',
        combine: () => {
          throw new ModelRuntimeError('exp4 got rows of 2 and 3 values');
        },
      },
    }),
    {
      kind: 'default/policyError',
      output: -1,
      isDefault: true,
      explanation: 'selection policy exp4 failed to combine the answers of a, b: exp4 got rows of 2 and 3 values; no answer from c within the 20 ms SLO',
      missing: ['c'],
      contributors: undefined,
    },
  ],
];

for (const [name, given, expected] of table) {
  test(`decideAnswer: ${name}`, (t) => {
    t.deepEqual(summary(decideAnswer(given, rules)), expected);
  });
}

test('decideAnswer: a combination the output cannot use is a policy error too, not an exception', (t) => {
  const d = decideAnswer(situation({ arrived: [evaluation('a', [0.1, 0.9])], policy: { name: 'broken', combine: () => ({}) as Combined } }), rules);
  t.is(d.kind === 'default' ? d.reason : d.kind, 'policyError');
  t.regex(d.kind === 'default' ? (d.answer.explanation ?? '') : '', /^selection policy broken failed to combine the answers of a: /);
});

test('decideAnswer: a refusal carries the replica\'s own error object (its Retry-After)', (t) => {
  const d = decideAnswer(situation({ failures: [{ model: 'a', error: overloaded }] }), rules);
  t.is(d.kind, 'refuse');
  if (d.kind === 'refuse') t.is(d.error, overloaded);
});

test('decideAnswer: a model answer carries model, version, scores, confidence and the first timings', (t) => {
  const timings = { queueMs: 1, batchMs: 2, batchSize: 3, replica: 'b@1#0' };
  const d = decideAnswer(situation({ arrived: [evaluation('a', [0.2, 0.8], 'hit'), evaluation('b', [0.4, 0.6], 'miss', timings)] }), rules);
  t.is(d.kind, 'model');
  t.like(d.kind === 'model' ? d.answer : {}, { model: 'a', version: '1', confidence: 1, cached: false, timings });
  t.deepEqual(d.kind === 'model' ? [...(d.answer.scores ?? [])] : [], [...Float32Array.from([0.2, 0.8])]);
});

test('decideAnswer: cached only when every contributing answer was a cache hit', (t) => {
  const cases: [CacheOutcome[], boolean][] = [
    [['hit'], true],
    [['hit', 'hit'], true],
    [['hit', 'miss'], false],
    [['hit', 'shared'], false],
    [['disabled'], false],
  ];
  for (const [outcomes, cached] of cases) {
    const arrived = outcomes.map((o, i) => evaluation(`m${i}`, [0.5, 0.5], o));
    const d = decideAnswer(situation({ arrived }), rules);
    t.is(d.kind === 'model' && d.answer.cached, cached, outcomes.join(','));
  }
});

test('decideAnswer: the combined model picks the output kind (through rules.toOutput)', (t) => {
  const seen: string[] = [];
  const d = decideAnswer(
    situation({
      arrived: [evaluation('a', [3.5])],
      policy: { name: 'ens', combine: (o) => ({ scores: (o[0] as ModelOutput).scores, model: 'ensemble', version: 'v' }) },
    }),
    { ...rules, toOutput: (model, scores) => (seen.push(model), scores[0] as number) },
  );
  t.deepEqual(seen, ['ensemble']);
  t.like(d.kind === 'model' ? d.answer : {}, { output: 3.5, model: 'ensemble', version: 'v', contributors: ['a'] });
});

test('decideAnswer: the policy gets the query context', (t) => {
  let got: unknown;
  decideAnswer(
    situation({
      arrived: [evaluation('a', [1, 0])],
      context: { uid: 'u1' },
      policy: { name: 'p', combine: (o, context) => ((got = context), { scores: (o[0] as ModelOutput).scores, model: 'a', version: '1' }) },
    }),
    rules,
  );
  t.deepEqual(got, { uid: 'u1' });
});

test('defaultAnswer: the default output, not cached, with the explanation and extras', (t) => {
  t.deepEqual(defaultAnswer(null, 'why', { missing: ['a'] }), { output: null, isDefault: true, explanation: 'why', cached: false, missing: ['a'] });
});

test('decideAnswer: a default for want of an answer says whether it was late after admission (missed deadlines only)', (t) => {
  const cases: [what: string, s: Partial<AnswerSituation>, late: boolean][] = [
    ['nothing arrived by the deadline', { missing: ['a'], atDeadline: true }, true],
    ['the replica dropped it as too late', { failures: [{ model: 'a', error: expired }] }, true],
    ['one dropped late, one still out at the deadline', { failures: [{ model: 'a', error: expired }], missing: ['b'], atDeadline: true }, true],
    ['the model failed', { failures: [{ model: 'a', error: new ModelRuntimeError('boom') }] }, false],
    ['one refused, one expired: not only lateness', { failures: [{ model: 'a', error: overloaded }, { model: 'b', error: expired }] }, false],
  ];
  for (const [what, s, late] of cases) {
    const d = decideAnswer(situation(s), rules);
    t.is(d.kind === 'default' && d.reason === 'noAnswer' ? d.late : undefined, late, what);
  }
});

test('edges: a query with no model at all is not "late"; at the deadline with nothing missing no straggler phrase; no timings key without timings', (t) => {
  const none = decideAnswer(situation({}), rules);
  t.is(none.kind, 'default');
  if (none.kind === 'default' && none.reason === 'noAnswer') t.false(none.late, 'nothing was admitted, so nothing was late');
  const failedAtDeadline = decideAnswer(situation({ failures: [{ model: 'a', error: new Error('boom') }], atDeadline: true }), rules);
  t.is(failedAtDeadline.kind === 'default' ? failedAtDeadline.answer.explanation : undefined, 'a: boom');
  const plain = decideAnswer(situation({ arrived: [evaluation('a', [0.1, 0.9])] }), rules);
  t.is(plain.kind, 'model');
  t.false('timings' in (plain.kind === 'model' ? plain.answer : {}), 'no timings key when no model reported timings');
});
