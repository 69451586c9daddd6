import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { formatComparison, formatRunTable } from '../../../src/load/format.js';
import { readLoadRun, type LoadRun } from '../../../src/load/load-run.js';
import { renderReportHtml, renderReportSvg, reportSpec } from '../../../src/load/report.js';
import { projectRoot } from '../../../src/paths.js';

// Runs stored by `clipper-ts loadtest --out`: the in-process API with 30% repeated inputs, and OIP over HTTP.
const fixture = (name: string): string => path.join(projectRoot, 'test', 'fixtures', name);
const api = readLoadRun(fixture('loadtest-run.json'));
const oip = readLoadRun(fixture('loadtest-run-oip.json'));

const ariaLabels = (svg: string): string[] => [...svg.matchAll(/aria-label="([^"]*)"/g)].map((m) => m[1] as string);

test('the SVG report draws every rate on the latency-throughput chart, one series per percentile, and the SLO', async (t) => {
  const svg = await renderReportSvg([api]);
  t.true(svg.startsWith('<svg'));
  const labels = ariaLabels(svg);
  for (const rate of api.rates) {
    for (const [key, name] of [['p50', 'p50'], ['p90', 'p90'], ['p99', 'p99'], ['p999', 'p99.9']] as const) {
      const ms = rate.latency[key];
      if (ms === null) continue;
      t.true(
        labels.some((l) => l.includes(`series: ${name}; offered: ${rate.offered}`) && l.includes(`latency (ms, log scale): ${Math.round(ms * 1000) / 1000}`)),
        `${name} at ${rate.offered}/s`,
      );
    }
  }
  t.true(svg.includes(`SLO ${String(api.settings.sloMs)} ms`));
  for (const title of ['Latency vs achieved throughput', 'Mean batch size over time', 'Throughput over time', 'p99 over time']) t.true(svg.includes(title), title);
});

test('batch size over time is drawn from the run timeline', async (t) => {
  const spec = reportSpec([api]) as unknown as { vconcat: { data?: { values: { meanBatch: number | null }[] } }[] };
  const batch = spec.vconcat[1]?.data?.values ?? [];
  t.is(batch.length, api.timeline.filter((p) => p.meanBatch !== null).length);
  t.true(batch.length > 0, 'the fixture has batch sizes');
  const svg = await renderReportSvg([api]);
  const points = ariaLabels(svg).filter((l) => l.startsWith('time (s):') && l.includes('mean batch size:'));
  t.true(points.length >= batch.length, `${points.length} batch-size points drawn for ${batch.length} samples`);
});

test('the HTML report holds each run table and the charts inline, with no scripts', async (t) => {
  const html = await renderReportHtml([api, oip]);
  t.true(html.startsWith('<!doctype html>'));
  t.false(html.includes('<script'), 'renders offline, without JavaScript');
  t.true(html.includes('<svg'));
  t.is((html.match(/<table>/g) ?? []).length, 2);
  t.is((html.match(/<tr class=/g) ?? []).length, api.rates.length + oip.rates.length);
  t.true(html.includes(api.label.replace('%', '%')));
  t.true(html.includes(oip.target));
  // Two runs share the latency chart: p50 and p99 of each.
  const labels = ariaLabels(html);
  t.true(labels.some((l) => l.includes(`series: ${oip.label} p99`)));
  t.true(labels.some((l) => l.includes(`series: ${api.label} p50`)));
});

test('the table shows one row per rate with its verdict', (t) => {
  const table = formatRunTable(oip);
  const lines = table.split('\n');
  t.regex(lines[1] ?? '', /offered\/s\s+achieved\/s\s+p50 ms\s+p90 ms\s+p99 ms\s+p99\.9 ms\s+SLO met\s+defaults\s+refused\s+errors\s+late\s+batch\s+cache hits/);
  t.is(lines.length, 2 + oip.rates.length + 1 + (oip.rates.some((r) => r.errors > 0) ? 1 : 0));
  for (const [i, r] of oip.rates.entries()) {
    const row = lines[2 + i] ?? '';
    t.true(row.startsWith(Math.round(r.offered).toLocaleString('en-US')), row);
    t.regex(row, r.valid ? (r.meetsSlo ? /ok$/ : /p99 over SLO/) : /INVALID/);
  }
});

test('--compare puts runs side by side, rate by rate, with each best and its ratio to the first', (t) => {
  const good = (achieved: number): LoadRun => ({
    ...oip,
    label: `run ${achieved}`,
    rates: oip.rates.map((r) => ({ ...r, meetsSlo: true, valid: true, achieved: r.offered, latency: { ...r.latency, p99: 5 } })),
    best: { offered: achieved, achieved, p99: 5 },
  });
  const text = formatComparison([good(1000), good(3000)]);
  t.regex(text, /\[1\] run 1000: .* best under SLO 20 ms: 1,000 queries\/s, p99 5\.00 ms/);
  t.regex(text, /\[2\] run 3000: .* best under SLO 20 ms: 3,000 queries\/s, p99 5\.00 ms\s+\(3\.00x \[1\]\)/);
  t.regex(text, /offered\/s\s+\[1\] achieved\/s\s+\[1\] p50\s+\[1\] p99\s+\[2\] achieved\/s/);
  const rows = text.split('\n').filter((l) => /^\d/.test(l));
  t.is(rows.length, new Set(oip.rates.map((r) => r.offered)).size);
  const mixed = formatComparison([api, oip]);
  for (const rate of new Set([...api.rates, ...oip.rates].map((r) => r.offered))) t.true(mixed.includes(rate.toLocaleString('en-US')));
});

test('a file that is not a stored run is refused with its name', (t) => {
  t.throws(() => readLoadRun(path.join(projectRoot, 'package.json')), { message: /package\.json is not a load-test run/ });
  t.throws(() => readLoadRun(fixture('does-not-exist.json')), { message: /does-not-exist\.json could not be read/ });
  t.is(JSON.parse(readFileSync(fixture('loadtest-run.json'), 'utf8')).format, 'clipper-ts-loadtest/1');
});
