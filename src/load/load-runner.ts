import type { ArrivalProcess } from './arrivals.js';
import { LatencyRecorder } from './latency-recorder.js';
import { bestRate, finiteOrNull, rateLatency, type LoadRun, type RateResult, type TimelinePoint } from './load-run.js';
import type { LoadTarget, QueryOutcome, ServerCounters } from './load-target.js';
import { counterDelta } from './metrics-scrape.js';
import { realLoadClock, runOpenLoop, type LoadClock } from './open-loop.js';

/** How a load test runs; every field has a default in {@link loadDefaults}. */
export interface LoadSettings {
  /** Rates to run, queries per second, in order (see `parseRateSchedule`). */
  rates: number[];
  /** Seconds of load per rate. */
  durationS: number;
  /** Seconds of unrecorded load before measuring, at `warmupRate`. */
  warmupS: number;
  /**
   * The warm-up's rate, queries per second. Default: the first rate. A lower one warms the generator and its
   * connections without loading the server ahead of the first measured rate (a step to overload then starts from
   * normal load, not from a generator's cold start).
   */
  warmupRate?: number;
  arrivals: ArrivalProcess;
  seed: number;
  /** p99 at or under this passes a rate; answers over it miss the SLO, ms. */
  sloMs: number;
  /** A send this much later than scheduled counts as late, ms. Default: half the SLO (the generator alone would eat half the budget). */
  lateThresholdMs: number;
  /** A rate with a larger share of late sends is marked invalid: the generator, not the server, fell behind. */
  maxLateShare: number;
  /** Stop the schedule after this many rates in a row miss the SLO (or are invalid); 0 runs them all. */
  stopAfterMisses: number;
  /** Measure a rate that missed this many more times before it counts (the machine may have stalled). */
  retries: number;
  /** Timeline resolution, ms (the progress line is updated as often). */
  sampleIntervalMs: number;
}

export const loadDefaults: Readonly<LoadSettings> = Object.freeze({
  rates: [1000],
  durationS: 5,
  warmupS: 1,
  arrivals: 'fixed',
  seed: 1,
  sloMs: 20,
  lateThresholdMs: 10,
  maxLateShare: 0.01,
  stopAfterMisses: 2,
  retries: 0,
  sampleIntervalMs: 500,
});

/** Fills in defaults and checks every field once; messages name the setting. */
export function resolveLoadSettings(given: Partial<LoadSettings> = {}): Readonly<LoadSettings> {
  const s = { ...loadDefaults, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) } as LoadSettings;
  if (given.lateThresholdMs === undefined) s.lateThresholdMs = s.sloMs / 2;
  const check = (name: keyof LoadSettings, ok: boolean, expected: string): void => {
    if (!ok) throw new RangeError(`${name} must be ${expected}; got ${JSON.stringify(s[name])}`);
  };
  check('rates', Array.isArray(s.rates) && s.rates.length > 0 && s.rates.every((r) => Number.isFinite(r) && r > 0), 'a non-empty list of positive rates');
  check('durationS', Number.isFinite(s.durationS) && s.durationS > 0, 'a positive number of seconds');
  check('warmupS', Number.isFinite(s.warmupS) && s.warmupS >= 0, 'a number of seconds >= 0');
  check('warmupRate', s.warmupRate === undefined || (Number.isFinite(s.warmupRate) && s.warmupRate > 0), 'a positive rate');
  check('arrivals', s.arrivals === 'fixed' || s.arrivals === 'poisson', 'fixed or poisson');
  check('seed', Number.isInteger(s.seed), 'an integer');
  check('sloMs', Number.isFinite(s.sloMs) && s.sloMs > 0, 'a positive number of ms');
  check('lateThresholdMs', Number.isFinite(s.lateThresholdMs) && s.lateThresholdMs >= 0, 'a number of ms >= 0');
  check('maxLateShare', s.maxLateShare >= 0 && s.maxLateShare <= 1, 'in [0, 1]');
  check('stopAfterMisses', Number.isInteger(s.stopAfterMisses) && s.stopAfterMisses >= 0, 'an integer >= 0');
  check('retries', Number.isInteger(s.retries) && s.retries >= 0 && s.retries <= 10, 'an integer in [0, 10]');
  check('sampleIntervalMs', Number.isFinite(s.sampleIntervalMs) && s.sampleIntervalMs >= 10, 'at least 10 ms');
  return Object.freeze({ ...s, rates: [...s.rates] });
}

