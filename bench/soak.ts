/**
 * `npm run bench:soak -- [--json] [--minutes N] [--share 0.25] [--capacity N] [--cache-mb 64]`: hours of steady
 * service in minutes (issue 15). clipper-ts serves mnist-mlp (2 replicas, 20 ms SLO, the prediction cache on,
 * bounded at --cache-mb) over HTTP, in this process; the open-loop load generator runs in its own process and
 * sends distinct real digits (every input new, so every query is a miss and the cache fills and turns over) at a
 * steady share of the measured capacity. Reports, over time: the server's resident memory, V8 heap and
 * ArrayBuffers; its GC pauses (p50, p99, max, from perf_hooks GC entries); event-loop delay; refusals and default
 * answers per minute; the cache's entries, the bytes they count for and the bytes it holds; and the memory the
 * process keeps once garbage is collected, before and after.
 *
 * Targets: RSS <= baseline + 1.2 x the cache bound + 50 MB; GC pause p99 <= 10 ms; no refusals and no default
 * answers after the first 10 s.
 */
import path from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Clipper } from '../src/index.js';
import { serve } from '../src/http/serve.js';
import { resolveServeSettings } from '../src/http/settings.js';
import { runGeneratorProcess } from '../src/load/fork-generator.js';
import type { HttpTargetOptions } from '../src/load/http-target.js';
import { resolveLoadSettings } from '../src/load/load-runner.js';
import { modelsDir } from '../src/paths.js';
import { httpSweep } from './lib/http-load.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const option = (name: string): number | undefined => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : undefined);
const minutes = option('--minutes') ?? 3;
const share = option('--share') ?? 0.25;
const cacheBytes = Math.round((option('--cache-mb') ?? 64) * 1024 * 1024);
const log = (line: string): void => {
  if (!json) console.log(line);
};
const SLO_MS = 20;
const MODEL = 'mnist-mlp';
const WARMUP_S = 10;
const MB = 1024 * 1024;
const mb = (bytes: number): number => Math.round((bytes / MB) * 10) / 10;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap plus ArrayBuffers this process keeps once garbage is gone (full GCs until two readings agree). */
async function settledBytes(): Promise<number> {
  let last = -Infinity;
  for (let i = 0; i < 30; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const m = process.memoryUsage();
    const now = m.heapUsed + m.arrayBuffers;
    if (Math.abs(now - last) < 256 * 1024) return now;
    last = now;
  }
  return last;
}

function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

const round2 = (x: number | null): number | null => (x === null ? null : Math.round(x * 100) / 100);

