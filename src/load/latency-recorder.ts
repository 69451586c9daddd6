import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** Percentiles of a set of latencies, milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/**
 * Records latencies into Node's HDR histogram (node:perf_hooks), in microseconds. Answers that missed
 * (refused, or the default output) can be recorded as misses: they count as slower than any real answer,
 * so a percentile that lands on them reads Infinity rather than flattering the server.
 */
export class LatencyRecorder {
  readonly #histogram: RecordableHistogram = createHistogram({ lowest: 1, highest: 3_600_000_000, figures: 3 });
  #misses = 0;

  record(ms: number): void {
    this.#histogram.record(Math.max(1, Math.round(ms * 1000)));
  }

  recordMiss(): void {
    this.#misses++;
  }

  get count(): number {
    return this.#histogram.count + this.#misses;
  }

  get misses(): number {
    return this.#misses;
  }

  /** The q-th percentile (0-100) over answers and misses, ms; Infinity when it falls among the misses. */
  percentile(q: number): number {
    const total = this.count;
    if (total === 0) return Number.NaN;
    const answered = this.#histogram.count;
    const rank = (q / 100) * total;
    if (rank > answered) return Number.POSITIVE_INFINITY;
    const within = Math.min(100, (rank / Math.max(1, answered)) * 100);
    return this.#histogram.percentile(Math.max(within, 1e-9)) / 1000;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: this.#misses > 0 ? Number.POSITIVE_INFINITY : this.#histogram.max / 1000,
      mean: this.#histogram.count === 0 ? Number.NaN : this.#histogram.mean / 1000,
    };
  }
}