/** What the progress line shows. */
export interface LoadProgress {
  phase: 'warmup' | 'measure';
  rate: number;
  /** 1-based position in the schedule, and its length. */
  step: number;
  steps: number;
  elapsedS: number;
  durationS: number;
  /** p99 over the last interval, ms (Infinity: among misses). */
  p99: number;
  /** Defaults, refusals and errors so far at this rate. */
  errors: number;
  sent: number;
}

export interface LoadHooks {
  onProgress?(progress: LoadProgress): void;
  onRate?(result: RateResult): void;
  /** Checked before each send: true stops the run after the queries in flight (Ctrl-C). */
  shouldStop?(): boolean;
  clock?: LoadClock;
}

export type LoadOutcome = Pick<LoadRun, 'rates' | 'timeline' | 'best'>;

/**
 * Runs a schedule of rates against a target, open loop, and measures each: latency percentiles from each
 * query's scheduled send (misses counted as infinitely slow), SLO attainment, defaults, refusals, late sends,
 * and the server's batch sizes and cache hits. Stops after `stopAfterMisses` rates in a row miss the SLO.
 */
export async function runLoad(target: LoadTarget, settings: Readonly<LoadSettings>, hooks: LoadHooks = {}): Promise<LoadOutcome> {
  const clock = hooks.clock ?? realLoadClock;
  const timeline: TimelinePoint[] = [];
  const rates: RateResult[] = [];
  const steps = settings.rates.length;
  if (settings.warmupS > 0) {
    const rate = settings.warmupRate ?? (settings.rates[0] as number);
    await measureRate(target, rate, settings.warmupS, settings, hooks, clock, { phase: 'warmup', step: 1, steps, seed: settings.seed - 1 });
  }
  const origin = clock.now();
  let misses = 0;
  for (const [i, rate] of settings.rates.entries()) {
    if (hooks.shouldStop?.() === true) break;
    let result: RateResult | undefined;
    for (let attempt = 1; attempt <= settings.retries + 1; attempt++) {
      const measured = await measureRate(target, rate, settings.durationS, settings, hooks, clock, {
        phase: 'measure',
        step: i + 1,
        steps,
        seed: settings.seed + i * 101 + attempt,
        timeline,
        origin,
      });
      result = { ...measured, attempts: attempt };
      if (result.meetsSlo && result.valid) break;
      if (hooks.shouldStop?.() === true) break;
    }
    if (result === undefined) break;
    rates.push(result);
    hooks.onRate?.(result);
    misses = result.meetsSlo && result.valid ? 0 : misses + 1;
    if (settings.stopAfterMisses > 0 && misses >= settings.stopAfterMisses) break;
  }
  return { rates, timeline, best: bestRate(rates) };
}

interface MeasureContext {
  phase: LoadProgress['phase'];
  step: number;
  steps: number;
  seed: number;
  /** Where to append samples (not during warm-up), and the time they count from. */
  timeline?: TimelinePoint[];
  origin?: number;
}

/** Per-query tallies; batch sizes and cache outcomes when the target reports them per query. */
class Tally {
  readonly latency = new LatencyRecorder();
  /** Answers only (model or default): what admitted queries saw. */
  readonly admitted = new LatencyRecorder();
  ok = 0;
  withinSlo = 0;
  defaults = 0;
  refused = 0;
  errors = 0;
  answers = 0;
  /** Sum over queries of 1 / their batch's size: the number of batches they made up. */
  batches = 0;
  batchRows = 0;
  cacheHits = 0;
  cacheLookups = 0;
  readonly errorKinds: Record<string, number> = {};

  add(outcome: QueryOutcome | undefined, latencyMs: number, sloMs: number): void {
    this.answers++;
    if (outcome === undefined || outcome.status === 'error') {
      this.errors++;
      const kind = outcome?.detail ?? 'rejected';
      this.errorKinds[kind] = (this.errorKinds[kind] ?? 0) + 1;
      this.latency.recordMiss();
      return;
    }
    if (outcome.status === 'ok' || outcome.status === 'default') this.admitted.record(latencyMs);
    if (outcome.status === 'ok') {
      this.ok++;
      this.latency.record(latencyMs);
      if (latencyMs <= sloMs) this.withinSlo++;
      if (outcome.batchSize !== undefined && outcome.batchSize > 0) {
        this.batches += 1 / outcome.batchSize;
        this.batchRows++;
      }
      if (outcome.cached !== undefined) {
        this.cacheLookups++;
        if (outcome.cached) this.cacheHits++;
      }
      return;
    }
    if (outcome.status === 'default') this.defaults++;
    else this.refused++;
    this.latency.recordMiss();
  }

