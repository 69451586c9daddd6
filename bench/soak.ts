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
 *
 * Where failures come from: the refusals and default answers after the first 10 s by reason (`failureReasons`:
 * the edge's lag guard, a replica's admission too-late or queue-full, defaults late after admission or not, and
 * queries expired unrun in a queue), and each 100 ms in which one happened (`incidents`) with the GC pauses that
 * started in or just before it, the longest event-loop delay in it, the deepest replica queue, and how long this
 * process's main thread, all its threads and the generator's main thread waited for a CPU (Linux schedstat).
 * `runQueueWaitMs` and `machine` (load average, CPU pressure, scheduler autogroup) say how much of the two cores
 * the soak had: on a shared machine with autogroup scheduling each session gets an equal share whatever its
 * nice, so a soak meant to measure the server alone runs in a session of its own with a raised priority (README).
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Clipper, loadMnist } from '../src/index.js';
import { tuneGarbageCollector } from '../src/http/gc-tuning.js';
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
const LOOP_RESOLUTION_MS = 10;
const FINE_RESOLUTION_MS = 2;
/** An event-loop delay histogram's reading (ns) as lateness beyond its timer's resolution, ms (0 when it read nothing). */
const late = (ns: number, resolutionMs: number): number => (Number.isFinite(ns) && ns > 0 ? (round2(Math.max(0, ns / 1e6 - resolutionMs)) as number) : 0);

/** The machine's CPU pressure (Linux PSI, /proc/pressure/cpu): the share of time some runnable thread waited for a CPU. */
function cpuPressure(): { avg10: number; avg60: number } | null {
  try {
    const some = readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0] ?? '';
    return { avg10: Number(/avg10=([\d.]+)/.exec(some)?.[1]), avg60: Number(/avg60=([\d.]+)/.exec(some)?.[1]) };
  } catch {
    return null;
  }
}

/** This process's scheduler autogroup and its nice (Linux with autogroup: CPU is shared fairly between sessions, whatever a process's own nice). */
function autogroup(): string | null {
  try {
    return readFileSync('/proc/self/autogroup', 'utf8').trim();
  } catch {
    return null;
  }
}

/** Nanoseconds a thread has waited on a run queue for a CPU (Linux schedstat), 0 where it cannot be read. */
function runQueueWaitNs(pid: number, tid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
  } catch {
    return 0;
  }
}

/** Run-queue waits of a process: its main thread's, and all its threads' summed (ms). */
function processWaitMs(pid: number): { main: number; all: number } {
  let all = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) all += runQueueWaitNs(pid, Number(tid));
  } catch {
    // not Linux, or the process is gone
  }
  return { main: runQueueWaitNs(pid, pid) / 1e6, all: all / 1e6 };
}

/** Threads runnable on the whole machine now (procs_running of /proc/stat); -1 where it cannot be read. */
function procsRunning(): number {
  try {
    return Number(/procs_running (\d+)/.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? -1);
  } catch {
    return -1;
  }
}

/** The pid of this process's newest child (the generator), from /proc; undefined where it cannot be read. */
function childPid(): number | undefined {
  try {
    const pids = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return pids.length === 0 ? undefined : Number(pids.at(-1));
  } catch {
    return undefined;
  }
}

interface Counts {
  lag: number;
  tooLate: number;
  queueFull: number;
  expired: number;
  lateDefaults: number;
  otherDefaults: number;
  routerRefused: number;
  outstanding: number;
}
type Slice = Omit<Counts, 'outstanding'> & {
  t: number;
  loopMaxMs: number;
  outstanding: number;
  /** Run-queue waits in the slice (ms): this process's main thread, all its threads, the generator's main thread. */
  mainWaitMs: number;
  threadsWaitMs: number;
  generatorWaitMs: number;
  /** Threads runnable on the machine at the slice's end. */
  running: number;
};
/** perf_hooks' GC kinds (NODE_PERFORMANCE_GC_*). */
const GC_KINDS: Record<number, string> = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' };
/**
 * What a client sees fail: refused at the edge (lag guard) or by the application (`routerRefused`: every replica
 * it could use refused), or answered by default, late after admission or not. A replica's own refusals
 * (`tooLate`, `queueFull`) and queries `expired` in its queue are the causes behind them: a query one replica
 * refuses may still be taken by the other.
 */
const FAILURE_KEYS = ['lag', 'routerRefused', 'lateDefaults', 'otherDefaults'] as const;
const CAUSE_KEYS = ['tooLate', 'queueFull', 'expired'] as const;

