import type { ResolvedBatchingOptions } from '../config/options.js';
import type { BatchLatencyModel } from './batch-latency-model.js';

/** What admission knows of one replica when a query arrives. */
export interface AdmissionState {
  /** Queries waiting in the queue, cancelled copies excluded. */
  queued: number;
  /** Rows of the batch now running (it takes its time whatever became of its queries); 0 when idle. */
  runningRows: number;
  /** The batch controller's limit now. */
  limit: number;
  /** The compute time a batch may take before AIMD backs off. */
  budgetMs: number;
  latency: Pick<BatchLatencyModel, 'samples' | 'estimate' | 'rowsWithin'>;
}

export type AdmissionSettings = Pick<ResolvedBatchingOptions, 'mode' | 'maxBatchSize' | 'additiveStep' | 'maxQueueSize'>;

export type AdmissionDecision =
  | { admit: true; expectedWaitMs: number }
  /**
   * Refused: `queue-full` (maxQueueSize reached) or `too-late` (the work ahead makes the query late anyway).
   * `explanation` completes "replica X ..."; `retryAfterSeconds` is for the 503's Retry-After.
   */
  | { admit: false; reason: 'queue-full' | 'too-late'; expectedWaitMs: number; retryAfterSeconds: number; explanation: string };

/**
 * Admission control for one replica (Clipper, section 4.3: refuse early rather than queue a query that the
 * work ahead of it makes late anyway). Pure: the caller passes the time and the replica's state, and answers
 * the query as decided (a refusal becomes 503 with Retry-After).
 *
 * @example
 * const d = decideAdmission(clock.now(), query.deadline, { queued, runningRows, limit, budgetMs, latency }, batching);
 * if (!d.admit) query.reject(new OverloadedError(`replica ${name} ${d.explanation}`, d.retryAfterSeconds));
 */
export function decideAdmission(now: number, deadline: number, state: AdmissionState, settings: AdmissionSettings): AdmissionDecision {
  if (state.queued >= settings.maxQueueSize) {
    return { admit: false, reason: 'queue-full', expectedWaitMs: Number.NaN, retryAfterSeconds: 1, explanation: `has ${state.queued} queries queued (maxQueueSize ${settings.maxQueueSize})` };
  }
  const wait = expectedWaitMs(state, settings);
  if (now + wait <= deadline) return { admit: true, expectedWaitMs: wait };
  const batch = state.latency.estimate(state.limit);
  return {
    admit: false,
    reason: 'too-late',
    expectedWaitMs: wait,
    retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)),
    explanation: `would answer in ~${wait.toFixed(1)} ms (${state.queued} queued, batches of ${state.limit} take ~${batch.toFixed(1)} ms); the deadline is in ${(deadline - now).toFixed(1)} ms`,
  };
}

/** Batches simulated one by one before the rest is counted at the last size (bounds the work per query). */
const SIMULATED_BATCHES = 64;

/**
 * How long a query arriving now would wait for its answer: the batch running, the batches queued ahead of it,
 * and its own. 0 while there is no queue (or no measurement yet): an idle replica always takes a query, so a
 * stale estimate can never refuse everything.
 */
export function expectedWaitMs(state: AdmissionState, settings: AdmissionSettings): number {
  const { queued, latency } = state;
  if (queued === 0 || latency.samples === 0) return 0;
  let size = state.limit;
  // Under AIMD the queue drains in growing batches (a full batch within budget grows the limit by the step),
  // up to what fits the budget: counting every batch at today's limit would refuse a burst that AIMD is about
  // to absorb.
  const ceiling = settings.mode === 'aimd' ? Math.min(settings.maxBatchSize, Math.max(size, latency.rowsWithin(state.budgetMs))) : size;
  let wait = state.runningRows === 0 ? 0 : latency.estimate(state.runningRows);
  let remaining = queued + 1;
  for (let step = 0; remaining > 0 && step < SIMULATED_BATCHES; step++) {
    const take = Math.min(size, remaining);
    wait += latency.estimate(take);
    remaining -= take;
    size = Math.min(ceiling, size + settings.additiveStep);
  }
  if (remaining > 0) wait += Math.ceil(remaining / size) * latency.estimate(size);
  return wait;
}
