import type { ResolvedBatchingOptions } from '../config/options.js';
import type { BatchLatencyModel } from './batch-latency-model.js';

/** What admission knows of one replica when a query arrives. */
export interface AdmissionState {
  /** The deadlines of the queries waiting, in the batch queue's order, cancelled copies excluded. */
  queued: readonly number[];
  /**
   * Their priority levels (BatchQueue's `urgency`: smaller runs first), parallel to `queued`. Absent: all at the
   * default level, so `queued` is earliest first.
   */
  levels?: readonly number[];
  /** The batch now running (it takes its time whatever became of its queries); undefined when idle. */
  running: { readonly rows: number; readonly startedAt: number } | undefined;
  /** The batch controller's limit now. */
  limit: number;
  /**
   * Under AIMD the limit grows by `step` after each full batch, up to `ceiling` (what fits the latency budget):
   * a queue drains in growing batches, and counting them all at today's limit refused a burst AIMD was about to
   * absorb (a fresh replica's limit is 1). Absent: the limit stays.
   */
  growth?: { readonly step: number; readonly ceiling: number };
  latency: Pick<BatchLatencyModel, 'samples' | 'estimate' | 'rowsWithin'>;
  /**
   * How long an answer needs, once its batch is back, to reach whoever decides at the deadline (the replica's
   * mailbox, the replica set, the router's): a batch must finish this much before its tightest deadline.
   */
  leaveMs: number;
  /**
   * The uncertainty of the plan: a high quantile of how much later than planned recent queries finished (the
   * residuals of this very prediction). A batch must finish this much earlier still.
   */
  marginMs: number;
  /**
   * Queries per millisecond arriving at this replica lately, admitted or not ({@link ArrivalRate}). Absent: no
   * query is refused for leading a batch it would cut short (see {@link planFinish}).
   */
  arrivalsPerMs?: number;
  /**
   * The replica refused a query as too late (the plan did not fit) lately. Only then is a query refused for
   * leading a batch it would cut short: a burst that arrives at once raises the arrival rate as much as a
   * sustained overload does, but nothing follows it, and refusing its early queries for later ones that never
   * come refused 59 of a burst of 256 that all fitted.
   */
  saturated?: boolean;
}

export type AdmissionSettings = Pick<ResolvedBatchingOptions, 'maxQueueSize'>;

/** Why a replica refused a query: its queue is at `maxQueueSize`, or the query would not finish in time. */
export type RefusalReason = 'queue-full' | 'too-late';

export type AdmissionDecision =
  /** Admitted: the replica plans to have answered by `finishAt` (the plan's mean, without the margin). */
  | { admit: true; finishAt: number }
  /**
   * Refused. `explanation` completes "replica X ..."; `retryAfterSeconds` (for the 503's Retry-After) is when
   * the work already promised will have drained.
   */
  | {
      admit: false;
      reason: RefusalReason;
      finishAt: number;
      retryAfterSeconds: number;
      explanation: string;
      /** Refused for leading a batch its deadline would cut short while the replica is saturated (not for missing). */
      leadsShort?: true;
    };

/** Batches simulated one by one before the rest is counted at the limit (bounds the work per query). */
const SIMULATED_BATCHES = 64;

/**
 * Admission control for one replica (Clipper, section 4.3: refuse early rather than queue a query that the work
 * ahead of it makes late anyway). Pure: the caller passes the time and the replica's state.
 *
 * It predicts when the query would be answered by playing the queue forward as the batch queue will run it
 * ({@link planFinish}): the running batch's remaining time, then the queued queries with this one inserted in
 * deadline order, in batches of the controller's limit (growing as AIMD will grow it) cut to fit each batch's
 * tightest deadline, each batch at the latency model's fit. It admits only if every batch from the query's own
 * onward finishes by its tightest deadline less the time an answer needs to leave (`leaveMs`) and less the
 * plan's uncertainty (`marginMs`, a high quantile of its recent residuals: how much later than planned queries
 * finished): the query makes it, and it displaces no query admitted before it. A refusal comes at once, with a Retry-After for when the queue will have drained.
 *
 * An idle replica with an empty queue always takes a query, so a stale, pessimistic estimate can never refuse
 * everything (the batch queue runs a lone query as a probe, which refreshes the estimate); so does a replica
 * that has measured nothing yet.
 *
 * @example
 * const d = decideAdmission(clock.now(), query.deadline, { queued: queue.deadlines(), running, limit, latency }, batching);
 * if (!d.admit) query.reject(new OverloadedError(`replica ${name} ${d.explanation}`, d.retryAfterSeconds));
 */
