/**
 * `npm run bench:overload [-- --json] [-- --seconds 10] [-- --only timed|mlp]`: goodput under overload (issues 6
 * and 13). Two servers, one after the other, each over HTTP with the load generator in its own process, open
 * loop, 20 ms SLO, cache off:
 *
 * - `timed`: a JS model that stands in for an accelerator (4 ms + 0.5 ms a row, waiting on a timer, no CPU:
 *   test/fixtures/models/timed), one replica, so the generator on these 2 cores is not the limit;
 * - `mlp`: the bundled mnist-mlp on onnxruntime, two replicas.
 *
 * For each: capacity by stepping the rate (the highest rate whose p99 meets the SLO), then 3x capacity for
 * `--seconds`, then 0.3x for as long. Reports `goodputOverCapacity` (model answers within the SLO per second at
 * 3x, over capacity), `defaultShareOfAdmitted`, the admitted queries' p99, the
 * recovery (seconds into the 0.3x phase until every 250 ms interval meets the SLO with no failure) and the
 * server's resident memory.
 */
import path from 'node:path';
import { Clipper } from '../src/index.js';
import { serve } from '../src/http/serve.js';
import { resolveServeSettings } from '../src/http/settings.js';
import { runGeneratorProcess } from '../src/load/fork-generator.js';
import type { HttpTargetOptions } from '../src/load/http-target.js';
import type { RateResult, TimelinePoint } from '../src/load/load-run.js';
import { resolveLoadSettings } from '../src/load/load-runner.js';
import { modelsDir, projectRoot } from '../src/paths.js';
import { httpSweep } from './lib/http-load.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const option = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const seconds = Number(option('--seconds') ?? 10);
const only = option('--only');
const log = (line: string): void => {
  if (!json) console.log(line);
};
const SLO_MS = 20;
const SAMPLE_MS = 250;
const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024);
const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

interface Scenario {
  label: string;
  model: string;
  repository: string;
  modelPath: string;
  replicas: number;
  /** Rates stepped to find the capacity. */
  steps: number[];
}

const scenarios: Scenario[] = [
  {
    label: 'timed',
    model: 'timed',
    repository: path.join(projectRoot, 'test', 'fixtures', 'models'),
    modelPath: 'timed/1/model.mjs',
    replicas: 1,
    steps: [400, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400],
  },
  {
    label: 'mlp',
    model: 'mnist-mlp',
    repository: modelsDir,
    modelPath: path.join('mnist-mlp', '1', 'model.onnx'),
    replicas: 2,
    steps: [1000, 2000, 3000, 4500, 6000, 8000, 10_000, 13_000],
  },
];

/** When the phase at `offered` is back to normal: seconds from its start until every interval after meets the SLO with no failure. */
function recoverySeconds(timeline: readonly TimelinePoint[], overloadRate: number, normalRate: number): number | null {
  const lastOverload = timeline.filter((p) => p.offered === overloadRate).at(-1);
  const normal = timeline.filter((p) => p.offered === normalRate);
  if (lastOverload === undefined || normal.length === 0) return null;
  const bad = normal.filter((p) => p.errors > 0 || p.p99 === null || p.p99 > SLO_MS).at(-1);
  if (bad === undefined) return 0;
  if (bad === normal.at(-1)) return null;
  return round(bad.t - lastOverload.t, 2);
}

function describe(r: RateResult, capacity: number) {
  const admitted = r.ok + r.defaults;
  return {
    offered: r.offered,
    sent: r.sent,
    admitted,
    refused: r.refused,
    errors: r.errors,
    defaults: r.defaults,
    modelAnswersPerS: Math.round(r.ok / r.durationS),
    goodputPerS: Math.round(r.goodput),
    goodputOverCapacity: round(r.goodput / capacity),
    defaultShareOfAdmitted: admitted === 0 ? null : round(r.defaults / admitted, 4),
    admittedP50Ms: r.admittedLatency?.p50 ?? null,
    admittedP99Ms: r.admittedLatency?.p99 ?? null,
    late: r.late,
  };
}