/** Refusals and default answers after `fromMs` as clients saw them, and the replicas' causes, summed over the run's 100 ms slices. */
function failureReasons(slices: readonly Slice[], fromMs: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of [...FAILURE_KEYS, ...CAUSE_KEYS]) out[k] = slices.filter((s) => s.t > fromMs).reduce((n, s) => n + s[k], 0);
  return out;
}

/**
 * Each 100 ms slice after `fromMs` in which a query was refused or answered by default, with the GC pauses that
 * started in it or the 100 ms before it (start relative to the slice's end, duration, kind), the longest
 * event-loop delay in it and the deepest replica queue at its end.
 */
function incidents(slices: readonly Slice[], gcEntries: readonly { at: number; ms: number; kind: number }[], started: number, fromMs: number): unknown[] {
  return slices
    .filter((s) => s.t > fromMs && FAILURE_KEYS.some((k) => s[k] > 0))
    .map((s) => {
      const end = started + s.t;
      const gcs = gcEntries.filter((g) => g.at >= end - 200 && g.at < end).map((g) => `${Math.round(g.at - end)}:${round2(g.ms)}ms:${g.kind}`);
      const failed = Object.fromEntries([...FAILURE_KEYS, ...CAUSE_KEYS].filter((k) => s[k] > 0).map((k) => [k, s[k]]));
      return { t: s.t, ...failed, loopMaxMs: s.loopMaxMs, outstanding: s.outstanding, waitMs: [s.mainWaitMs, s.threadsWaitMs, s.generatorWaitMs], running: s.running, gcs };
    });
}

