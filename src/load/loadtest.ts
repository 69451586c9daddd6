/**
 * `clipper-ts loadtest`: open-loop load against a server over HTTP (Open Inference Protocol or Clipper REST)
 * or against the programmatic API in this process; prints a table per rate, and writes JSON and a report.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runGeneratorProcess } from './fork-generator.js';
import { formatComparison, formatProgress, formatRunTable } from './format.js';
import type { HttpProtocol } from './http-target.js';
import { InputSource } from './input-source.js';
import { LOAD_RUN_FORMAT, machineInfo, readLoadRun, type LoadRun } from './load-run.js';
import { loadDefaults, resolveLoadSettings, runLoad, type LoadOutcome, type LoadProgress, type LoadSettings } from './load-runner.js';
import { parseRateSchedule } from './schedule.js';

export const loadtestHelp = `clipper-ts loadtest [flags]      open-loop load test; prints a table per rate

Target
  --target URL|api         a server's origin (default http://127.0.0.1:1337, where clipper-ts serve listens),
                           or "api": the programmatic API in this process (starts its own system)
  --protocol oip|oip-binary|predict   OIP: POST /v2/models/MODEL/infer (JSON, or oip-binary: the binary tensor data extension);
                           predict: Clipper REST POST /APP/predict (default predict)
  --model NAME             OIP model; with --target api the model to deploy (default mnist-mlp)
  --app NAME               Clipper REST application (default digits)
  --connections N          keep-alive HTTP connections (default 128)
  --replicas N             --target api: replicas (default 2)
  --cache-bytes N          --target api: the application's prediction cache size, 0 = off (default: on)

Load
  --rate N | --rates LIST  queries/s: 2000 | 1000,2000,4000 | 1000..20000x1.5 | 1000..10000+1000 (default ${loadDefaults.rates[0]})
  --arrivals fixed|poisson (default ${loadDefaults.arrivals})
  --duration S             seconds per rate (default ${loadDefaults.durationS})
  --warmup S               unrecorded seconds at the first rate (default ${loadDefaults.warmupS})
  --warmup-rate N          the warm-up's rate instead, queries/s (e.g. normal load before a step to overload)
  --slo-ms N               a rate passes when p99 <= this (default ${loadDefaults.sloMs})
  --inputs FILE            JSON rows ([[...], ...] or {"inputs": [...]}); default: the 2,000 held-out MNIST digits
  --repeat-share F         share of queries repeating a recent input, 0..1, to exercise the cache (default 0)
  --stop-after-misses N    stop after N rates in a row miss the SLO; 0 runs them all (default ${loadDefaults.stopAfterMisses})
  --retries N              measure a missed rate again up to N times (default ${loadDefaults.retries})
  --late-ms N              a send this late is late; over 1% late marks a rate invalid (default: half the SLO)
  --seed N                 Poisson and repeat draws (default ${loadDefaults.seed})

Output
  --json                   print the run as JSON on stdout instead of the table
  --out FILE               also save the run as JSON (for --compare)
  --report FILE            an HTML (.html) or SVG (.svg) report with latency-throughput and batch-size charts
  --label TEXT             the run's name in tables and reports
  --compare A.json B.json  print saved runs side by side (with --report, chart them together) and exit`;

function fail(message: string): never {
  throw new RangeError(message);
}

function number(flag: string, raw: string | undefined, min: number, integer = false): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    fail(`--${flag} must be ${integer ? 'an integer' : 'a number'} >= ${min}; got ${JSON.stringify(raw)}`);
  }
  return n;
}

function writeFile(file: string, text: string): void {
  writeFileSync(file, text);
  console.error(`wrote ${file}`);
}

async function writeReport(file: string, runs: LoadRun[]): Promise<void> {
  // Vega is large: loaded only when a report is asked for.
  const { renderReportHtml, renderReportSvg } = await import('./report.js');
  const ext = path.extname(file).toLowerCase();
  if (ext === '.svg') writeFile(file, await renderReportSvg(runs));
  else if (ext === '.html' || ext === '.htm') writeFile(file, await renderReportHtml(runs));
  else fail(`--report must name an .html or .svg file; got ${JSON.stringify(file)}`);
}

/** A progress line on stderr, rewritten in place, only when stderr is a terminal. */
function progressPrinter(): { update(p: LoadProgress): void; done(): void } {
  if (process.stderr.isTTY !== true) return { update: () => {}, done: () => {} };
  return {
    update: (p) => process.stderr.write(`\r\x1b[2K${formatProgress(p)}`),
    done: () => process.stderr.write('\r\x1b[2K'),
  };
}

