import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { formatMs, formatRate } from './format.js';
import type { LoadRun } from './load-run.js';

const PERCENTILES = [
  ['p50', 'p50'],
  ['p90', 'p90'],
  ['p99', 'p99'],
  ['p999', 'p99.9'],
] as const;

/** Runs with the same label would draw as one series: number the repeats. */
function labels(runs: readonly LoadRun[]): string[] {
  const seen = new Map<string, number>();
  return runs.map((run) => {
    const n = (seen.get(run.label) ?? 0) + 1;
    seen.set(run.label, n);
    return n === 1 ? run.label : `${run.label} (${n})`;
  });
}

/**
 * The report's charts as one Vega-Lite specification: latency percentiles against achieved throughput
 * (one point per rate, the SLO as a rule), and over time the server's mean batch size, throughput against
 * the offered rate, and p99. Several runs share the axes, one colour per run.
 */
export function reportSpec(runs: readonly LoadRun[]): TopLevelSpec {
  const names = labels(runs);
  const single = runs.length === 1;
  const latency = runs.flatMap((run, i) =>
    run.rates.flatMap((r) =>
      PERCENTILES.filter(([, name]) => single || name === 'p50' || name === 'p99').flatMap(([key, name]) => {
        const ms = r.latency[key];
        return ms === null || ms <= 0 ? [] : [{ run: names[i], percentile: name, series: single ? name : `${names[i]} ${name}`, achieved: r.achieved, offered: r.offered, latency: ms }];
      }),
    ),
  );
  const slo = Math.min(...runs.map((run) => Number(run.settings.sloMs ?? 20)));
  const timeline = runs.flatMap((run, i) => run.timeline.map((p) => ({ run: names[i], ...p })));
  // One run: its offered rate against what came back. Several: what came back, one line per run.
  const throughput = runs.flatMap((run, i) =>
    run.timeline.flatMap((p) => [
      ...(single ? [{ run: names[i], t: p.t, series: 'offered', rate: p.offered }] : []),
      { run: names[i], t: p.t, series: single ? 'achieved' : (names[i] as string), rate: p.throughput },
    ]),
  );
  const width = 640;
  const height = 260;
  const legend = { labelLimit: 420 };
  const seriesColor = { field: 'series', type: 'nominal', title: null, legend } as const;
  const runColor = { field: 'run', type: 'nominal', title: 'run', legend } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: single ? `Load test: ${names[0]}` : `Load tests: ${names.join(' vs ')}`, fontSize: 16 },
    config: { font: 'sans-serif', view: { stroke: '#ccc' } },
    // One run: each chart has its own series (percentiles, offered vs achieved), one legend each. Several: every
    // chart colours by run, so one scale keeps a run the same colour throughout.
    resolve: { scale: { color: single ? 'independent' : 'shared' } },
    vconcat: [
      {
        title: 'Latency vs achieved throughput (one point per offered rate)',
        width,
        height,
        layer: [
          {
            data: { name: 'latency', values: latency },
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'achieved', type: 'quantitative', title: 'achieved throughput (queries/s)' },
              y: { field: 'latency', type: 'quantitative', scale: { type: 'log' }, title: 'latency (ms, log scale)' },
              // One run: a colour per percentile. Several: a colour per run, p50 dashed and p99 solid.
              ...(single
                ? { color: seriesColor }
                : {
                    color: runColor,
                    strokeDash: { field: 'percentile', type: 'nominal', title: 'percentile', scale: { domain: ['p99', 'p50'], range: [[1, 0], [4, 3]] } },
                    detail: { field: 'series', type: 'nominal' },
                  }),
              order: { field: 'offered', type: 'quantitative' },
            },
          },
          {
            data: { values: [{ slo }] },
            mark: { type: 'rule', color: 'firebrick', strokeDash: [6, 4] },
            encoding: { y: { field: 'slo', type: 'quantitative' } },
          },
          {
            data: { values: [{ slo, text: `SLO ${slo} ms` }] },
            mark: { type: 'text', color: 'firebrick', align: 'left', dx: 4, dy: -6, x: 0 },
            encoding: { y: { field: 'slo', type: 'quantitative' }, text: { field: 'text' } },
          },
        ],
      },
      {
        title: 'Mean batch size over time (rows per batch on the server)',
        width,
        height: 180,
        data: { name: 'batch', values: timeline.filter((p) => p.meanBatch !== null) },
        mark: { type: 'line', point: { size: 12 }, interpolate: 'step-after' },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'time (s)' },
          y: { field: 'meanBatch', type: 'quantitative', title: 'mean batch size' },
          color: runColor,
        },
      },
      {
        title: 'Throughput over time: offered rate and answers per second',
        width,
        height: 180,
        data: { name: 'throughput', values: throughput },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'time (s)' },
          y: { field: 'rate', type: 'quantitative', title: 'queries/s' },
          color: seriesColor,
        },
      },
      {
        title: 'p99 over time (per sample interval)',
        width,
        height: 180,
        layer: [
          {
            data: { name: 'p99', values: timeline.filter((p) => p.p99 !== null && p.p99 > 0) },
            mark: { type: 'line', point: { size: 12 } },
            encoding: {
              x: { field: 't', type: 'quantitative', title: 'time (s)' },
              y: { field: 'p99', type: 'quantitative', scale: { type: 'log' }, title: 'p99 (ms, log scale)' },
              color: runColor,
            },
          },
          {
            data: { values: [{ slo }] },
            mark: { type: 'rule', color: 'firebrick', strokeDash: [6, 4] },
            encoding: { y: { field: 'slo', type: 'quantitative' } },
          },
        ],
      },
    ],
  } as TopLevelSpec;
}

