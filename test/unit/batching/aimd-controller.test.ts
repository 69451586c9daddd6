import test from 'ava';
import { AimdController, type AimdSettings } from '../../../src/batching/aimd-controller.js';

const aimd = (overrides: Partial<AimdSettings> = {}): AimdController =>
  new AimdController({ mode: 'aimd', maxBatchSize: 256, initialBatchSize: 1, additiveStep: 2, backoffFactor: 0.9, ...overrides });

const BUDGET = 10;

test('the limit starts at initialBatchSize in aimd mode, maxBatchSize in fixed mode, 1 in none mode', (t) => {
  const cases: [Partial<AimdSettings>, number][] = [
    [{}, 1],
    [{ initialBatchSize: 16 }, 16],
    [{ initialBatchSize: 300, maxBatchSize: 64 }, 64],
    [{ mode: 'fixed', maxBatchSize: 64, initialBatchSize: 4 }, 64],
    [{ mode: 'none', maxBatchSize: 64, initialBatchSize: 4 }, 1],
  ];
  for (const [settings, limit] of cases) t.is(aimd(settings).limit, limit, JSON.stringify(settings));
});

test('a full batch within budget grows the limit by the additive step', (t) => {
  const cases: [step: number, start: number, expected: number][] = [
    [2, 1, 3],
    [1, 10, 11],
    [5, 10, 15],
  ];
  for (const [additiveStep, start, expected] of cases) {
    const c = aimd({ additiveStep, initialBatchSize: start });
    c.observe(start, BUDGET, BUDGET);
    t.is(c.limit, expected, `step ${additiveStep} from ${start}`);
    t.is(c.increases, 1);
    t.is(c.decreases, 0);
  }
});

test('a batch exactly on budget counts as within budget', (t) => {
  const c = aimd({ initialBatchSize: 8 });
  c.observe(8, BUDGET, BUDGET);
  t.is(c.limit, 10);
});

test('a batch smaller than the limit does not grow it, however fast it was', (t) => {
  const c = aimd({ initialBatchSize: 10 });
  for (const size of [1, 5, 9]) c.observe(size, 0.01, BUDGET);
  t.is(c.limit, 10);
  t.is(c.increases, 0);
  t.is(c.decreases, 0);
});

test('a miss multiplies the limit by the backoff factor, floored: 100 -> 90 -> 81 -> 72 -> 64', (t) => {
  const c = aimd({ initialBatchSize: 100 });
  const seen: number[] = [];
  for (let i = 0; i < 4; i++) {
    c.observe(1, BUDGET + 0.001, BUDGET);
    seen.push(c.limit);
  }
  t.deepEqual(seen, [90, 81, 72, 64]);
  t.is(c.decreases, 4);
  t.is(c.increases, 0);
});

test('a miss backs off whatever the batch size, including a partial batch', (t) => {
  const c = aimd({ initialBatchSize: 50 });
  c.observe(3, 2 * BUDGET, BUDGET);
  t.is(c.limit, 45);
});

test('other backoff factors apply as floor(factor * limit)', (t) => {
  const cases: [factor: number, start: number, expected: number][] = [
    [0.5, 100, 50],
    [0.5, 3, 1],
    [0.75, 10, 7],
    [0.99, 50, 49],
  ];
  for (const [backoffFactor, start, expected] of cases) {
    const c = aimd({ backoffFactor, initialBatchSize: start });
    c.observe(start, BUDGET * 2, BUDGET);
    t.is(c.limit, expected, `${backoffFactor} x ${start}`);
  }
});

test('the limit never drops below 1', (t) => {
  const c = aimd({ initialBatchSize: 3, backoffFactor: 0.1 });
  for (let i = 0; i < 5; i++) {
    c.observe(1, 1_000, BUDGET);
    t.is(c.limit, 1);
  }
  t.is(c.decreases, 5);
});

test('growth is capped at maxBatchSize and stops counting as an increase there', (t) => {
  const c = aimd({ maxBatchSize: 10, initialBatchSize: 7, additiveStep: 2 });
  c.observe(7, 1, BUDGET);
  t.is(c.limit, 9);
  c.observe(9, 1, BUDGET);
  t.is(c.limit, 10);
  c.observe(10, 1, BUDGET);
  t.is(c.limit, 10);
  t.is(c.increases, 2);
});

test('fixed and none modes ignore feedback', (t) => {
  for (const [mode, limit] of [['fixed', 32], ['none', 1]] as const) {
    const c = aimd({ mode, maxBatchSize: 32, initialBatchSize: 4 });
    c.observe(limit, 1, BUDGET);
    c.observe(limit, 1_000, BUDGET);
    c.observe(1, 1_000, BUDGET);
    t.is(c.limit, limit, mode);
    t.is(c.increases, 0, mode);
    t.is(c.decreases, 0, mode);
  }
});

test('against a replica taking 0.1 ms/row + 1 ms, the limit settles and oscillates around the 10 ms budget', (t) => {
  // A batch of b rows takes 0.1 b + 1 ms, so b = 90 is the largest batch inside the budget.
  const c = aimd({ maxBatchSize: 256, initialBatchSize: 1, additiveStep: 2, backoffFactor: 0.9 });
  const batchMs = (rows: number) => 0.1 * rows + 1;
  let risingRounds = 0;
  for (let round = 0; round < 100; round++) {
    if (c.decreases > 0) break;
    risingRounds++;
    c.observe(c.limit, batchMs(c.limit), BUDGET);
  }
  t.is(c.increases, 45, 'climbs 1, 3, ..., 91 in steps of 2 before the first miss');
  t.is(c.decreases, 1);
  t.is(risingRounds, 46);

  const limits: number[] = [];
  const increasesBefore = c.increases;
  const decreasesBefore = c.decreases;
  for (let round = 0; round < 1_000; round++) {
    c.observe(c.limit, batchMs(c.limit), BUDGET);
    limits.push(c.limit);
  }
  t.true(Math.min(...limits) >= 80, `min ${Math.min(...limits)}`);
  t.true(Math.max(...limits) <= 92, `max ${Math.max(...limits)}`);
  t.true(c.increases - increasesBefore > 100, 'keeps probing upwards');
  t.true(c.decreases - decreasesBefore > 100, 'keeps backing off');
  const mean = limits.reduce((a, b) => a + b, 0) / limits.length;
  t.true(mean > 83 && mean < 91, `mean ${mean}`);
});

test('with fluctuating load (partial batches) the limit only moves on full batches and misses', (t) => {
  const c = aimd({ initialBatchSize: 10 });
  const rounds: [size: number, ms: number, limitAfter: number][] = [
    [10, 5, 12],
    [4, 5, 12],
    [12, 5, 14],
    [14, 11, 12],
    [2, 11, 10],
    [10, 10, 12],
  ];
  for (const [size, ms, limitAfter] of rounds) {
    c.observe(size, ms, BUDGET);
    t.is(c.limit, limitAfter, `after batch of ${size} in ${ms} ms`);
  }
});