export function decideAdmission(now: number, deadline: number, state: AdmissionState, settings: AdmissionSettings, level = Number.POSITIVE_INFINITY): AdmissionDecision {
  const queued = state.queued.length;
  if (queued >= settings.maxQueueSize) {
    return { admit: false, reason: 'queue-full', finishAt: Number.NaN, retryAfterSeconds: 1, explanation: `has ${queued} queries queued (maxQueueSize ${settings.maxQueueSize})` };
  }
  const plan = planFinish(now, deadline, state, 1, 1, level);
  if (plan.onTime || (queued === 0 && state.running === undefined) || state.latency.samples === 0) return { admit: true, finishAt: plan.finishAt };
  const batch = state.latency.estimate(state.limit);
  const retryAfterSeconds = Math.max(1, Math.ceil((plan.drainAt - now) / 1000));
  if (plan.leadsShort !== undefined) {
    const { rows, expected } = plan.leadsShort;
    return {
      admit: false,
      reason: 'too-late',
      finishAt: plan.finishAt,
      retryAfterSeconds,
      leadsShort: true,
      explanation:
        `is saturated: this query would lead a batch its deadline (in ${(deadline - now).toFixed(1)} ms) cuts to ${rows} rows, ` +
        `while ~${expected} queries with later deadlines arrive before that batch starts`,
    };
  }
  return {
    admit: false,
    reason: 'too-late',
    finishAt: plan.finishAt,
    retryAfterSeconds,
    explanation:
      `would answer in ~${(plan.finishAt - now).toFixed(1)} ms (${queued} queued, ${state.running?.rows ?? 0} running, ` +
      `batches of ${state.limit} take ~${batch.toFixed(1)} ms); the deadline is in ${(deadline - now).toFixed(1)} ms`,
  };
}

/** The queue played forward with one more query (or a unit of several) in it. */
export interface FinishPlan {
  /** When the query's batch (for a unit: the batch of its last row) would finish. */
  finishAt: number;
  /** Every batch from the query's own onward finishes by its tightest deadline. */
  onTime: boolean;
  /** When the last batch, this query's included, would finish. */
  drainAt: number;
  /**
   * Set when the query is not on time because it would lead a batch not yet started, cut by its deadline to
   * `rows`, while `expected` queries (at the recent arrival rate) arrive before that batch starts.
   */
  leadsShort?: { rows: number; expected: number };
}

/**
 * Plays the queue forward as {@link BatchQueue.take} will run it, with `rows` queries due at `deadline` (one
 * query, or a client's batch admitted as one unit) inserted after the queued deadlines no later than theirs.
 * A batch starts when the one before it ends, holds up to `limit` queries (a batch that starts with a unit's
 * rows up to `unitLimit`, as the replica forms it) cut to what fits its tightest (first) deadline less the
 * margins, and a query that cannot make its deadline even alone is dropped unrun (it takes no time: the queue
 * expires it), which is a miss when it is one of these or one behind them.
 *
 * Under saturation the first query of a batch sets its size: the batch is cut to what that query's deadline
 * allows, and every query that arrives while it waits and does not fit is refused. Clipper's promise is the
 * most throughput within the SLO, so while the replica is `saturated`, a lone query (`rows` 1, one priority
 * level) that would lead a batch not yet started is not on time when its deadline cuts that batch to fewer rows
 * than the queries expected to arrive before it starts (`arrivalsPerMs` times the wait, up to the batch's
 * limit): refused now, it leaves the batch to a later arrival whose deadline lets it run full (in-process, a
 * 4 ms + 0.5 ms/row model at 3x its capacity: batches of ~6 rows became 8-10, and model answers rose from
 * ~800/s to 930-1,050/s). At light load fewer queries arrive in the wait than the batch can hold, and nothing
 * changes.
 */
