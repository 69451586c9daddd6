/**
 * `npm run bench:compare [-- --quick]`: every way of serving mnist-mlp over HTTP, in one invocation and one
 * report, against the upper bound; writes bench/RESULTS.md (date, machine, commit, ratios) and
 * bench/results/compare.svg (latency-throughput curves of every run).
 *
 *   upper bound       onnxruntime called directly in this process, batches of 64, no HTTP (rows/s)
 *   naive server      fastify + onnxruntime-node, one session.run per request on the main thread
 *   Piscina, no batch fastify + a Piscina pool of 2 worker threads, one row per task
 *   fixed batch N     clipper-ts, 2 replicas, every batch takes up to N queued queries (N = 8, 32, 128)
 *   AIMD              clipper-ts, 2 replicas, AIMD batching (the default)
 *
 * Served variants are measured alike: OIP infer, open-loop load at rising rates from the load generator's own
 * process, the highest achieved throughput whose p99 stays within 20 ms.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Clipper } from '../src/index.js';
import { serve } from '../src/http/serve.js';
import { resolveServeSettings } from '../src/http/settings.js';
import { formatMs, formatRate } from '../src/load/format.js';
import type { LoadRun } from '../src/load/load-run.js';
import type { BatchingOptions } from '../src/index.js';
import { modelsDir, projectRoot } from '../src/paths.js';
import { httpSweep } from './lib/http-load.js';
import { measureJsonParse } from './lib/json-parse-bench.js';
import { measureWakeupNoise } from './lib/noise.js';
import { startServerProcess } from './lib/server-process.js';
import { upperBound } from './lib/upper-bound.js';

const quick = process.argv.includes('--quick');
const SLO_MS = 20;
const MODEL = 'mnist-mlp';
const REPLICAS = 2;
const UPPER_BOUND_BATCH = 64;

function geometric(from: number, to: number, factor: number): number[] {
  const rates: number[] = [];
  for (let r = from; r <= to; r *= factor) rates.push(Math.round(r));
  return rates;
}
const load = { sloMs: SLO_MS, durationS: quick ? 1.5 : 2.5, warmupS: 1, rates: geometric(400, 80_000, quick ? 1.5 : 1.25) };

interface Row {
  name: string;
  /** Queries (or, for the upper bound, rows) per second. */
  throughput: number;
  p99: number | null;
  meanBatch: number | null;
  run?: LoadRun;
}

function fromRun(name: string, run: LoadRun): Row {
  const at = run.rates.find((r) => r.offered === run.best?.offered);
  return { name, throughput: run.best?.achieved ?? 0, p99: run.best?.p99 ?? null, meanBatch: at?.meanBatch ?? null, run: { ...run, label: name } };
}

async function baseline(module: string, name: string): Promise<Row> {
  const server = await startServerProcess(module, [MODEL]);
  try {
    return fromRun(name, await httpSweep(name, { url: server.url, protocol: 'oip', model: MODEL }, load, console.log));
  } finally {
    await server.stop();
  }
}

