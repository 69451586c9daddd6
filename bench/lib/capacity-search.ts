/**
 * Capacity by stepping the rate, decided by majority so that one stall does not decide it. On this shared 2-core
 * VM a garbage collection or the hypervisor taking the core for 50 ms fails a 2 s step's p99 on its own (at
 * 800/s that is 40 late queries, 2.5 times the 1% the p99 allows), and the same code measured 399 to 897/s. So
 * a step passes only when a majority of `triesPerStep` tries passes (a claim the rate holds, not one lucky 2 s),
 * and one failed step does not end the sweep: it stops after `stopAfterFailedSteps` failed steps in a row, and a
 * step that passes above a failed one is the capacity.
 * Pure: the caller measures, this decides what to measure next and what the capacity is.
 */

/** One measurement of a step: `passed` when its p99 met the SLO and the generator kept to its schedule. */
export interface CapacityTry {
  achieved: number;
  p99Ms: number | null;
  passed: boolean;
}

export interface CapacityStep {
  offered: number;
  tries: CapacityTry[];
}

export interface CapacityRule {
  /** Odd: a step passes when more than half of this many tries pass, and fails when more than half fail. */
  triesPerStep: number;
  /** The sweep stops after this many failed steps in a row. */
  stopAfterFailedSteps: number;
}

export const capacityRuleDefaults: Readonly<CapacityRule> = Object.freeze({ triesPerStep: 3, stopAfterFailedSteps: 3 });

export type StepVerdict = 'passed' | 'failed' | 'open';

/** Passed or failed once a majority of `triesPerStep` agrees (2 of 3: a third try only breaks a tie); open before. */
export function stepVerdict(tries: readonly CapacityTry[], rule: Readonly<CapacityRule> = capacityRuleDefaults): StepVerdict {
  const majority = Math.floor(rule.triesPerStep / 2) + 1;
  const passes = tries.filter((t) => t.passed).length;
  if (passes >= majority) return 'passed';
  if (tries.length - passes >= majority) return 'failed';
  return 'open';
}

/**
 * The rate to measure next given the steps so far (the last one may still be open), or undefined when the
 * sweep is over: every rate stepped, or the last `stopAfterFailedSteps` steps failed.
 */
export function nextRate(rates: readonly number[], steps: readonly CapacityStep[], rule: Readonly<CapacityRule> = capacityRuleDefaults): number | undefined {
  const last = steps.at(-1);
  if (last !== undefined && stepVerdict(last.tries, rule) === 'open') return last.offered;
  const verdicts = steps.map((s) => stepVerdict(s.tries, rule));
  let failedInARow = 0;
  for (let i = verdicts.length - 1; i >= 0 && verdicts[i] === 'failed'; i--) failedInARow++;
  if (failedInARow >= rule.stopAfterFailedSteps) return undefined;
  return rates[steps.length];
}

/**
 * The highest step that passed, with the median of its passing tries' achieved rates (what the server answered,
 * which at a passed step is the offered rate give or take the generator's timing); null when none passed. A
 * passed step above a failed one counts: the failed one was a majority of stalls, not the limit.
 */
export function capacityOf(steps: readonly CapacityStep[], rule: Readonly<CapacityRule> = capacityRuleDefaults): { offered: number; achieved: number } | null {
  let best: CapacityStep | undefined;
  for (const step of steps) if (stepVerdict(step.tries, rule) === 'passed' && (best === undefined || step.offered > best.offered)) best = step;
  if (best === undefined) return null;
  const achieved = best.tries
    .filter((t) => t.passed)
    .map((t) => t.achieved)
    .sort((a, b) => a - b);
  const mid = achieved.length / 2;
  const median = achieved.length % 2 === 1 ? (achieved[Math.floor(mid)] as number) : ((achieved[mid - 1] as number) + (achieved[mid] as number)) / 2;
  return { offered: best.offered, achieved: median };
}
