/**
 * `npm run bench:cluster [-- --json] [-- --quick]`: what running models elsewhere costs and how it scales
 * (issue 11). Needs nats-server (a private one is started on a free port, JetStream in a temporary folder).
 *
 * 1. hopMicroseconds.{thread,process,nats}: the batch round trip over each kind of model worker, one query per
 *    batch, as the replica sees it: `batchMs - computeMs` of each finished batch (dispatch to answer, less the time
 *    inside the model), mnist-mlp, sequential queries, p50 and p99 in microseconds.
 * 2. scaling: 1, 2, 4 and 8 containers (`clipper-ts container`, real processes) of a time-bound model (each batch
 *    sleeps 5 ms: an accelerator on another machine, so the two cores here are not the limit), one query per
 *    batch (so that the frontend's two cores are not the limit either), open-loop load at rising rates; a
 *    container count's throughput is the highest rate answered with p99 within the SLO (50 ms) and under 1%
 *    defaults or refusals. `scaling.efficiency8` = throughput(8) / (8 x throughput(1)).
 * 3. twoFrontends: the same 8 containers shared by two frontends (two systems, each with a replica per
 *    container; queries alternate between them).
 * 4. aimdOverNoBatching.nats: Clipper's own setting, an RPC hop per batch. One container of the linear model
 *    (mnist-linear, ONNX), one replica in the frontend; the highest open-loop rate with p99 within 20 ms
 *    (defaults and refusals count as misses: bench/lib/sweep.ts, as bench:batching) with AIMD batching, and with
 *    batching mode 'none' (one query per batch, so one NATS round trip per query). Clipper measured 25.5x.
 *
 * `-- --only hop,scaling,twoFrontends,aimdOverNoBatching` runs some parts only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { Clipper, digit, loadMnist, type Answer, type BatchEvent, type BatchingMode } from '../src/index.js';
import { runOpenLoop } from '../src/load/open-loop.js';
import { LatencyRecorder } from '../src/load/latency-recorder.js';
import { modelsDir, projectRoot } from '../src/paths.js';
import { TestNatsServer } from '../test/helpers/nats-server.js';
import { sweepRates, type RateResult } from './lib/sweep.js';

const cli = path.join(projectRoot, 'dist', 'src', 'cli.js');
const fixtures = path.join(projectRoot, 'test', 'fixtures', 'models');
const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt === -1 ? undefined : new Set((process.argv[onlyAt + 1] ?? '').split(','));
const part = (name: string): boolean => only === undefined || only.has(name);
const log = (line: string): void => {
  if (!json) console.log(line);
};

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function container(url: string, model: string, version: string, repository: string, file: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'container', '--nats', url, '--model', model, '--version', version, '--models', repository, '--path', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`container exited with ${code}: ${out}`)));
  });
  child.stdout?.resume();
  return child;
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
}

/** One query per batch through one model version; the replica's view of each batch's hop. */
async function hop(kind: 'thread' | 'process' | 'nats', url: string, batches: number): Promise<{ p50: number; p99: number; batches: number }> {
  const clipper = await Clipper.start({ modelRepository: modelsDir });
  const children: ChildProcess[] = [];
  try {
    if (kind === 'nats') children.push(await container(url, 'mnist-mlp', '1', modelsDir, 'mnist-mlp/1/model.onnx'));
    await clipper.deployModel({
      name: 'mnist-mlp',
      version: '1',
      path: 'mnist-mlp/1/model.onnx',
      replicas: 1,
      ...(kind === 'process' ? { isolation: 'process' as const } : {}),
      ...(kind === 'nats' ? { remote: { nats: url } } : {}),
    });
    const { test: heldOut } = loadMnist();
    const hops: number[] = [];
    const off = clipper.onBatch((e: BatchEvent) => hops.push((e.batchMs - e.computeMs) * 1000));
    for (let i = 0; i < 50; i++) await clipper.infer('mnist-mlp', [digit(heldOut, i)]);
    hops.length = 0;
    for (let i = 0; i < batches; i++) await clipper.infer('mnist-mlp', [digit(heldOut, i % heldOut.count)]);
    off();
    const sorted = [...hops].sort((a, b) => a - b);
    return { p50: Math.round(percentile(sorted, 50)), p99: Math.round(percentile(sorted, 99)), batches: sorted.length };
  } finally {
    await clipper.stop();
    await stopAll(children);
  }
}

interface RateRun {
  rate: number;
  answered: number;
  p99: number;
  badShare: number;
  ok: boolean;
}