async function clipperVariants(): Promise<Row[]> {
  const clipper = await Clipper.start();
  const server = await serve({ ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent']), bundled: false }, { clipper });
  const variants: [string, string, BatchingOptions][] = [
    ...[8, 32, 128].map((n): [string, string, BatchingOptions] => [`clipper-ts fixed batch ${n}`, `mlp-fixed-${n}`, { mode: 'fixed', maxBatchSize: n }]),
    ['clipper-ts AIMD', 'mlp-aimd', { mode: 'aimd' }],
  ];
  const rows: Row[] = [];
  try {
    for (const [name, model, batching] of variants) {
      // One variant deployed at a time, so idle replicas of the others take no CPU.
      await clipper.deployModel({ name: model, version: '1', path: path.join(modelsDir, MODEL, '1', 'model.onnx'), replicas: REPLICAS, batching });
      try {
        rows.push(fromRun(name, await httpSweep(name, { url: server.queryUrl, protocol: 'oip', model }, load, console.log)));
      } finally {
        await clipper.removeModel(model);
      }
    }
  } finally {
    await server.close();
  }
  return rows;
}

function gitCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: projectRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: projectRoot, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha} (with uncommitted changes)` : sha;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const started = new Date();
  // Other work on the machine shows here: above the core count, something else competed for the cores.
  const loadAtStart = os.loadavg();
  const noise = await measureWakeupNoise();
  console.log(`machine noise floor: worker round trip after 1 ms idle p50 ${noise.p50.toFixed(2)} ms, p99 ${noise.p99.toFixed(2)} ms, max ${noise.max.toFixed(2)} ms`);
  const parse = await measureJsonParse();
  const seconds = quick ? 1 : 3;
  const bound = Math.max(await upperBound(MODEL, UPPER_BOUND_BATCH, REPLICAS, 1, seconds), await upperBound(MODEL, UPPER_BOUND_BATCH, 1, REPLICAS, seconds));
  console.log(`upper bound: ${formatRate(bound)} rows/s (batches of ${UPPER_BOUND_BATCH}, onnxruntime direct, ${REPLICAS} threads)`);
  const naive = await baseline('naive-server', 'naive server (session.run per request)');
  const piscina = await baseline('piscina-server', 'Piscina, no batching (2 threads)');
  const served = await clipperVariants();
  const rows: Row[] = [{ name: `upper bound (onnxruntime direct, batch ${UPPER_BOUND_BATCH})`, throughput: bound, p99: null, meanBatch: UPPER_BOUND_BATCH }, naive, piscina, ...served];

  const runs = rows.flatMap((r) => (r.run === undefined ? [] : [r.run]));
  const resultsDir = path.join(projectRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const { renderReportSvg } = await import('../src/load/report.js');
  writeFileSync(path.join(resultsDir, 'compare.svg'), await renderReportSvg(runs));
  const runFiles = runs.map((run, i) => {
    const file = `compare-${i + 1}-${run.label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}.json`;
    writeFileSync(path.join(resultsDir, file), `${JSON.stringify(run, null, 2)}\n`);
    return file;
  });

  const cpus = os.cpus();
  const table = [
    '| variant | throughput at p99 <= 20 ms | p99 ms | mean batch | vs naive server | vs upper bound |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r, i) => {
      const unit = i === 0 ? 'rows/s' : 'queries/s';
      const vsNaive = naive.throughput > 0 ? `${(r.throughput / naive.throughput).toFixed(2)}x` : '-';
      return `| ${r.name} | ${formatRate(r.throughput)} ${unit} | ${i === 0 ? '-' : formatMs(r.p99)} | ${r.meanBatch === null ? '-' : r.meanBatch.toFixed(1)} | ${vsNaive} | ${(r.throughput / bound).toFixed(3)} |`;
    }),
  ];
  const generatorCpu = runs.map((run) => {
    const at = run.rates.find((r) => r.offered === run.best?.offered);
    return `${run.label}: ${at === undefined ? '-' : `${((at.generatorCpu ?? 0) * 100).toFixed(0)}%`}`;
  });
  const markdown = `# Benchmark results

Regenerated by \`npm run bench:compare\`${quick ? ' (--quick)' : ''}; do not edit by hand.

- date: ${started.toISOString()}
- machine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}
- commit: ${gitCommit()}
- model: ${MODEL} (784-256-256-10 MLP), ${REPLICAS} replicas / threads where the variant has them, SLO ${SLO_MS} ms
- load average (1, 5, 15 min) at start ${loadAtStart.map((l) => l.toFixed(2)).join(', ')}, at end ${os.loadavg().map((l) => l.toFixed(2)).join(', ')} (above ${cpus.length}, other work competed for the cores)
- noise floor (worker round trip after 1 ms idle): p50 ${noise.p50.toFixed(2)} ms, p99 ${noise.p99.toFixed(2)} ms, max ${noise.max.toFixed(2)} ms
- parsing one ${parse.bodyBytes}-byte 784-float JSON body: JSON.parse ${parse.jsonParse.toFixed(1)} µs, fastify's parser ${parse.fastifyParser.toFixed(1)} µs

Served variants: OIP infer over HTTP on loopback, open-loop load (even spacing) at rising rates from the load
generator's own process, ${load.durationS} s per rate, each query a distinct held-out MNIST digit; the figure is the highest
achieved throughput whose p99 (refusals and errors counted as misses) stayed within ${SLO_MS} ms with the generator on
schedule. A missed rate was measured once more before it counted. The upper bound is onnxruntime called
directly in-process on batches of ${UPPER_BOUND_BATCH}: no HTTP, no JSON.

${table.join('\n')}

Generator CPU at each best rate (the generator shares the machine's ${cpus.length} cores with the server): ${generatorCpu.join('; ')}.

Latency-throughput curves of every run: [results/compare.svg](results/compare.svg). The runs, as
\`clipper-ts loadtest --json\` writes them (\`clipper-ts loadtest --compare bench/results/compare-*.json\` puts them
side by side): ${runFiles.map((f) => `[${f}](results/${f})`).join(', ')}.
`;
  writeFileSync(path.join(projectRoot, 'bench', 'RESULTS.md'), markdown);
  console.log(`\n${table.join('\n')}\n\nwrote bench/RESULTS.md, bench/results/compare.svg and the runs in bench/results/`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
