import { LatencyRecorder, type LatencySummary } from '../../src/load/latency-recorder.js';
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
  log?: (line: string) => void;
}

/**
 * Open-loop load at rising rates until the SLO breaks: a rate passes when its p99 (defaults and refusals
 * counted as misses) is within the SLO and the generator kept its schedule (under 1% late sends). Returns
 * every rate tried and the best passing one.
 */
export async function sweepRates(options: SweepOptions): Promise<{ rates: RateResult[]; best: RateResult | undefined }> {
  const rates: RateResult[] = [];
  let best: RateResult | undefined;
  let failures = 0;
  for (let rate = options.startRate; rate <= options.maxRate && failures < 2; rate = Math.round(rate * options.growth)) {
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
      ok: summary.p99 <= options.sloMs && report.late <= count * 0.01,
    };
    rates.push(result);
    options.log?.(
      `  rate ${String(rate).padStart(6)}/s  achieved ${String(result.achieved).padStart(6)}/s  p50 ${fmt(summary.p50)}  p99 ${fmt(summary.p99)} ms  ` +
        `defaults ${defaults}  refused ${refused}  late ${report.late}  mean batch ${result.meanBatch.toFixed(1)}  ${result.ok ? 'ok' : 'SLO missed'}`,
    );
    if (result.ok) {
      failures = 0;
      if (best === undefined || result.achieved > best.achieved) best = result;
    } else failures++;
  }
  return { rates, best };
}

export function fmt(ms: number): string {
  return Number.isFinite(ms) ? ms.toFixed(2) : 'miss';
}