export function planFinish(now: number, deadline: number, state: AdmissionState, rows = 1, unitLimit = 1, level = Number.POSITIVE_INFINITY): FinishPlan {
  const { queued, latency, levels } = state;
  const leaveMs = state.leaveMs + state.marginMs;
  let limit = state.limit;
  const own = levels === undefined ? upperBound(queued, deadline) : insertionPoint(queued, levels, deadline, level);
  // The level of the query at position i of the plan (this one's rows at own..last).
  const levelAt = (i: number): number => (levels === undefined ? level : i < own ? (levels[i] as number) : i <= own + rows - 1 ? level : (levels[i - rows] as number));
  const last = own + rows - 1;
  const total = queued.length + rows;
  const at = (i: number): number => (i < own ? (queued[i] as number) : i <= last ? deadline : (queued[i - rows] as number));
  let t = state.running === undefined ? now : Math.max(now, state.running.startedAt + latency.estimate(state.running.rows));
  let finishAt = Number.NaN;
  let onTime = true;
  let leadsShort: FinishPlan['leadsShort'];
  // With more than one priority level in the plan, a batch led by a more urgent query may hold less urgent ones
  // due earlier than its head: the queue cuts such a batch at the earliest deadline among its queries.
  const mixed = levels !== undefined && levels.some((l) => l !== level);
  let i = 0;
  for (let batches = 0; i < total && batches < SIMULATED_BATCHES; batches++) {
    let tightest = at(i);
    const cap = i >= own && i <= last ? Math.max(limit, unitLimit) : limit;
    const fits = latency.rowsWithin(tightest - leaveMs - t);
    let size = Math.min(cap, total - i, fits);
    if (i === own && rows === 1 && !mixed && state.saturated === true && state.arrivalsPerMs !== undefined && t > now) {
      const cut = Math.min(cap, fits);
      const expected = Math.min(cap, Math.floor(state.arrivalsPerMs * (t - now)));
      if (cut >= 1 && cut < expected) {
        onTime = false;
        leadsShort = { rows: cut, expected };
      }
    }
    if (mixed && size > 1) {
      let k = 1;
      for (; k < size; k++) {
        const earliest = Math.min(tightest, at(i + k));
        if (latency.rowsWithin(earliest - leaveMs - t) < k + 1) break;
        tightest = earliest;
      }
      size = k;
    }
    if (size < 1) {
      // Doomed whatever runs: the queue drops it before it takes a slot.
      if (i >= own && (i <= last || levelAt(i) <= level)) onTime = false;
      if (i === last) finishAt = t + latency.estimate(1);
      i++;
      continue;
    }
    const startsAt = t;
    t += latency.estimate(size);
    // A batch behind this query's that holds only less urgent queries may be made late: the lowest priority pays first.
    if (i + size > own && t > tightest - leaveMs && (i <= last || levelAt(i) <= level)) onTime = false;
    if (i <= last && last < i + size) finishAt = rows === 1 && !mixed ? startsAt + latency.estimate(expectedSize(size, cap, tightest - leaveMs - startsAt, startsAt - now, state.arrivalsPerMs, latency)) : t;
    i += size;
    if (state.growth !== undefined && size >= limit) limit = Math.max(limit, Math.min(state.growth.ceiling, limit + state.growth.step));
  }
  if (i < total) {
    // A long queue: the rest at the limit, in full batches.
    const full = latency.estimate(limit);
    if (i <= last) {
      finishAt = t + Math.ceil((last - i + 1) / limit) * full;
      if (finishAt > deadline - leaveMs) onTime = false;
    }
    t += Math.ceil((total - i) / limit) * full;
  }
  return leadsShort === undefined ? { finishAt, onTime, drainAt: t } : { finishAt, onTime, drainAt: t, leadsShort };
}

/**
 * The size a batch not yet started is expected to run at: the queries planned in it, plus those expected to
 * arrive before it starts (`arrivalsPerMs` times `waitMs`) as far as its cap and its tightest deadline (`roomMs`
 * from its start) allow. A query's promised finish is its batch's at that size: promised at the size the batch
 * has when it is admitted, every query that joins later made it finish later than promised (by 2 ms at the
 * median under overload, with a 4 ms + 0.5 ms/row model), and admission's margin, the 95th percentile of those
 * errors, cut every batch short.
 */
function expectedSize(size: number, cap: number, roomMs: number, waitMs: number, arrivalsPerMs: number | undefined, latency: AdmissionState['latency']): number {
  if (arrivalsPerMs === undefined || waitMs <= 0) return size;
  return Math.max(size, Math.min(cap, latency.rowsWithin(roomMs), size + Math.floor(arrivalsPerMs * waitMs)));
}

export type UnitAdmissionSettings = Pick<ResolvedBatchingOptions, 'maxQueueSize' | 'maxBatchSize'>;

export type UnitAdmissionDecision =
  | AdmissionDecision
  /**
   * Refused for good: even alone on an idle replica, in batches of up to `maxBatchSize` at the latency model's
   * fit plus the margins, the rows would not be answered in the time allowed. `largestRows` is the most that
   * would (0 when not even one would).
   */
  | { admit: false; reason: 'never-fits'; largestRows: number; idleMs: number; explanation: string };

