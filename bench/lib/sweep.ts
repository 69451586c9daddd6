import { LatencyRecorder, type LatencySummary } from '../../src/load/latency-recorder.js';
import { performance } from 'node:perf_hooks';
import { runOpenLoop } from '../../src/load/open-loop.js';

/** One rate of a sweep. */
export interface RateResult {
  offered: number;
  achieved: number;
  latency: LatencySummary;
  /** Answers by a model within the SLO, over all sent. */
  sloAttainment: number;
  defaults: number;
  refused: number;
  late: number;
  meanBatch: number;
  ok: boolean;
  /** What `inspect` reported right after this rate (e.g. the replicas' AIMD batch limits). */
  inspected?: unknown;
}

export interface SweepOptions {
  sloMs: number;
  startRate: number;
  growth: number;
  maxRate: number;
  /** Seconds per rate. */
  seconds: number;
  /** A query: resolve with `{ isDefault, batchSize }`, reject when refused. */
  send(index: number): Promise<{ isDefault: boolean; batchSize: number }>;
  /** Called after each rate; its result is kept with that rate. */
  inspect?: () => unknown;
  log?: (line: string) => void;
}

/**
 * Open-loop load at rising rates until the SLO breaks twice in a row: a rate passes when its p99 (defaults
 * and refusals counted as misses) is within the SLO. Returns every rate tried and the best passing one.
 */
export async function sweepRates(options: SweepOptions): Promise<{ rates: RateResult[]; best: RateResult | undefined }> {
  const rates: RateResult[] = [];
  let best: RateResult | undefined;
  let failures = 0;
  for (let rate = options.startRate; rate <= options.maxRate && failures < 2; rate = Math.round(rate * options.growth)) {
    // This machine stalls now and then for reasons outside the process (see README, "Benchmarks"): a rate
    // that misses is tried once more before it counts as a failure.
    let result = await measureRate(rate, options);
    if (!result.ok) result = await measureRate(rate, options);
    rates.push(result);
    options.log?.(
      `  rate ${String(rate).padStart(6)}/s  achieved ${String(result.achieved).padStart(6)}/s  p50 ${fmt(result.latency.p50)}  p99 ${fmt(result.latency.p99)} ms  ` +
        `defaults ${result.defaults}  refused ${result.refused}  late ${result.late}  mean batch ${result.meanBatch.toFixed(1)}  ${result.ok ? 'ok' : 'SLO missed'}`,
    );
    if (result.ok) {
      failures = 0;
      if (best === undefined || result.achieved > best.achieved) best = result;
    } else failures++;
  }
  return { rates, best };
}

async function measureRate(rate: number, options: SweepOptions): Promise<RateResult> {
  {
    const latency = new LatencyRecorder();
    let defaults = 0;
    let refused = 0;
    let withinSlo = 0;
    let batchRows = 0;
    let answered = 0;
    const count = Math.max(200, Math.round(rate * options.seconds));
    const report = await runOpenLoop({
      rate,
      count,
      send: options.send,
      onOutcome: (o) => {
        if (o.error !== undefined || o.result === undefined) {
          refused++;
          latency.recordMiss();
        } else if (o.result.isDefault) {
          defaults++;
          latency.recordMiss();
        } else {
          answered++;
          batchRows += o.result.batchSize;
          latency.record(o.latencyMs);
          if (o.latencyMs <= options.sloMs) withinSlo++;
        }
      },
    });
    const summary = latency.summary();
    const result: RateResult = {
      offered: rate,
      achieved: Math.round(report.achievedRate),
      latency: summary,
      sloAttainment: withinSlo / count,
      defaults,
      refused,
      late: report.late,
      meanBatch: answered === 0 ? 0 : batchRows / answered,
      // Latency is timed from each query's scheduled send, so a generator that fell behind already shows in
      // p99; late sends are reported, not disqualifying.
      ok: summary.p99 <= options.sloMs,
      inspected: options.inspect?.(),
    };
    return result;
  }
}

export function fmt(ms: number): string {
  return Number.isFinite(ms) ? ms.toFixed(2) : 'miss';
}

/**
 * What the generator itself costs the main thread it shares with the server: the same open loop at `rate` for
 * `seconds`, with a send that does nothing (an answered promise), each outcome's latency recorded. Returns the
 * main thread's busy µs per query (event-loop utilisation x time / queries, not CPU time) and the share of the
 * thread that is at this rate.
 */
export async function generatorCost(rate: number, seconds: number): Promise<{ microsecondsPerQuery: number; shareOfMainThread: number }> {
  const answer = Promise.resolve({ isDefault: false, batchSize: 1 });
  const latency = new LatencyRecorder();
  const count = Math.max(200, Math.round(rate * seconds));
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  await runOpenLoop({ rate, count, send: () => answer, onOutcome: (o) => latency.record(o.latencyMs) });
  const elapsedMs = performance.now() - started;
  const busy = performance.eventLoopUtilization(elu).utilization;
  return { microsecondsPerQuery: (busy * elapsedMs * 1000) / count, shareOfMainThread: (busy * elapsedMs * 1000) / count / (1e6 / rate) };
}