  get failures(): number {
    return this.defaults + this.refused + this.errors;
  }
}


function meanBatch(counters: ServerCounters | undefined, tally: Tally): number | null {
  if (counters !== undefined && counters.batches > 0) return counters.batchRows / counters.batches;
  return tally.batches > 0 ? tally.batchRows / tally.batches : null;
}

function cacheHitRatio(counters: ServerCounters | undefined, tally: Tally): number | null {
  if (counters !== undefined && counters.cacheLookups > 0) return counters.cacheHits / counters.cacheLookups;
  return tally.cacheLookups > 0 ? tally.cacheHits / tally.cacheLookups : null;
}

async function measureRate(
  target: LoadTarget,
  rate: number,
  seconds: number,
  settings: Readonly<LoadSettings>,
  hooks: LoadHooks,
  clock: LoadClock,
  context: MeasureContext,
): Promise<Omit<RateResult, 'attempts'>> {
  const total = new Tally();
  let interval = new Tally();
  const cpuBefore = process.cpuUsage();
  const before = await target.counters?.();
  let intervalCounters = before;
  let intervalStart = clock.now();
  const started = intervalStart;
  let sent = 0;
  let sampling = false;
  const sample = async (): Promise<void> => {
    if (sampling) return;
    sampling = true;
    try {
      const now = clock.now();
      const done = interval;
      interval = new Tally();
      const counters = await target.counters?.();
      const delta = counterDelta(intervalCounters, counters);
      intervalCounters = counters;
      const elapsed = Math.max(1e-3, (now - intervalStart) / 1000);
      intervalStart = now;
      const p99 = done.latency.count === 0 ? Number.NaN : done.latency.percentile(99);
      context.timeline?.push({
        t: (now - (context.origin ?? started)) / 1000,
        offered: rate,
        throughput: done.answers / elapsed,
        p99: finiteOrNull(p99),
        errors: done.failures,
        meanBatch: meanBatch(delta, done),
      });
      hooks.onProgress?.({
        phase: context.phase,
        rate,
        step: context.step,
        steps: context.steps,
        elapsedS: (now - started) / 1000,
        durationS: seconds,
        p99,
        errors: total.failures,
        sent,
      });
    } finally {
      sampling = false;
    }
  };
  const timer = setInterval(() => void sample(), settings.sampleIntervalMs);
  let report;
  try {
    report = await runOpenLoop<QueryOutcome>({
      rate,
      count: Math.max(1, Math.round(rate * seconds)),
      arrivals: settings.arrivals,
      seed: context.seed,
      lateThresholdMs: settings.lateThresholdMs,
      clock,
      ...(hooks.shouldStop === undefined ? {} : { shouldStop: hooks.shouldStop }),
      send: (i) => {
        sent++;
        return target.send(i);
      },
      onOutcome: (o) => {
        const outcome = o.error === undefined ? o.result : { status: 'error' as const, detail: (o.error as Error)?.message ?? String(o.error) };
        total.add(outcome, o.latencyMs, settings.sloMs);
        interval.add(outcome, o.latencyMs, settings.sloMs);
      },
    });
  } finally {
    clearInterval(timer);
  }
  while (sampling) await new Promise((resolve) => setTimeout(resolve, 1));
  if (interval.answers > 0) await sample();
  const cpu = process.cpuUsage(cpuBefore);
  const after = await target.counters?.();
  const delta = counterDelta(before, after);
  const summary = total.latency.summary();
  const durationS = report.durationMs / 1000;
  const p99 = summary.p99;
  return {
    offered: rate,
    achieved: durationS > 0 ? total.answers / durationS : 0,
    goodput: durationS > 0 ? total.withinSlo / durationS : 0,
    sent: report.sent,
    ok: total.ok,
    defaults: total.defaults,
    refused: total.refused,
    errors: total.errors,
    late: report.late,
    maxLateMs: report.maxLateMs,
    latency: rateLatency(summary),
    admittedLatency: rateLatency(total.admitted.summary()),
    sloAttainment: report.sent > 0 ? total.withinSlo / report.sent : 0,
    meanBatch: meanBatch(delta, total),
    cacheHitRatio: cacheHitRatio(delta, total),
    meetsSlo: p99 <= settings.sloMs,
    valid: report.sent > 0 && report.late / report.sent <= settings.maxLateShare,
    durationS,
    generatorCpu: durationS > 0 ? (cpu.user + cpu.system) / 1e6 / durationS : 0,
    ...(total.errors > 0 ? { errorKinds: total.errorKinds } : {}),
  };
}