/** How long `rows` take alone on an idle replica, in batches of up to `batch` (the last one partial). */
export function idleMs(rows: number, batch: number, latency: Pick<BatchLatencyModel, 'estimate'>): number {
  const full = Math.floor(rows / batch);
  const rest = rows - full * batch;
  return full * latency.estimate(batch) + (rest > 0 ? latency.estimate(rest) : 0);
}

/** The most rows that {@link idleMs} fits in `ms` (monotone in rows: a binary search). */
export function largestRowsWithin(ms: number, batch: number, latency: Pick<BatchLatencyModel, 'estimate'>): number {
  if (idleMs(1, batch, latency) > ms) return 0;
  let lo = 1;
  let hi = 2;
  while (idleMs(hi, batch, latency) <= ms && hi < 1e9) hi *= 2;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (idleMs(mid, batch, latency) <= ms) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Admission of a client's batch of `rows` queries, all due at `deadline`, as one unit: taken whole or refused
 * whole, decided once (the replica then queues the rows without re-admitting each).
 *
 * - `never-fits` (a 400 for the client: retrying cannot help) when even an idle replica would not answer them
 *   in time: {@link idleMs} in batches of up to `maxBatchSize` plus `leaveMs` and `marginMs` exceeds the time
 *   to the deadline. Not decided before the latency model has measured anything.
 * - otherwise as {@link decideAdmission} (a 503 when refused: the replica is busy), with the queue played
 *   forward with all the rows in it, the unit's batches up to `maxBatchSize`; `queue-full` only when the queue
 *   holds queries already and the rows would take it past `maxQueueSize` (a unit larger than the queue is
 *   taken by an empty one).
 *
 * @example
 * const d = decideUnitAdmission(now, deadline, 500, state, batching);
 * if (!d.admit && d.reason === 'never-fits') throw new BatchTooLargeError(..., d.largestRows);
 */
export function decideUnitAdmission(now: number, deadline: number, rows: number, state: AdmissionState, settings: UnitAdmissionSettings, level = Number.POSITIVE_INFINITY): UnitAdmissionDecision {
  const latency = state.latency;
  if (latency.samples > 0) {
    const allowed = deadline - now - state.leaveMs - state.marginMs;
    const alone = idleMs(rows, settings.maxBatchSize, latency);
    if (alone > allowed) {
      const largestRows = largestRowsWithin(allowed, settings.maxBatchSize, latency);
      return {
        admit: false,
        reason: 'never-fits',
        largestRows,
        idleMs: alone,
        explanation:
          `cannot answer ${rows} rows within ${(deadline - now).toFixed(1)} ms even when idle: they take ~${alone.toFixed(1)} ms ` +
          `(batches of up to ${settings.maxBatchSize}) plus a ${(state.leaveMs + state.marginMs).toFixed(1)} ms margin; at most ${largestRows} rows fit`,
      };
    }
  }
  const queued = state.queued.length;
  if (queued > 0 && queued + rows > settings.maxQueueSize) {
    return { admit: false, reason: 'queue-full', finishAt: Number.NaN, retryAfterSeconds: 1, explanation: `has ${queued} queries queued, no room for ${rows} more (maxQueueSize ${settings.maxQueueSize})` };
  }
  const plan = planFinish(now, deadline, state, rows, settings.maxBatchSize, level);
  if (plan.onTime || (queued === 0 && state.running === undefined) || latency.samples === 0) return { admit: true, finishAt: plan.finishAt };
  return {
    admit: false,
    reason: 'too-late',
    finishAt: plan.finishAt,
    retryAfterSeconds: Math.max(1, Math.ceil((plan.drainAt - now) / 1000)),
    explanation:
      `would answer ${rows} rows in ~${(plan.finishAt - now).toFixed(1)} ms (${queued} queued, ${state.running?.rows ?? 0} running); ` +
      `the deadline is in ${(deadline - now).toFixed(1)} ms`,
  };
}

/** Where a query of `level` due at `deadline` joins a queue ordered by (level, deadline): after those not after it. */
function insertionPoint(deadlines: readonly number[], levels: readonly number[], deadline: number, level: number): number {
  let lo = 0;
  let hi = deadlines.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const l = levels[mid] as number;
    if (l < level || (l === level && (deadlines[mid] as number) <= deadline)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index whose value is greater than `value` in an ascending array (its length when none is). */
function upperBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
