/**
 * `npm run bench:stragglers [-- --json] [-- --quick]`: what deadlines and hedged requests do about stragglers
 * (Clipper, section 5.2.2 and its straggler figure: p99 17 -> 23 ms for ensembles of 1 -> 16 models when
 * answering at the deadline, 154 ms when waiting for all).
 *
 * Ensembles of 1, 2, 4, 8 and 16 members (deployments of the bundled models under different names, cycling CNN,
 * MLP, linear), each member's replica 0 stalling now and then (fault injection: a stalled batch is held back
 * `stallMs` before it runs). Open-loop Poisson load at a modest fixed rate, the cache off, every query a held-out
 * digit. Three modes side by side in one run:
 *   (a) wait for all: a very large SLO, so the router waits for every member;
 *   (b) deadline: SLO 20 ms; the ensemble answers at the SLO less its margin with the members that arrived;
 *   (c) deadline plus hedging: as (b), with two replicas per member, replica 0 stalling, replica 1 not, and hedged
 *       requests on (a query unanswered after the hedge delay also goes to the other replica).
 * Then the hedging target on one model with two replicas: fault-free and with one replica stalling and hedging
 * (three rounds, alternating), without hedging, with stalls twice as long, and with twice the hedge budget.
 * Latency is timed from each query's scheduled send time; a default answer counts as wrong for accuracy.
 */
import path from 'node:path';
import os from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Clipper } from '../src/index.js';
import { LatencyRecorder } from '../src/load/latency-recorder.js';
import { runOpenLoop } from '../src/load/open-loop.js';
import { digit, loadMnist } from '../src/data/mnist-data.js';
import { modelsDir } from '../src/paths.js';

export type StragglerMode = 'wait-for-all' | 'deadline' | 'deadline+hedging';

export interface StragglerConfig {
  members: number;
  mode: StragglerMode;
  /** Replicas per member: 1 for (a) and (b), 2 for (c). */
  replicas: number;
  /** The fault on each member's replica 0; none for a fault-free run. */
  stall: { probability: number; ms: number } | undefined;
  sloMs: number;
  /** Hedging options for runs with two replicas (the default delay is the model's observed p95). */
  hedging: { enabled: boolean; delayMs?: number; maxExtraLoad?: number };
  rate: number;
  count: number;
  /** Member i is `MEMBER_MODELS[i % 3]` unless given. */
  memberModels?: readonly string[];
  /** Sequential queries before the measurement (JIT, first batches, the hedge delay's first samples). Default 30. */
  warmup?: number;
}

export interface StragglerResult {
  config: StragglerConfig;
  latency: { p50: number; p99: number; max: number };
  /** Share of answers later than 20 ms (Clipper's SLO), the same yardstick for every mode. */
  over20ms: number;
  accuracy: number;
  /** Answers that were the application's default output (no member in time). */
  defaults: number;
  /** Answers given without every member (stragglers cut off at the deadline, or queries a member dropped). */
  incomplete: number;
  meanContributors: number;
  hedges: { sent: number; won: number; denied: number };
  /**
   * Batches held back at least 80% of the stall time: the injected stalls, counted from the main thread (batch
   * time minus the worker's compute time), so any other hold-up that long (a starved main thread) counts too.
   */
  heldBatches: number;
  /** Queries the replicas dropped before running them: their deadline had passed, or their batch-time estimate said it would. */
  dropped: number;
  achievedRate: number;
  lateSends: number;
  /** Process CPU time (main thread and every worker thread) over wall time, in cores. */
  cpuCores: number;
  /** How late the main thread's event loop ran (node:perf_hooks monitorEventLoopDelay), ms: the machine's noise. */
  loopDelay: { p99: number; max: number };
}

const MEMBER_MODELS = ['mnist-cnn', 'mnist-mlp', 'mnist-linear'] as const;

