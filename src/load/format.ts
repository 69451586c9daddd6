import type { LoadProgress } from './load-runner.js';
import type { LoadRun, RateResult } from './load-run.js';

/** Milliseconds for a table: `miss` where the percentile fell among misses. */
export function formatMs(ms: number | null): string {
  return ms === null || !Number.isFinite(ms) ? 'miss' : ms >= 100 ? ms.toFixed(0) : ms.toFixed(2);
}

/** Queries per second, rounded, with thousands separators. */
export function formatRate(rate: number): string {
  return Math.round(rate).toLocaleString('en-US');
}

const percent = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);

/** Left-aligns the first column and right-aligns the rest, with two spaces between columns. */
export function alignTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ').trimEnd()).join('\n');
}

const HEADER = ['offered/s', 'achieved/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'SLO met', 'defaults', 'refused', 'errors', 'late', 'batch', 'cache hits', ''];

function rateRow(r: RateResult): string[] {
  const verdict = !r.valid ? 'INVALID (generator late)' : r.meetsSlo ? 'ok' : 'p99 over SLO';
  return [
    formatRate(r.offered),
    formatRate(r.achieved),
    formatMs(r.latency.p50),
    formatMs(r.latency.p90),
    formatMs(r.latency.p99),
    formatMs(r.latency.p999),
    percent(r.sloAttainment),
    String(r.defaults),
    String(r.refused),
    String(r.errors),
    String(r.late),
    r.meanBatch === null ? '-' : r.meanBatch.toFixed(1),
    percent(r.cacheHitRatio),
    verdict + (r.attempts > 1 ? ` (attempt ${r.attempts})` : ''),
  ];
}

/** The per-rate table of one run, with its best rate under the SLO. */
export function formatRunTable(run: LoadRun): string {
  const lines = [
    `${run.label}: ${run.target}, SLO ${String(run.settings.sloMs)} ms, ${String(run.settings.arrivals)} arrivals, ${String(run.settings.durationS)} s per rate`,
    alignTable([HEADER, ...run.rates.map(rateRow)]),
    run.best === null
      ? 'no rate met the SLO'
      : `highest throughput with p99 <= ${String(run.settings.sloMs)} ms: ${formatRate(run.best.achieved)} queries/s (offered ${formatRate(run.best.offered)}/s, p99 ${formatMs(run.best.p99)} ms)`,
  ];
  const errorKinds = new Map<string, number>();
  for (const r of run.rates) for (const [kind, n] of Object.entries(r.errorKinds ?? {})) errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + n);
  if (errorKinds.size > 0) lines.push(`errors: ${[...errorKinds].map(([k, n]) => `${k} x${n}`).join(', ')}`);
  return lines.join('\n');
}

/**
 * Runs side by side: for every offered rate any run tried, each run's achieved rate, p50 and p99, then each
 * run's best rate under the SLO and its ratio to the first run's.
 */
export function formatComparison(runs: readonly LoadRun[]): string {
  const offered = [...new Set(runs.flatMap((r) => r.rates.map((x) => x.offered)))].sort((a, b) => a - b);
  const header = ['offered/s', ...runs.flatMap((r, i) => [`[${i + 1}] achieved/s`, `[${i + 1}] p50`, `[${i + 1}] p99`])];
  const rows = offered.map((rate) => [
    formatRate(rate),
    ...runs.flatMap((run) => {
      const r = run.rates.find((x) => x.offered === rate);
      if (r === undefined) return ['-', '-', '-'];
      const mark = !r.valid ? '!' : r.meetsSlo ? '' : '*';
      return [formatRate(r.achieved), formatMs(r.latency.p50), formatMs(r.latency.p99) + mark];
    }),
  ]);
  const first = runs[0]?.best?.achieved;
  const bests = runs.map((run, i) => {
    const b = run.best;
    const ratio = b === null || first === undefined || first === 0 ? '' : i === 0 ? '' : `  (${(b.achieved / first).toFixed(2)}x [1])`;
    return `[${i + 1}] ${run.label}: ${run.target} (${run.startedAt}) best under SLO ${String(run.settings.sloMs)} ms: ${b === null ? 'none' : `${formatRate(b.achieved)} queries/s, p99 ${formatMs(b.p99)} ms`}${ratio}`;
  });
  return [...bests, '', alignTable([header, ...rows]), '', '* p99 over the SLO   ! invalid: the generator fell behind'].join('\n');
}

/** The one-line progress report, rewritten in place on a terminal. */
export function formatProgress(p: LoadProgress): string {
  const width = 20;
  const done = Math.max(0, Math.min(width, Math.round((p.elapsedS / p.durationS) * width)));
  const bar = `[${'#'.repeat(done)}${'.'.repeat(width - done)}]`;
  const phase = p.phase === 'warmup' ? 'warm-up' : `rate ${p.step}/${p.steps}`;
  return `${phase} ${formatRate(p.rate)}/s ${bar} ${p.elapsedS.toFixed(1)}/${p.durationS}s  p99 ${Number.isNaN(p.p99) ? '-' : formatMs(p.p99)} ms  errors ${p.errors}  sent ${p.sent}`;
}
