import test from 'ava';
import { capacityOf, nextRate, stepVerdict, type CapacityStep, type CapacityTry, type StepVerdict } from '../../../bench/lib/capacity-search.js';

const pass = (achieved = 0): CapacityTry => ({ achieved, p99Ms: 10, passed: true });
const miss = (achieved = 0): CapacityTry => ({ achieved, p99Ms: 45, passed: false });
const RATES = [400, 600, 800, 1000, 1200];

/**
 * Plays a sweep to its end: `outcomes` says, per rate, the tries that rate yields in order; returns the steps
 * measured, each with only the tries the search asked for.
 */
function play(outcomes: Record<number, boolean[]>, rates = RATES): CapacityStep[] {
  const steps: CapacityStep[] = [];
  const used: Record<number, number> = {};
  for (let rate = nextRate(rates, steps); rate !== undefined; rate = nextRate(rates, steps)) {
    if (steps.at(-1)?.offered !== rate || stepVerdict(steps.at(-1)!.tries) !== 'open') steps.push({ offered: rate, tries: [] });
    const k = used[rate] ?? 0;
    used[rate] = k + 1;
    const passed = outcomes[rate]?.[k];
    if (passed === undefined) throw new Error(`the search asked for try ${k + 1} of ${rate}/s, which the script does not have`);
    steps.at(-1)!.tries.push(passed ? pass(rate - 3) : miss(rate - 3));
  }
  return steps;
}

test('stepVerdict: 2 of 3 decide; one try alone, or a split, leaves the step open', (t) => {
  const table: [CapacityTry[], StepVerdict][] = [
    [[], 'open'],
    [[pass()], 'open'],
    [[miss()], 'open'],
    [[pass(), pass()], 'passed'],
    [[miss(), miss()], 'failed'],
    [[pass(), miss()], 'open'],
    [[miss(), pass(), pass()], 'passed'],
    [[pass(), miss(), miss()], 'failed'],
  ];
  for (const [tries, verdict] of table) t.is(stepVerdict(tries), verdict, JSON.stringify(tries.map((x) => x.passed)));
  t.is(stepVerdict([pass(), miss(), pass()], { triesPerStep: 5, stopAfterFailedSteps: 2 }), 'open');
  t.is(stepVerdict([pass(), miss(), pass(), pass()], { triesPerStep: 5, stopAfterFailedSteps: 2 }), 'passed');
});

test('one stall per step no longer decides the capacity: a missed try is outvoted by the two around it', (t) => {
  // The old sweep stopped at 600/s here: one stall failed its only try.
  const steps = play({ 400: [true, true], 600: [false, true, true], 800: [true, false, true], 1000: [false, false], 1200: [false, false] });
  t.deepEqual(
    steps.map((s) => [s.offered, stepVerdict(s.tries), s.tries.length]),
    [
      [400, 'passed', 2],
      [600, 'passed', 3],
      [800, 'passed', 3],
      [1000, 'failed', 2],
      [1200, 'failed', 2],
    ],
  );
  t.deepEqual(capacityOf(steps), { offered: 800, achieved: 797 });
});

test('the sweep goes past one failed step, and a pass above it is the capacity', (t) => {
  const steps = play({ 400: [true, true], 600: [false, false], 800: [true, true], 1000: [false, false], 1200: [false, false] });
  t.deepEqual(
    steps.map((s) => s.offered),
    [400, 600, 800, 1000, 1200],
  );
  t.is(capacityOf(steps)?.offered, 800);
});

test('the sweep stops after three failed steps in a row and never measures above them', (t) => {
  const steps = play({ 400: [true, true], 600: [false, true, false], 800: [false, false], 1000: [true, false, false] });
  t.deepEqual(
    steps.map((s) => [s.offered, stepVerdict(s.tries)]),
    [
      [400, 'passed'],
      [600, 'failed'],
      [800, 'failed'],
      [1000, 'failed'],
    ],
  );
  t.deepEqual(capacityOf(steps), { offered: 400, achieved: 397 });
});

test('two failed steps in a row do not end the sweep', (t) => {
  const steps = play({ 400: [true, true], 600: [false, false], 800: [false, false], 1000: [true, true], 1200: [false, false] });
  t.is(steps.length, 5);
  t.is(capacityOf(steps)?.offered, 1000);
});

test('the sweep ends after the last rate; capacity is null when no step passed', (t) => {
  t.is(play({ 400: [true, true], 600: [true, true] }, [400, 600]).length, 2);
  t.is(capacityOf(play({ 400: [false, false], 600: [false, false] }, [400, 600])), null);
  t.is(nextRate([], []), undefined);
});

test('capacityOf: the median of the passing tries achieved, not of the missed one', (t) => {
  const steps: CapacityStep[] = [{ offered: 800, tries: [{ achieved: 700, p99Ms: 90, passed: false }, pass(790), pass(798)] }];
  t.deepEqual(capacityOf(steps), { offered: 800, achieved: 794 });
  t.deepEqual(capacityOf([{ offered: 800, tries: [pass(790), pass(798), pass(801)] }]), { offered: 800, achieved: 798 });
});
