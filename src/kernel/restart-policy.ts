/** Supervision settings: exponential backoff, and a cap on restarts within a sliding window. */
export interface RestartPolicyOptions {
  /** Restarts allowed within `windowMs`; one more failure in the window gives up. */
  maxRestarts: number;
  windowMs: number;
  /** Delay before the first restart; doubles with each further failure in the window. */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export type RestartDecision =
  | { action: 'restart'; delayMs: number; attempt: number }
  | { action: 'giveUp'; failuresInWindow: number };

/**
 * Decides what to do about a child's failure at `now`, given the times of its earlier failures.
 * Pure: the supervisor keeps the history and the clock.
 *
 * The n-th failure within the window (n = 1, 2, ...) is restarted after `backoffBaseMs * 2^(n-1)`, capped at
 * `backoffMaxMs`; failure number `maxRestarts + 1` within the window gives up (Erlang/OTP's intensity and
 * period, with Akka's backoff).
 */
export function decideRestart(earlierFailures: readonly number[], now: number, options: RestartPolicyOptions): RestartDecision {
  const inWindow = earlierFailures.filter((t) => now - t < options.windowMs).length + 1;
  if (inWindow > options.maxRestarts) return { action: 'giveUp', failuresInWindow: inWindow };
  const delayMs = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** (inWindow - 1));
  return { action: 'restart', delayMs, attempt: inWindow };
}