async function run(scenario: Scenario) {
  const clipper = await Clipper.start({ modelRepository: scenario.repository });
  await clipper.registerApp({ name: 'bench', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: SLO_MS, cacheMaxBytes: 0 });
  await clipper.deployModel({ name: scenario.model, version: '1', path: scenario.modelPath, replicas: scenario.replicas });
  await clipper.linkModel('bench', scenario.model);
  const server = await serve({ ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent']), bundled: false }, { clipper });
  const http: HttpTargetOptions = { url: server.queryUrl, protocol: 'predict', app: 'bench', model: scenario.model };
  try {
    const sweep = await httpSweep(`${scenario.label}: capacity (highest rate with p99 <= ${SLO_MS} ms)`, http, { sloMs: SLO_MS, durationS: 2, warmupS: 1, rates: scenario.steps }, log);
    const capacity = Math.round(sweep.best?.achieved ?? scenario.steps[0] ?? 1000);
    const overloadRate = Math.round(3 * capacity);
    const normalRate = Math.round(0.3 * capacity);
    log(`${scenario.label}: capacity ${capacity}/s; ${overloadRate}/s (3x) for ${seconds} s, then ${normalRate}/s (0.3x) ...`);
    const before = process.memoryUsage().rss;
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(process.memoryUsage().rss), 1000);
    const load = resolveLoadSettings({ rates: [overloadRate, normalRate], durationS: seconds, warmupS: 0, sloMs: SLO_MS, stopAfterMisses: 0, retries: 0, sampleIntervalMs: SAMPLE_MS });
    const { outcome } = await runGeneratorProcess({ http, inputs: { repeatShare: 0, seed: 7 }, load });
    clearInterval(sampler);
    const [overload, normal] = outcome.rates as [RateResult, RateResult];
    const status = clipper.getModels().find((m) => m.name === scenario.model)?.versions[0]?.replicas ?? [];
    return {
      model: scenario.model,
      replicas: scenario.replicas,
      sloMs: SLO_MS,
      capacity,
      steps: sweep.rates.map((r) => ({ offered: r.offered, achieved: Math.round(r.achieved), p99Ms: r.latency.p99, meetsSlo: r.meetsSlo })),
      overload: describe(overload, capacity),
      normal: { ...describe(normal, capacity), p99Ms: normal.latency.p99, meetsSlo: normal.meetsSlo },
      recoverySeconds: recoverySeconds(outcome.timeline, overloadRate, normalRate),
      replicaCounters: status.map((r) => ({ name: r.name, ...r.counters })),
      rssMb: { before: mb(before), duringMax: mb(Math.max(before, ...samples)), after: mb(process.memoryUsage().rss) },
    };
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  const results: Record<string, Awaited<ReturnType<typeof run>>> = {};
  for (const scenario of scenarios) {
    if (only !== undefined && only !== scenario.label) continue;
    const r = await run(scenario);
    results[scenario.label] = r;
    const o = r.overload;
    log(`\n${scenario.label} (${r.model}, ${r.replicas} replica(s)), capacity ${r.capacity}/s, SLO ${SLO_MS} ms:`);
    log(`  3x (${o.offered}/s for ${seconds} s): sent ${o.sent}, admitted ${o.admitted}, refused ${o.refused}, errors ${o.errors}, defaults ${o.defaults}`);
    log(
      `  model answers within the SLO ${o.goodputPerS}/s = ${o.goodputOverCapacity} of capacity; defaults ${((o.defaultShareOfAdmitted ?? 0) * 100).toFixed(1)}% of admitted; ` +
        `admitted p99 ${o.admittedP99Ms ?? '-'} ms`,
    );
    log(`  0.3x: p99 ${r.normal.p99Ms ?? 'miss'} ms, ${r.normal.meetsSlo ? 'within' : 'NOT within'} the SLO; back to normal after ${r.recoverySeconds ?? 'never'} s`);
  }
  if (json) console.log(JSON.stringify(results, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