/** One configuration on a fresh system: deploy, warm up, run the open loop, stop. */
export async function runStragglers(config: StragglerConfig): Promise<StragglerResult> {
  const { test } = loadMnist();
  const models = config.memberModels ?? MEMBER_MODELS;
  const clipper = await Clipper.start();
  try {
    // No feedback here, so Exp4 weighs the members equally; cache off, so every query runs every member.
    await clipper.registerApp({ name: 'stragglers', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: config.sloMs, cacheMaxBytes: 0, policy: { kind: 'exp4' } });
    const names: string[] = [];
    for (let i = 0; i < config.members; i++) {
      const name = `member-${i}`;
      const model = models[i % models.length] as string;
      await clipper.deployModel({
        name,
        version: '1',
        path: path.join(modelsDir, model, '1', 'model.onnx'),
        replicas: config.replicas,
        // Each member's replica 0 stalls with its own dice, so stalls are independent across members.
        faults: config.stall === undefined ? {} : { 0: { stallProbability: config.stall.probability, stallMs: config.stall.ms, seed: 1000 + i } },
        hedging: config.hedging,
      });
      await clipper.linkModel('stragglers', name);
      names.push(name);
    }
    for (let i = 0; i < (config.warmup ?? 30); i++) await clipper.predict('stragglers', digit(test, test.count - 1 - i));
    const recorder = new LatencyRecorder();
    let over20 = 0;
    let correct = 0;
    let defaults = 0;
    let incomplete = 0;
    let contributors = 0;
    const before = names.map((n) => clipper.describeModel(n));
    let heldBatches = 0;
    const holdMs = 0.8 * (config.stall?.ms ?? Number.POSITIVE_INFINITY);
    const unsubscribe = clipper.onBatch((event) => {
      if (event.batchMs - event.computeMs >= holdMs) heldBatches++;
    });
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const report = await runOpenLoop({
      rate: config.rate,
      count: config.count,
      arrivals: 'poisson',
      seed: 7,
      send: (i) => clipper.predict('stragglers', digit(test, i % test.count)),
      onOutcome: (o) => {
        const answer = o.result;
        if (answer === undefined) {
          recorder.recordMiss();
          return;
        }
        recorder.record(o.latencyMs);
        if (o.latencyMs > 20) over20++;
        const label = test.labels[o.index % test.count];
        if (answer.isDefault) defaults++;
        else if (answer.output === label) correct++;
        if ((answer.missing?.length ?? 0) > 0 || answer.isDefault) incomplete++;
        contributors += answer.contributors?.length ?? 0;
      },
    });
    const wallMs = performance.now() - started;
    loop.disable();
    unsubscribe();
    const cpu = process.cpuUsage(cpuBefore);
    const after = names.map((n) => clipper.describeModel(n));
    const sum = (f: (k: number) => number): number => names.reduce((acc, _, k) => acc + f(k), 0);
    const replicaDelta = (k: number, field: 'expired' | 'refused'): number =>
      (after[k]?.replicas ?? []).reduce((acc, r, j) => acc + r.counters[field] - (before[k]?.replicas[j]?.counters[field] ?? 0), 0);
    const summary = recorder.summary();
    const n = report.sent;
    return {
      config,
      latency: { p50: summary.p50, p99: summary.p99, max: summary.max },
      over20ms: over20 / n,
      accuracy: correct / n,
      defaults,
      incomplete,
      meanContributors: contributors / n,
      hedges: {
        sent: sum((k) => (after[k]?.hedges.sent ?? 0) - (before[k]?.hedges.sent ?? 0)),
        won: sum((k) => (after[k]?.hedges.won ?? 0) - (before[k]?.hedges.won ?? 0)),
        denied: sum((k) => (after[k]?.hedges.denied ?? 0) - (before[k]?.hedges.denied ?? 0)),
      },
      heldBatches,
      dropped: sum((k) => replicaDelta(k, 'expired') + replicaDelta(k, 'refused')),
      achievedRate: report.achievedRate,
      lateSends: report.late,
      cpuCores: (cpu.user + cpu.system) / 1000 / wallMs,
      loopDelay: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    };
  } finally {
    await clipper.stop();
  }
}

interface Settings {
  rate: number;
  count: number;
  sizes: number[];
  /** Every member's replica 0, in the ensemble runs. */
  stall: { probability: number; ms: number };
  /** Replica 0 of the single model, in the hedging runs. */
  hedgeStall: { probability: number; ms: number };
}