const SLO_MS = 50;
const MAX_BATCH = 1;
const SLEEP_MS = 5;

/**
 * Throughput of `n` containers of the sleeping model behind `frontends` frontends (each its own system with one
 * replica per container, queries alternating between them): the highest rate meeting the SLO, of rising rates.
 */
async function scale(url: string, n: number, seconds: number, frontends = 1): Promise<{ containers: number; frontends: number; throughput: number; runs: RateRun[] }> {
  const children: ChildProcess[] = [];
  const systems: Clipper[] = [];
  try {
    for (let i = 0; i < n; i++) children.push(await container(url, 'sleep', '1', fixtures, 'sleep/1/model.mjs'));
    for (let f = 0; f < frontends; f++) {
      const clipper = await Clipper.start({ modelRepository: fixtures });
      systems.push(clipper);
      await clipper.registerApp({ name: 'bench', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: SLO_MS, cacheMaxBytes: 0 });
      await clipper.deployModel({ name: 'sleep', version: '1', path: 'sleep/1/model.mjs', replicas: n, remote: { nats: url }, batching: { mode: 'aimd', maxBatchSize: MAX_BATCH } });
      await clipper.linkModel('bench', 'sleep');
    }
    const send = (i: number): Promise<Answer> => (systems[i % systems.length] as Clipper).predict('bench', [i, i]);
    // The containers' ceiling: MAX_BATCH rows per sleep each (no hop, no timer lateness); the search climbs past
    // it in case batches run faster, and stops at the first rate over the SLO.
    const ceiling = (n * MAX_BATCH * 1000) / SLEEP_MS;
    // Warm-up: connections, JIT, each replica's first batches.
    await runOpenLoop<Answer>({ rate: ceiling / 4, count: Math.round(ceiling / 8), send, onOutcome: () => {} });
    const runs: RateRun[] = [];
    let best = 0;
    for (const share of [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1]) {
      const rate = Math.round(ceiling * share);
      const recorder = new LatencyRecorder();
      let bad = 0;
      let answered = 0;
      const report = await runOpenLoop<Answer>({
        rate,
        count: Math.round(rate * seconds),
        send,
        onOutcome: (o) => {
          recorder.record(o.latencyMs);
          if (o.error !== undefined || o.result?.isDefault === true) bad++;
          else answered++;
        },
      });
      const p99 = recorder.percentile(99);
      const badShare = bad / report.sent;
      const ok = p99 <= SLO_MS && badShare < 0.01;
      const achieved = answered / (report.durationMs / 1000);
      runs.push({ rate, answered: Math.round(achieved), p99: Math.round(p99 * 10) / 10, badShare: Math.round(badShare * 1000) / 1000, ok });
      log(`  ${n} container(s), ${frontends} frontend(s), offered ${rate}/s: answered ${Math.round(achieved)}/s, p99 ${p99.toFixed(1)} ms, defaults+refused ${(badShare * 100).toFixed(1)}%${ok ? '' : '  (over the SLO)'}`);
      if (ok) best = Math.max(best, achieved);
      else break;
    }
    return { containers: n, frontends, throughput: Math.round(best), runs };
  } finally {
    await Promise.all(systems.map((c) => c.stop()));
    await stopAll(children);
  }
}

const AIMD_SLO_MS = 20;

/**
 * One container of mnist-linear over NATS, one replica: the highest open-loop rate within the SLO with `mode`
 * batching (bench/lib/sweep.ts: rising rates until two misses in a row).
 */