/** The charts as a standalone SVG document, rendered here with Vega (no browser, nothing downloaded). */
export async function renderReportSvg(runs: readonly LoadRun[]): Promise<string> {
  const view = new vega.View(vega.parse(compile(reportSpec(runs)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** A self-contained HTML page: the per-rate table of every run and the charts as inline SVG (no scripts). */
export async function renderReportHtml(runs: readonly LoadRun[]): Promise<string> {
  const svg = await renderReportSvg(runs);
  const names = labels(runs);
  const pct = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
  const tables = runs
    .map((run, i) => {
      const rows = run.rates
        .map(
          (r) =>
            `<tr class="${r.meetsSlo && r.valid ? 'pass' : 'miss'}"><td>${formatRate(r.offered)}</td><td>${formatRate(r.achieved)}</td><td>${formatMs(r.latency.p50)}</td><td>${formatMs(r.latency.p90)}</td>` +
            `<td>${formatMs(r.latency.p99)}</td><td>${formatMs(r.latency.p999)}</td><td>${pct(r.sloAttainment)}</td><td>${r.defaults}</td><td>${r.refused}</td><td>${r.errors}</td>` +
            `<td>${r.late}${r.valid ? '' : ' (invalid)'}</td><td>${r.meanBatch === null ? '-' : r.meanBatch.toFixed(1)}</td><td>${pct(r.cacheHitRatio)}</td></tr>`,
        )
        .join('\n');
      const best = run.best === null ? 'no rate met the SLO' : `best: ${formatRate(run.best.achieved)} queries/s at p99 ${formatMs(run.best.p99)} ms`;
      return (
        `<h2>${escapeHtml(names[i] as string)}</h2><p>${escapeHtml(run.target)} &middot; ${escapeHtml(run.startedAt)} &middot; SLO ${escapeHtml(String(run.settings.sloMs))} ms &middot; ${escapeHtml(best)}</p>` +
        `<table><thead><tr><th>offered/s</th><th>achieved/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>SLO attained</th><th>defaults</th><th>refused</th><th>errors</th><th>late</th><th>mean batch</th><th>cache hits</th></tr></thead>\n<tbody>${rows}</tbody></table>`
      );
    })
    .join('\n');
  const machine = runs[0]?.machine;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clipper-ts load test: ${escapeHtml(names.join(' vs '))}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}tr.miss td{color:#a00}</style></head>
<body><h1>clipper-ts load test</h1>
<p>Open loop: queries sent on schedule whatever the answers, each timed from its scheduled send; defaults, refusals and errors count as slower than any answer. A rate is invalid when the generator fell behind its schedule.${machine === undefined ? '' : ` Machine: ${machine.cpus} x ${escapeHtml(machine.cpuModel)}, Node ${escapeHtml(machine.node)}, ${escapeHtml(machine.platform)}.`}</p>
${tables}
${svg}
</body></html>
`;
}
