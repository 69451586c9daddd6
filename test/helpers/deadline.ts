import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * The deadline guarantee as the feature tests check it: every answer leaves the router within its
 * application's SLO, measured server-side (`Answer.latencyMs`, from the router's receipt of the query to its
 * answer), default answers included.
 *
 * The router answers by `SLO - deadlineMarginMs` (2 ms by default) whatever the models do. What it cannot
 * control is its own process being descheduled: on two cores shared with the rest of the suite (and other
 * engineers' suites) the event loop can run 100 ms and more behind, and a timer fires that much late. So the
 * bound is the SLO, plus a fixed slack for timer jitter, plus the worst event-loop delay this process measured
 * meanwhile (`LoopDelay`). On a quiet machine (CI) that delay is a few ms, and moving the router's timer 100 ms
 * past the SLO fails these checks; on a starved one the bound widens only by the starvation measured.
 */
export const DEADLINE_SLACK_MS = 40;

/** Measures how late this process's event loop runs, from now until `stop()`. */
export class LoopDelay {
  readonly #histogram = monitorEventLoopDelay({ resolution: 10 });
  #maxMs: number | undefined;

  constructor() {
    this.#histogram.enable();
  }

  /** Stops measuring; the worst delay seen, in ms, beyond the 10 ms sampling resolution. */
  stop(): number {
    if (this.#maxMs === undefined) {
      this.#histogram.disable();
      this.#maxMs = Math.max(0, this.#histogram.max / 1e6 - 10);
    }
    return this.#maxMs;
  }
}

/** The answers (with their index) that left the router later than `slo + DEADLINE_SLACK_MS + loopDelayMs`. */
export function lateAnswers(answers: readonly { latencyMs: number }[], slo: number, loopDelayMs = 0): string[] {
  const bound = slo + DEADLINE_SLACK_MS + loopDelayMs;
  return answers.flatMap((a, i) => (a.latencyMs > bound ? [`#${i}: ${a.latencyMs.toFixed(1)} ms (bound ${bound.toFixed(0)} ms)`] : []));
}

/** The median server-side latency, which a starved moment or two cannot move (unlike the slowest). */
export function medianLatency(answers: readonly { latencyMs: number }[]): number {
  const sorted = answers.map((a) => a.latencyMs).sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : (sorted[Math.floor(sorted.length / 2)] as number);
}

/** The slowest answer's server-side latency and the event loop's worst delay, for the test log. */
export function slowest(answers: readonly { latencyMs: number }[], loopDelayMs?: number): string {
  const loop = loopDelayMs === undefined ? '' : `; event loop up to ${loopDelayMs.toFixed(0)} ms late`;
  return `slowest answer ${Math.max(...answers.map((a) => a.latencyMs)).toFixed(1)} ms, median ${medianLatency(answers).toFixed(1)} ms${loop}`;
}