async function main(): Promise<void> {
  const clipper = await Clipper.start();
  await clipper.registerApp({ name: 'soak', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: SLO_MS, cacheMaxBytes: cacheBytes });
  await clipper.deployModel({ name: MODEL, version: '1', path: path.join(modelsDir, MODEL, '1', 'model.onnx'), replicas: 2 });
  await clipper.linkModel('soak', MODEL);
  const server = await serve({ ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent']), bundled: false }, { clipper });
  const http: HttpTargetOptions = { url: server.queryUrl, protocol: 'predict', app: 'soak', model: MODEL };
  try {
    let capacity = option('--capacity');
    if (capacity === undefined) {
      const sweep = await httpSweep('capacity (highest rate with p99 <= 20 ms)', http, { sloMs: SLO_MS, durationS: 2, warmupS: 1, rates: [1000, 2000, 3000, 4500, 6000, 8000, 10_000, 13_000] }, log);
      capacity = Math.round(sweep.best?.achieved ?? 1000);
    }
    const rate = Math.round(share * capacity);
    const baselineRss = process.memoryUsage().rss;
    const baselineKept = await settledBytes();

    // What the server process does over the run, sampled here (the generator is another process).
    const pauses: number[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) pauses.push(entry.duration);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const started = performance.now();
    const samples: { t: number; rssMb: number; heapMb: number; arrayBuffersMb: number; cacheEntries: number; cacheCountedMb: number; cacheHeldMb: number; defaults: number }[] = [];
    const sample = (): void => {
      const m = process.memoryUsage();
      const app = clipper.getApp('soak');
      samples.push({
        t: Math.round((performance.now() - started) / 1000),
        rssMb: mb(m.rss),
        heapMb: mb(m.heapUsed),
        arrayBuffersMb: mb(m.arrayBuffers),
        cacheEntries: app.cache.entries,
        cacheCountedMb: mb(app.cache.bytes),
        cacheHeldMb: mb(app.cache.heldBytes),
        defaults: app.counters.defaults,
      });
    };
    sample();
    const sampler = setInterval(sample, 10_000);
    const perMinute: { minute: number; gcP99Ms: number | null; gcMaxMs: number | null; loopP99Ms: number; loopMaxMs: number }[] = [];
    let pauseMark = 0;
    const minuteTimer = setInterval(() => {
      const window = pauses.slice(pauseMark).sort((a, b) => a - b);
      pauseMark = pauses.length;
      perMinute.push({ minute: perMinute.length + 1, gcP99Ms: round2(quantile(window, 0.99)), gcMaxMs: round2(window.at(-1) ?? null), loopP99Ms: round2(loop.percentile(99) / 1e6) as number, loopMaxMs: round2(loop.max / 1e6) as number });
      loop.reset();
    }, 60_000);

    log(`\ncapacity ${capacity} queries/s; offering ${rate}/s (${Math.round(share * 100)}%) of distinct digits for ${minutes} min; cache bound ${mb(cacheBytes)} MB ...`);
    const load = resolveLoadSettings({ rates: [rate], durationS: minutes * 60, warmupS: 0, sloMs: SLO_MS, stopAfterMisses: 0, retries: 0, sampleIntervalMs: 1000 });
    const { outcome } = await runGeneratorProcess({ http, inputs: { repeatShare: 0, seed: 11 }, load });
    clearInterval(sampler);
    clearInterval(minuteTimer);
    sample();
    gcObserver.disconnect();
    loop.disable();
    const run = outcome.rates[0];
    if (run === undefined) throw new Error('the generator reported no rate');
    const keptAfter = await settledBytes();
    const app = clipper.getApp('soak');

    // Refusals, defaults and errors per minute from the generator's 1 s timeline; defaults alone from the server.
    const failuresPerMinute = Array.from({ length: minutes }, (_, i) => outcome.timeline.filter((p) => p.t >= i * 60 && p.t < (i + 1) * 60).reduce((n, p) => n + p.errors * 1, 0));
    const failuresAfterWarmup = outcome.timeline.filter((p) => p.t >= WARMUP_S).reduce((n, p) => n + p.errors, 0);
    const defaultsAt = (t: number): number => samples.find((s) => s.t >= t)?.defaults ?? 0;
    const sorted = [...pauses].sort((a, b) => a - b);
    const maxRss = Math.max(...samples.map((s) => s.rssMb));
    const rssLimitMb = mb(baselineRss + 1.2 * cacheBytes + 50 * MB);
    const gcP99 = quantile(sorted, 0.99);
    const result = {
      command: `npm run bench:soak -- ${args.join(' ')}`.trim(),
      sloMs: SLO_MS,
      capacity,
      rate,
      minutes,
      cacheBoundMb: mb(cacheBytes),
      sent: run.sent,
      answered: run.ok,
      refused: run.refused,
      defaults: run.defaults,
      errors: run.errors,
      late: run.late,
      generatorCpu: run.generatorCpu ?? null,
      // Each entry is an interval's refusals + default answers + errors, as the client saw them.
      failuresPerMinute,
      failuresAfterFirst10s: failuresAfterWarmup,
      serverDefaultsAfterFirst10s: app.counters.defaults - defaultsAt(WARMUP_S),
      gcPausesMs: { count: sorted.length, p50: round2(quantile(sorted, 0.5)), p99: round2(gcP99), max: round2(sorted.at(-1) ?? null) },
      perMinute,
      memory: samples,
      cache: { entries: app.cache.entries, countedMb: mb(app.cache.bytes), heldMb: mb(app.cache.heldBytes), hits: app.cache.hits, misses: app.cache.misses },
      // What the process keeps once garbage is collected (V8 heap + ArrayBuffers), before the soak and after.
      keptMb: { before: mb(baselineKept), after: mb(keptAfter), growth: mb(keptAfter - baselineKept) },
      rssMb: { baseline: mb(baselineRss), max: maxRss, limit: rssLimitMb },
      targets: {
        rss: maxRss <= rssLimitMb,
        gcPauseP99: gcP99 !== null && gcP99 <= 10,
        noFailuresAfter10s: failuresAfterWarmup === 0,
      },
    };
    if (json) {
      console.log(JSON.stringify(result, null, 2));
      return;
    }
    console.log(`\nsoak: ${rate}/s of distinct digits for ${minutes} min (capacity ${capacity}/s), cache bound ${result.cacheBoundMb} MB`);
    console.log(`  sent ${run.sent}, model answers ${run.ok}, refused ${run.refused}, default answers ${run.defaults}, errors ${run.errors}; late sends ${run.late}`);
    console.log(`  refusals + defaults + errors per minute: ${failuresPerMinute.join(', ')}; after the first 10 s: ${failuresAfterWarmup}`);
    console.log(`  GC pauses: ${result.gcPausesMs.count}, p50 ${result.gcPausesMs.p50} ms, p99 ${result.gcPausesMs.p99} ms, max ${result.gcPausesMs.max} ms`);
    for (const m of perMinute) console.log(`  minute ${m.minute}: GC p99 ${m.gcP99Ms} ms (max ${m.gcMaxMs}), event-loop delay p99 ${m.loopP99Ms} ms (max ${m.loopMaxMs})`);
    for (const s of samples) console.log(`  t=${s.t}s rss ${s.rssMb} MB, heap ${s.heapMb} MB, arrayBuffers ${s.arrayBuffersMb} MB, cache ${s.cacheEntries} entries, counted ${s.cacheCountedMb} MB, held ${s.cacheHeldMb} MB`);
    console.log(`  kept after GC: before ${result.keptMb.before} MB, after ${result.keptMb.after} MB (growth ${result.keptMb.growth} MB; the cache holds ${result.cache.heldMb} MB)`);
    console.log(`  RSS: baseline ${result.rssMb.baseline} MB, max ${result.rssMb.max} MB, limit ${result.rssMb.limit} MB`);
    console.log(`  targets: ${JSON.stringify(result.targets)}`);
  } finally {
    await server.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