/** Runs the command; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        target: { type: 'string' },
        protocol: { type: 'string' },
        model: { type: 'string' },
        app: { type: 'string' },
        connections: { type: 'string' },
        replicas: { type: 'string' },
        'cache-bytes': { type: 'string' },
        rate: { type: 'string' },
        rates: { type: 'string' },
        arrivals: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        'warmup-rate': { type: 'string' },
        'slo-ms': { type: 'string' },
        inputs: { type: 'string' },
        'repeat-share': { type: 'string' },
        'stop-after-misses': { type: 'string' },
        retries: { type: 'string' },
        'late-ms': { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        out: { type: 'string' },
        report: { type: 'string' },
        label: { type: 'string' },
        compare: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    console.error(`clipper-ts loadtest: ${(error as Error).message}\n\n${loadtestHelp}`);
    return 2;
  }
  if (values.help === true) {
    console.log(loadtestHelp);
    return 0;
  }
  try {
    if (values.compare === true) {
      if (positionals.length < 1) fail('--compare needs saved runs: --compare a.json b.json');
      const runs = positionals.map(readLoadRun);
      console.log(formatComparison(runs));
      if (values.report !== undefined) await writeReport(values.report, runs);
      return 0;
    }
    if (positionals.length > 0) fail(`unexpected argument ${JSON.stringify(positionals[0])} (files go after --compare)`);
    return await runCommand(values);
  } catch (error) {
    console.error(`clipper-ts loadtest: ${(error as Error).message}`);
    return 2;
  }
}

type Values = Record<string, string | boolean | undefined>;

async function runCommand(values: Values): Promise<number> {
  const str = (k: string): string | undefined => values[k] as string | undefined;
  if (str('rate') !== undefined && str('rates') !== undefined) fail('give --rate or --rates, not both');
  const schedule = str('rates') ?? str('rate');
  const arrivals = str('arrivals');
  if (arrivals !== undefined && arrivals !== 'fixed' && arrivals !== 'poisson') fail(`--arrivals must be fixed or poisson; got ${JSON.stringify(arrivals)}`);
  const protocol = (str('protocol') ?? 'predict') as HttpProtocol;
  if (protocol !== 'oip' && protocol !== 'oip-binary' && protocol !== 'predict') fail(`--protocol must be oip, oip-binary or predict; got ${JSON.stringify(protocol)}`);
  const repeatShare = number('repeat-share', str('repeat-share'), 0) ?? 0;
  if (repeatShare > 1) fail(`--repeat-share must be in [0, 1]; got ${repeatShare}`);
  const settings: LoadSettings = resolveLoadSettings({
    ...(schedule === undefined ? {} : { rates: parseRateSchedule(schedule) }),
    ...(arrivals === undefined ? {} : { arrivals }),
    durationS: number('duration', str('duration'), 0.001),
    warmupS: number('warmup', str('warmup'), 0),
    warmupRate: number('warmup-rate', str('warmup-rate'), 0.001),
    sloMs: number('slo-ms', str('slo-ms'), 0.001),
    stopAfterMisses: number('stop-after-misses', str('stop-after-misses'), 0, true),
    retries: number('retries', str('retries'), 0, true),
    lateThresholdMs: number('late-ms', str('late-ms'), 0),
    seed: number('seed', str('seed'), 0, true),
  } as Partial<LoadSettings>);
  const report = str('report');
  if (report !== undefined && !['.html', '.htm', '.svg'].includes(path.extname(report).toLowerCase())) {
    fail(`--report must name an .html or .svg file; got ${JSON.stringify(report)}`);
  }
  const targetArg = str('target') ?? 'http://127.0.0.1:1337';
  const inputsFile = str('inputs');
  const seed = settings.seed;
  const startedAt = new Date().toISOString();
  const progress = progressPrinter();
  const stopper = new AbortController();
  const onSigint = (): void => {
    console.error('\nclipper-ts loadtest: stopping after the queries in flight (Ctrl-C again to quit)');
    stopper.abort();
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  let outcome: LoadOutcome;
  let target: string;
  const targetSettings: Record<string, unknown> = {};
  try {
    if (targetArg === 'api') {
      const inputs = inputsFile === undefined ? InputSource.mnist({ repeatShare, seed }) : InputSource.fromFile(inputsFile, { repeatShare, seed });
      const cacheBytes = number('cache-bytes', str('cache-bytes'), 0, true);
      const replicas = number('replicas', str('replicas'), 1, true) ?? 2;
      Object.assign(targetSettings, { target: 'api', model: str('model') ?? 'mnist-mlp', replicas, cacheBytes: cacheBytes ?? 'default' });
      const { ApiTarget } = await import('./api-target.js');
      const api = await ApiTarget.start(
        { model: str('model') ?? 'mnist-mlp', replicas, sloMs: settings.sloMs, ...(cacheBytes === undefined ? {} : { cacheMaxBytes: cacheBytes }) },
        inputs,
      );
      target = api.description;
      try {
        outcome = await runLoad(api, settings, { onProgress: progress.update, shouldStop: () => stopper.signal.aborted });
      } finally {
        await api.close();
      }
    } else {
      let url: URL;
      try {
        url = new URL(targetArg);
      } catch {
        fail(`--target must be an http:// URL or "api"; got ${JSON.stringify(targetArg)}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`--target must be an http:// URL or "api"; got ${JSON.stringify(targetArg)}`);
      const http = {
        url: url.origin,
        protocol,
        ...(str('model') === undefined ? {} : { model: str('model') }),
        ...(str('app') === undefined ? {} : { app: str('app') }),
        connections: number('connections', str('connections'), 1, true) ?? 128,
      };
      Object.assign(targetSettings, http);
      ({ outcome, target } = await runGeneratorProcess(
        { http, inputs: { ...(inputsFile === undefined ? {} : { file: path.resolve(inputsFile) }), repeatShare, seed }, load: settings },
        { onProgress: progress.update, signal: stopper.signal },
      ));
    }
  } finally {
    progress.done();
    process.removeListener('SIGINT', onSigint);
  }
  const run: LoadRun = {
    format: LOAD_RUN_FORMAT,
    label: str('label') ?? `${targetArg === 'api' ? 'api' : protocol} ${startedAt.slice(0, 19)}`,
    startedAt,
    target,
    settings: { ...settings, ...targetSettings, inputs: inputsFile ?? 'mnist held-out digits', repeatShare },
    machine: machineInfo(),
    ...outcome,
  };
  const json = `${JSON.stringify(run, null, 2)}\n`;
  if (values.json === true) process.stdout.write(json);
  else console.log(formatRunTable(run));
  if (str('out') !== undefined) writeFile(str('out') as string, json);
  if (str('report') !== undefined) await writeReport(str('report') as string, [run]);
  return 0;
}
