/**
 * Runs autocannon (an independent load tester) in a process of its own, for `bench:agreement`: told the
 * endpoint, body, rate and duration over IPC; reports autocannon's own summary and, from its per-response
 * events, the latencies at microsecond resolution (autocannon's histogram keeps whole milliseconds).
 */
import autocannon from 'autocannon';
import { LatencyRecorder } from '../../src/load/latency-recorder.js';

export interface AutocannonJob {
  url: string;
  body: string;
  rate: number;
  durationS: number;
  connections: number;
}

export interface AutocannonReport {
  /** Responses per second over the run (autocannon's `requests.average`). */
  requestsPerSecond: number;
  total: number;
  errors: number;
  non2xx: number;
  /** autocannon's own percentiles, ms (whole milliseconds). */
  own: { p50: number; p99: number };
  /** The same responses' times from autocannon's `response` events, ms. */
  fine: { p50: number; p90: number; p99: number; mean: number };
}

process.once('message', (job: AutocannonJob) => {
  const recorder = new LatencyRecorder();
  const instance = autocannon(
    {
      url: job.url,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: job.body,
      connections: job.connections,
      overallRate: job.rate,
      duration: job.durationS,
    },
    (error, result) => {
      if (error !== null && error !== undefined) {
        process.send?.({ error: String(error) }, () => process.exit(1));
        return;
      }
      const s = recorder.summary();
      const report: AutocannonReport = {
        requestsPerSecond: result.requests.average,
        total: result.requests.total,
        errors: result.errors,
        non2xx: result.non2xx,
        own: { p50: result.latency.p50, p99: result.latency.p99 },
        fine: { p50: s.p50, p90: s.p90, p99: s.p99, mean: s.mean },
      };
      process.send?.(report, () => process.exit(0));
    },
  );
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode === 200) recorder.record(responseTime);
  });
});