async function main(): Promise<void> {
  // As `clipper-ts serve` does (src/http/gc-tuning.ts): the soak's server is this process.
  const heapGrowingPercent = tuneGarbageCollector();
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
    // The digits the generator sends are loaded here (runGeneratorProcess hands them over): before the baseline,
    // so that what the soak adds is the server's own.
    loadMnist();
    // The baseline once garbage is collected: read before the forced GCs, it counted what loading the digits
    // left behind (~95 MB more on 2026-11-30), and the limit with it.
    const baselineKept = await settledBytes();
    const baselineRss = process.memoryUsage().rss;

    // What the server process does over the run, sampled here (the generator is another process).
    const pauses: number[] = [];
    // Every GC pause with when it started and its kind, to line failures up with them.
    const gcEntries: { at: number; ms: number; kind: number }[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        pauses.push(entry.duration);
        gcEntries.push({ at: entry.startTime, ms: entry.duration, kind: (entry as { detail?: { kind?: number } }).detail?.kind ?? 0 });
      }
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    // monitorEventLoopDelay records the whole interval between its timer's ticks: a loop never late reads as the
    // resolution itself. What is reported here is the lateness beyond it.
    const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    loop.enable();
    const machineBefore = { loadAverage: os.loadavg().map((x) => round2(x)), cpuPressure: cpuPressure(), autogroup: autogroup() };
    const started = performance.now();
    // Every 100 ms: what failed in it and why (refusals by reason, defaults late or not, queries expired unrun),
    // the longest event-loop delay in it and the replicas' deepest queue: where each failure came from.
    const fine = monitorEventLoopDelay({ resolution: FINE_RESOLUTION_MS });
    fine.enable();
    const counts = (): Counts => {
      const c: Counts = { lag: server.metrics.edgeRefusals['event-loop-lag'], tooLate: 0, queueFull: 0, expired: 0, lateDefaults: 0, otherDefaults: 0, routerRefused: 0, outstanding: 0 };
      for (const m of clipper.getModels()) {
        for (const v of m.versions) {
          for (const r of v.replicas) {
            c.tooLate += r.counters.refused - r.counters.refusedQueueFull - r.counters.refusedTooLarge;
            c.queueFull += r.counters.refusedQueueFull;
            c.expired += r.counters.expired;
            c.outstanding = Math.max(c.outstanding, r.outstanding);
          }
        }
      }
      const a = clipper.getApp('soak').counters;
      c.lateDefaults = a.lateDefaults;
      c.otherDefaults = a.defaults - a.lateDefaults;
      c.routerRefused = a.refused;
      return c;
    };
    let lastCounts = counts();
    let generator: number | undefined;
    let lastWait = processWaitMs(process.pid);
    let lastGeneratorWait = 0;
    const slices: Slice[] = [];
    const slicer = setInterval(() => {
      const now = counts();
      const wait = processWaitMs(process.pid);
      if (generator === undefined) {
        generator = childPid();
        if (generator !== undefined) lastGeneratorWait = processWaitMs(generator).main;
      }
      const generatorWait = generator === undefined ? 0 : processWaitMs(generator).main;
      const d = {
        t: Math.round(performance.now() - started),
        loopMaxMs: late(fine.max, FINE_RESOLUTION_MS),
        outstanding: now.outstanding,
        mainWaitMs: round2(wait.main - lastWait.main) as number,
        threadsWaitMs: round2(wait.all - lastWait.all) as number,
        generatorWaitMs: round2(Math.max(0, generatorWait - lastGeneratorWait)) as number,
        running: procsRunning(),
      } as Slice;
      lastWait = wait;
      lastGeneratorWait = generatorWait;
      for (const k of ['lag', 'tooLate', 'queueFull', 'expired', 'lateDefaults', 'otherDefaults', 'routerRefused'] as const) d[k] = now[k] - lastCounts[k];
      lastCounts = now;
      fine.reset();
      slices.push(d);
    }, 100);
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
      perMinute.push({ minute: perMinute.length + 1, gcP99Ms: round2(quantile(window, 0.99)), gcMaxMs: round2(window.at(-1) ?? null), loopP99Ms: late(loop.percentile(99), LOOP_RESOLUTION_MS), loopMaxMs: late(loop.max, LOOP_RESOLUTION_MS) });
      loop.reset();
    }, 60_000);

    log(`\ncapacity ${capacity} queries/s; offering ${rate}/s (${Math.round(share * 100)}%) of distinct digits for ${minutes} min; cache bound ${mb(cacheBytes)} MB ...`);
    const load = resolveLoadSettings({ rates: [rate], durationS: minutes * 60, warmupS: 0, sloMs: SLO_MS, stopAfterMisses: 0, retries: 0, sampleIntervalMs: 1000 });
    const { outcome } = await runGeneratorProcess({ http, inputs: { repeatShare: 0, seed: 11 }, load });
    clearInterval(sampler);
    clearInterval(minuteTimer);
    clearInterval(slicer);
    fine.disable();
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
      // How busy the machine was: load average and CPU pressure before the soak and after it (a shared machine's
      // other work takes the cores the server's threads wait for: see runQueueWaitMs).
      machine: { before: machineBefore, after: { loadAverage: os.loadavg().map((x) => round2(x)), cpuPressure: cpuPressure() } },
      sloMs: SLO_MS,
      // V8's heap growing factor as the server set it (null: left to V8 or to node's own flag).
      heapGrowingPercent: heapGrowingPercent ?? null,
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
      gcByKind: Object.fromEntries(
        [...new Set(gcEntries.map((g) => g.kind))].map((kind) => {
          const ms = gcEntries.filter((g) => g.kind === kind).map((g) => g.ms).sort((a, b) => a - b);
          return [GC_KINDS[kind] ?? String(kind), { count: ms.length, p50: round2(quantile(ms, 0.5)), p99: round2(quantile(ms, 0.99)), max: round2(ms.at(-1) ?? null) }];
        }),
      ),
      perMinute,
      failureReasons: failureReasons(slices, WARMUP_S * 1000),
      // Time spent runnable but waiting for a CPU, over the soak (ms): what the OS scheduler held back.
      runQueueWaitMs: {
        serverMain: round2(slices.reduce((n, s) => n + s.mainWaitMs, 0)),
        serverAllThreads: round2(slices.reduce((n, s) => n + s.threadsWaitMs, 0)),
        generatorMain: round2(slices.reduce((n, s) => n + s.generatorWaitMs, 0)),
        serverMainP99PerSliceMs: round2(quantile(slices.map((s) => s.mainWaitMs).sort((a, b) => a - b), 0.99)),
        meanRunnable: round2(slices.reduce((n, s) => n + s.running, 0) / Math.max(1, slices.length)),
      },
      incidents: incidents(slices, gcEntries, started, WARMUP_S * 1000),
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
    console.log(`  GC pauses by kind: ${JSON.stringify(result.gcByKind)}`);
    for (const m of perMinute) console.log(`  minute ${m.minute}: GC p99 ${m.gcP99Ms} ms (max ${m.gcMaxMs}), event-loop delay beyond the 10 ms timer p99 ${m.loopP99Ms} ms (max ${m.loopMaxMs})`);
    console.log(`  after the first 10 s, by reason: ${JSON.stringify(result.failureReasons)}`);
    console.log(`  waited for a CPU (ms): ${JSON.stringify(result.runQueueWaitMs)}; machine ${JSON.stringify(result.machine)}`);
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