function settingsFromArgs(argv: readonly string[]): Settings {
  const quick = argv.includes('--quick');
  const number = (flag: string, fallback: number): number => {
    const at = argv.indexOf(flag);
    if (at < 0) return fallback;
    const value = Number(argv[at + 1]);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${flag} must be a positive number; got ${argv[at + 1]}`);
    return value;
  };
  const sizesAt = argv.indexOf('--sizes');
  const sizes = sizesAt >= 0 ? (argv[sizesAt + 1] ?? '').split(',').map(Number) : quick ? [1, 4, 16] : [1, 2, 4, 8, 16];
  if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 32)) throw new Error(`--sizes must be a comma-separated list of integers in [1, 32]; got ${argv[sizesAt + 1]}`);
  const stallMs = number('--stall-ms', 50);
  return {
    rate: number('--rate', 100),
    count: number('--count', quick ? 300 : 600),
    sizes,
    stall: { probability: number('--stall-probability', 0.001), ms: stallMs },
    hedgeStall: { probability: number('--hedge-stall-probability', 0.05), ms: stallMs },
  };
}

const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : 'inf');

function line(r: StragglerResult): string {
  const c = r.config;
  return (
    `${String(c.members).padStart(7)}  ${c.mode.padEnd(17)} ${String(c.replicas).padStart(3)}  ${ms(r.latency.p50).padStart(6)}  ${ms(r.latency.p99).padStart(6)}  ${ms(r.latency.max).padStart(6)}` +
    `  ${(100 * r.over20ms).toFixed(1).padStart(6)}  ${r.accuracy.toFixed(4).padStart(8)}  ${String(r.incomplete).padStart(10)}  ${String(r.defaults).padStart(8)}  ${r.meanContributors.toFixed(2).padStart(9)}` +
    `  ${`${r.hedges.sent}/${r.hedges.won}/${r.hedges.denied}`.padStart(12)}  ${String(r.heldBatches).padStart(5)}  ${String(r.dropped).padStart(7)}` +
    `  ${`${ms(r.loopDelay.p99)}/${ms(r.loopDelay.max)}`.padStart(11)}  ${r.cpuCores.toFixed(2).padStart(5)}`
  );
}

const HEADER =
  'members  mode              rep  p50 ms  p99 ms  max ms  >20ms%  accuracy  incomplete  defaults  members/q  hedges s/w/d  held  dropped  loop p99/max  cores';

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const s = settingsFromArgs(process.argv);
  const log = (text: string): void => {
    if (!json) console.log(text);
  };
  const started = performance.now();
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  log(`${os.cpus().length} cores, load average ${load} at the start; open-loop Poisson ${s.rate} queries/s, ${s.count} queries per run, cache off`);
  log(`\nensembles: every member's replica 0 stalls ${(100 * s.stall.probability).toFixed(2)}% of its batches for ${s.stall.ms} ms; (a) SLO 10 s, (b) and (c) SLO 20 ms`);
  log(HEADER);
  const ensembles: StragglerResult[] = [];
  for (const members of s.sizes) {
    for (const mode of ['wait-for-all', 'deadline', 'deadline+hedging'] as const) {
      const result = await runStragglers({
        members,
        mode,
        replicas: mode === 'deadline+hedging' ? 2 : 1,
        stall: s.stall,
        sloMs: mode === 'wait-for-all' ? 10_000 : 20,
        hedging: { enabled: mode === 'deadline+hedging' },
        rate: s.rate,
        count: s.count,
      });
      ensembles.push(result);
      log(line(result));
    }
  }
  log(`\none model (mnist-cnn), two replicas, SLO 20 ms; replica 0 stalls ${(100 * s.hedgeStall.probability).toFixed(1)}% of its batches; hedge delay: the observed p95, budget 5%`);
  log(HEADER);
  const single = async (stall: Settings['stall'] | undefined, hedging: boolean, label: string, maxExtraLoad?: number): Promise<StragglerResult> => {
    const r = await runStragglers({
      members: 1,
      mode: hedging ? 'deadline+hedging' : 'deadline',
      replicas: 2,
      stall,
      sloMs: 20,
      hedging: maxExtraLoad === undefined ? { enabled: hedging } : { enabled: hedging, maxExtraLoad },
      rate: s.rate,
      count: s.count,
      memberModels: ['mnist-cnn'],
    });
    log(`${line(r)}  ${label}`);
    return r;
  };
  // Fault-free and hedged runs alternate, three rounds: their p99s are a few milliseconds, where a noisy spell
  // on the machine moves the ratio; the median round is the result.
  const faultFree: StragglerResult[] = [];
  const hedged: StragglerResult[] = [];
  for (let round = 0; round < 3; round++) {
    faultFree.push(await single(undefined, true, 'fault-free'));
    hedged.push(await single(s.hedgeStall, true, `stalls ${s.hedgeStall.ms} ms, hedging`));
  }
  const unhedged = await single(s.hedgeStall, false, `stalls ${s.hedgeStall.ms} ms, no hedging`);
  const longStall = { probability: s.hedgeStall.probability, ms: 2 * s.hedgeStall.ms };
  const longHedged = await single(longStall, true, `stalls ${longStall.ms} ms, hedging`);
  // The default delay (p95) makes about 5% of queries due for a hedge before any fault, which is the whole
  // default budget (5%); stalled queries then compete with ordinary slow ones for tokens. Twice the budget:
  const widerBudget = await single(s.hedgeStall, true, `stalls ${s.hedgeStall.ms} ms, hedging, budget 10%`, 0.1);
  const ratios = hedged.map((h, i) => h.latency.p99 / (faultFree[i] as StragglerResult).latency.p99);
  const medianRatio = [...ratios].sort((a, b) => a - b)[1] as number;
  const seconds = (performance.now() - started) / 1000;
  const deadlineP99 = ensembles.filter((r) => r.config.mode === 'deadline').map((r) => r.latency.p99);
  const hedgingP99 = ensembles.filter((r) => r.config.mode === 'deadline+hedging').map((r) => r.latency.p99);
  const waitP99 = ensembles.filter((r) => r.config.mode === 'wait-for-all').map((r) => r.latency.p99);
  if (json) {
    console.log(
      JSON.stringify({ date: new Date().toISOString(), loadAverage: os.loadavg(), settings: s, seconds, ensembles, hedging: { faultFree, hedged, unhedged, longHedged, widerBudget, p99Ratios: ratios, medianP99Ratio: medianRatio } }, null, 2),
    );
    return;
  }
  log(`\np99 from ${s.sizes[0]} to ${s.sizes[s.sizes.length - 1]} members (ms): wait for all ${waitP99.map(ms).join(' -> ')}; deadline ${deadlineP99.map(ms).join(' -> ')}; deadline + hedging ${hedgingP99.map(ms).join(' -> ')}`);
  log('Clipper: deadline 17 -> 23 ms from 1 to 16 models; waiting for all 154 ms at 16');
  log(
    `hedged p99 / fault-free p99, one model, three rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')}, median ${medianRatio.toFixed(2)} (target <= 1.5); ` +
      `without hedging ${(unhedged.latency.p99 / (faultFree[1] as StragglerResult).latency.p99).toFixed(2)}; ` +
      `with a 10% budget ${(widerBudget.latency.p99 / (faultFree[1] as StragglerResult).latency.p99).toFixed(2)}; hedges denied by the 5% budget: ${hedged.map((h) => h.hedges.denied).join(', ')}`,
  );
  const hedgedDefaults = hedged.reduce((a, r) => a + r.defaults, 0) / hedged.length;
  const hedgedDropped = hedged.reduce((a, r) => a + r.dropped, 0) / hedged.length;
  log(
    `default answers left with hedging: ${(100 * hedgedDefaults / s.count).toFixed(1)}% with ${s.hedgeStall.ms} ms stalls (mean ${hedgedDropped.toFixed(1)} queries dropped unrun by a replica), ` +
      `${(100 * longHedged.defaults / s.count).toFixed(1)}% with ${longStall.ms} ms stalls (${longHedged.dropped} dropped): a replica that drops a query at once, ` +
      'on its batch-time estimate, leaves nothing for a hedge to rescue',
  );
  log(`${seconds.toFixed(0)} s in all`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
