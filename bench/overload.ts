/**
 * `npm run bench:overload [-- --json] [-- --seconds 60] [-- --capacity N]`: three times capacity for a minute
 * (issue 6). clipper-ts serves mnist-mlp (2 replicas, 20 ms SLO, cache off) over HTTP; the load generator runs
 * in its own process, open loop. Reports, for the overload and for a normal rate right after it: what was
 * admitted and refused, how many admitted queries met the SLO, how fast refusals came back, and the server
 * process's resident memory before, during and after.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Clipper } from '../src/index.js';
import { serve } from '../src/http/serve.js';
import { resolveServeSettings } from '../src/http/settings.js';
import { runGeneratorProcess } from '../src/load/fork-generator.js';
import type { HttpTargetOptions } from '../src/load/http-target.js';
import type { RateResult } from '../src/load/load-run.js';
import { resolveLoadSettings } from '../src/load/load-runner.js';
import { modelsDir } from '../src/paths.js';
import { httpSweep } from './lib/http-load.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const option = (name: string): number | undefined => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : undefined);
const seconds = option('--seconds') ?? 60;
const log = (line: string): void => {
  if (!json) console.log(line);
};
const SLO_MS = 20;
const MODEL = 'mnist-mlp';
const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024);

/** The server's own count of answered queries, and of those it answered within the SLO (its latency histogram). */
async function serverSideLatency(url: string): Promise<{ answered: number; withinSlo: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const bucket = (le: string): number => {
    const m = new RegExp(`clipper_request_duration_seconds_bucket\\{le="${le.replace('+', '\\+')}",app="bench",protocol="clipper"\\} (\\d+)`).exec(text);
    return m === null ? 0 : Number(m[1]);
  };
  return { answered: bucket('+Inf'), withinSlo: bucket(String(SLO_MS / 1000)) };
}

async function fixedRate(http: HttpTargetOptions, rate: number, durationS: number): Promise<RateResult> {
  const load = resolveLoadSettings({ rates: [rate], durationS, warmupS: 0, sloMs: SLO_MS, stopAfterMisses: 0, retries: 0, sampleIntervalMs: 1000 });
  const { outcome } = await runGeneratorProcess({ http, inputs: { repeatShare: 0, seed: 7 }, load });
  return outcome.rates[0] as RateResult;
}

interface Described {
  offered: number;
  sent: number;
  admitted: number;
  refused: number;
  errors: number;
  admittedWithinSlo: number | null;
  defaults: number;
  goodputPerS: number;
  p50Ms: number | null;
  late: number;
}

function describe(r: RateResult): Described {
  const admitted = r.ok + r.defaults;
  return {
    offered: r.offered,
    sent: r.sent,
    admitted,
    refused: r.refused,
    errors: r.errors,
    // Model answers within the SLO, over the queries the server admitted.
    admittedWithinSlo: admitted === 0 ? null : Math.min(1, (r.goodput * r.durationS) / admitted),
    defaults: r.defaults,
    goodputPerS: Math.round(r.goodput),
    p50Ms: r.latency.p50,
    late: r.late,
  };
}

async function main(): Promise<void> {
  const clipper = await Clipper.start();
  await clipper.registerApp({ name: 'bench', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: SLO_MS, cacheMaxBytes: 0 });
  await clipper.deployModel({ name: MODEL, version: '1', path: path.join(modelsDir, MODEL, '1', 'model.onnx'), replicas: 2 });
  await clipper.linkModel('bench', MODEL);
  const server = await serve({ ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent']), bundled: false }, { clipper });
  const http: HttpTargetOptions = { url: server.queryUrl, protocol: 'predict', app: 'bench', model: MODEL };
  try {
    let capacity = option('--capacity');
    if (capacity === undefined) {
      const sweep = await httpSweep('capacity (highest rate with p99 <= 20 ms)', http, { sloMs: SLO_MS, durationS: 2, warmupS: 1, rates: [1000, 2000, 3000, 4500, 6000, 8000, 10_000, 13_000, 16_000, 20_000] }, log);
      capacity = sweep.best?.achieved ?? 1000;
    }
    const overloadRate = Math.round(3 * capacity);
    const before = process.memoryUsage().rss;
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(process.memoryUsage().rss), 1000);
    log(`\ncapacity ${capacity} queries/s; offering ${overloadRate}/s (3x) for ${seconds} s ...`);
    const started = performance.now();
    const serverBefore = await serverSideLatency(server.queryUrl);
    const overload = await fixedRate(http, overloadRate, seconds);
    clearInterval(sampler);
    const serverAfter = await serverSideLatency(server.queryUrl);
    const serverAnswered = serverAfter.answered - serverBefore.answered;
    const serverWithin = serverAfter.withinSlo - serverBefore.withinSlo;
    const overloadS = (performance.now() - started) / 1000;
    const afterLoad = process.memoryUsage().rss;
    // Requests the generator sent late are still arriving when its schedule ends; give the server a moment to
    // finish them, and say how long it took to settle.
    const settleStarted = performance.now();
    let last = -1;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const now = (await serverSideLatency(server.queryUrl)).answered;
      if (now === last || performance.now() - settleStarted > 30_000) break;
      last = now;
    }
    const settleS = (performance.now() - settleStarted) / 1000;
    log(`the server settled ${settleS.toFixed(1)} s after the overload; then half capacity for 10 s, to see it back to normal ...`);
    const recovery = await fixedRate(http, Math.round(capacity / 2), 10);
    const result = {
      sloMs: SLO_MS,
      capacity,
      overloadSeconds: Math.round(overloadS),
      settleSeconds: Math.round(settleS * 10) / 10,
      overload: { ...describe(overload), serverSide: { answered: serverAnswered, withinSlo: serverAnswered === 0 ? null : serverWithin / serverAnswered } },
      recovery: { ...describe(recovery), p99Ms: recovery.latency.p99, meetsSlo: recovery.meetsSlo },
      rssMb: { before: mb(before), duringMax: mb(Math.max(before, ...samples)), duringLast: mb(samples.at(-1) ?? before), after: mb(afterLoad) },
    };
    if (json) {
      console.log(JSON.stringify(result, null, 2));
      return;
    }
    const o = result.overload;
    const r = result.recovery;
    console.log(`\noverload at 3x capacity (${overloadRate}/s for ${result.overloadSeconds} s, SLO ${SLO_MS} ms):`);
    console.log(`  sent ${o.sent}, admitted ${o.admitted}, refused (503) ${o.refused}, errors ${o.errors}, default answers ${o.defaults}`);
    console.log(`  admitted queries answered by the model within the SLO, timed from their scheduled send: ${((o.admittedWithinSlo ?? 0) * 100).toFixed(1)}%  (goodput ${o.goodputPerS}/s)`);
    console.log(
      `  the same, timed inside the server (arrival to answer, its /metrics histogram): ${o.serverSide.withinSlo === null ? '-' : (o.serverSide.withinSlo * 100).toFixed(1)}% of ${o.serverSide.answered}`,
    );
    console.log(`  the generator sent late (its own process could not keep up on the shared cores): ${o.late} sends; the run took ${result.overloadSeconds} s`);
    console.log(`  RSS: before ${result.rssMb.before} MB, peak during ${result.rssMb.duringMax} MB, after ${result.rssMb.after} MB`);
    console.log(`back to half capacity: p99 ${r.p99Ms === null ? 'miss' : r.p99Ms.toFixed(2)} ms, ${r.meetsSlo ? 'within' : 'NOT within'} the SLO; refused ${r.refused}`);
  } finally {
    await server.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