async function servedOverNats(url: string, mode: BatchingMode): Promise<{ best: RateResult | undefined; rates: RateResult[] }> {
  const children = [await container(url, 'mnist-linear', '1', modelsDir, 'mnist-linear/1/model.onnx')];
  const clipper = await Clipper.start({ modelRepository: modelsDir });
  try {
    await clipper.registerApp({ name: 'bench', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: AIMD_SLO_MS, cacheMaxBytes: 0 });
    await clipper.deployModel({ name: 'mnist-linear', version: '1', path: 'mnist-linear/1/model.onnx', replicas: 1, remote: { nats: url }, batching: { mode, maxBatchSize: 512 } });
    await clipper.linkModel('bench', 'mnist-linear');
    const { test: heldOut } = loadMnist();
    // Per rate: the batches the replica sent (size, round trip as the replica sees it, time inside the model).
    let batches: BatchEvent[] = [];
    clipper.onBatch((e) => batches.push(e));
    const batchStats = (): unknown => {
      const round = (ms: number): number => Math.round(ms * 100) / 100;
      const trips = batches.map((b) => b.batchMs).sort((a, b) => a - b);
      const stats = {
        limits: clipper.describeModel('mnist-linear').batching.limits,
        batches: batches.length,
        meanSize: round(batches.reduce((n, b) => n + b.size, 0) / Math.max(1, batches.length)),
        roundTripMs: { p50: round(percentile(trips, 50)), p99: round(percentile(trips, 99)) },
        meanComputeMs: round(batches.reduce((n, b) => n + b.computeMs, 0) / Math.max(1, batches.length)),
      };
      batches = [];
      return stats;
    };
    log(`mnist-linear in one container over NATS, ${mode === 'none' ? 'no batching' : mode}:`);
    return await sweepRates({
      sloMs: AIMD_SLO_MS,
      startRate: mode === 'none' ? 250 : 2000,
      growth: quick ? 1.6 : 1.25,
      maxRate: 400_000,
      seconds: quick ? 1 : 2,
      send: (i) => clipper.predict('bench', digit(heldOut, i % heldOut.count)).then((a) => ({ isDefault: a.isDefault, batchSize: a.timings?.batchSize ?? 1 })),
      inspect: () => {
        const stats = batchStats();
        log(`    batches: ${JSON.stringify(stats)}`);
        return stats;
      },
      log,
    });
  } finally {
    await clipper.stop();
    await stopAll(children);
  }
}

async function main(): Promise<void> {
  const nats = await TestNatsServer.start();
  try {
    const batches = quick ? 200 : 1000;
    log(`bench:cluster on ${os.cpus().length} cores; nats-server on ${nats.url}`);
    const result: Record<string, unknown> = { machine: { cores: os.cpus().length, node: process.version, loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100) } };
    if (part('hop')) {
      const hopMicroseconds = {
        thread: await hop('thread', nats.url, batches),
        process: await hop('process', nats.url, batches),
        nats: await hop('nats', nats.url, batches),
      };
      for (const [kind, h] of Object.entries(hopMicroseconds)) log(`hop ${kind}: p50 ${h.p50} µs, p99 ${h.p99} µs (${h.batches} batches)`);
      result.hopMicroseconds = hopMicroseconds;
    }
    const seconds = quick ? 1 : 3;
    if (part('scaling')) {
      const points = [];
      for (const n of [1, 2, 4, 8]) points.push(await scale(nats.url, n, seconds));
      const t1 = points[0]?.throughput ?? 0;
      const t8 = points[3]?.throughput ?? 0;
      const efficiency8 = t1 > 0 ? Math.round((t8 / (8 * t1)) * 1000) / 1000 : 0;
      log(`scaling: ${points.map((p) => `${p.containers}: ${p.throughput}/s`).join(', ')}; efficiency8 ${efficiency8} (target >= 0.9)`);
      result.scaling = { sloMs: SLO_MS, maxBatchSize: MAX_BATCH, sleepMs: SLEEP_MS, throughput: Object.fromEntries(points.map((p) => [p.containers, p.throughput])), efficiency8, runs: points };
    }
    if (part('twoFrontends')) {
      const shared = await scale(nats.url, 8, seconds, 2);
      log(`two frontends sharing 8 containers: ${shared.throughput}/s`);
      result.twoFrontends = { containers: 8, throughput: shared.throughput, runs: shared.runs };
    }
    if (part('aimdOverNoBatching')) {
      const aimd = await servedOverNats(nats.url, 'aimd');
      const none = await servedOverNats(nats.url, 'none');
      const aimdQps = aimd.best?.achieved ?? 0;
      const noneQps = none.best?.achieved ?? 0;
      const ratio = noneQps > 0 ? Math.round((aimdQps / noneQps) * 10) / 10 : Number.POSITIVE_INFINITY;
      log(`AIMD over no batching, one mnist-linear container over NATS: ${aimdQps}/s (p99 ${aimd.best?.latency.p99.toFixed(1)} ms, mean batch ${aimd.best?.meanBatch.toFixed(1)}) vs ${noneQps}/s (p99 ${none.best?.latency.p99.toFixed(1)} ms): ${ratio}x (target >= 25x)`);
      result.aimdOverNoBatching = {
        nats: ratio,
        model: 'mnist-linear',
        sloMs: AIMD_SLO_MS,
        aimd: { throughput: aimdQps, best: aimd.best, rates: aimd.rates },
        noBatching: { throughput: noneQps, best: none.best, rates: none.rates },
      };
    }
    if (json) console.log(JSON.stringify(result, null, 2));
  } finally {
    await nats.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
