/**
 * `npm run bench:batching [-- --json] [-- --quick] [-- --replicas N]`: what batching buys, side by side in one run, for the
 * linear model, the MLP and the heavy model (mnist-cnn-tta, over 1 ms a row on one thread: compute, not framework
 * overhead, decides its throughput) (DESIGN: Clipper's AIMD vs no batching, 25.5x for a linear SVM):
 *   1. upper bound: onnxruntime called directly in this process, batched at the size AIMD settled on,
 *      one session per replica (1 intra-op thread each), all running at once;
 *   2. served through the API with AIMD: open-loop load at rising rates, the highest throughput with
 *      p99 <= 20 ms (defaults and refusals count as misses);
 *   3. served with batching off (batch size 1), same measure.
 * The prediction cache is off, so every query runs a model.
 */
import path from 'node:path';
import { Clipper } from '../src/index.js';
import { digit, loadMnist } from '../src/data/mnist-data.js';
import type { BatchingMode } from '../src/index.js';
import { modelsDir } from '../src/paths.js';
import { measureWakeupNoise } from './lib/noise.js';
import { fmt, generatorCost, sweepRates, type RateResult } from './lib/sweep.js';
import { upperBound } from './lib/upper-bound.js';
import { benchReplicas } from './lib/bench-clipper.js';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const log = (line: string): void => {
  if (!json) console.log(line);
};

const SLO_MS = 20;
/** `--replicas N`, else one per core the main thread does not need (see benchReplicas). */
const REPLICAS = benchReplicas(process.argv);
/**
 * Per model: the sweep's first rate for AIMD and for no batching, and the largest batch. The heavy model serves
 * ~1/100 of the others' rows per second, so its sweeps start lower (each step is as long as the others'), and
 * its batches stay small: it runs 49 shifted copies of every row, so a batch of 64 already holds ~240 MB of
 * activations in a replica.
 */
const models: readonly { name: string; aimdStart: number; noneStart: number; maxBatchSize: number }[] = [
  { name: 'mnist-linear', aimdStart: 2000, noneStart: 500, maxBatchSize: 512 },
  { name: 'mnist-mlp', aimdStart: 2000, noneStart: 500, maxBatchSize: 512 },
  { name: 'mnist-cnn-tta', aimdStart: 200, noneStart: 200, maxBatchSize: 64 },
];

interface ServedResult {
  best: RateResult | undefined;
  rates: RateResult[];
  settledBatchLimits: number[];
  /** The generator alone at the best rate (a send that does nothing): its µs per query and share of the main thread. */
  generator: { microsecondsPerQuery: number; shareOfMainThread: number } | undefined;
}

async function served({ name: model, aimdStart, noneStart, maxBatchSize }: (typeof models)[number], mode: BatchingMode): Promise<ServedResult> {
  const { test } = loadMnist();
  const clipper = await Clipper.start();
  try {
    await clipper.registerApp({ name: 'bench', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: SLO_MS, cacheMaxBytes: 0 });
    await clipper.deployModel({ name: model, version: '1', path: path.join(modelsDir, model, '1', 'model.onnx'), replicas: REPLICAS, batching: { mode, maxBatchSize } });
    await clipper.linkModel('bench', model);
    log(`${model}, ${mode === 'none' ? 'no batching' : mode}:`);
    // The inputs made once: the generator allocates nothing per query of its own (predict copies the input).
    const inputs = Array.from({ length: test.count }, (_, i) => digit(test, i));
    const { rates, best } = await sweepRates({
      sloMs: SLO_MS,
      startRate: mode === 'none' ? noneStart : aimdStart,
      growth: quick ? 1.6 : 1.25,
      maxRate: 400_000,
      seconds: quick ? 1 : 2,
      send: (i) =>
        clipper.predict('bench', inputs[i % inputs.length] as Float32Array).then((a) => ({ isDefault: a.isDefault, batchSize: a.timings?.batchSize ?? 1 })),
      inspect: () => clipper.describeModel(model).batching.limits,
      log,
    });
    // The size AIMD settled on: the replicas' limits right after the best rate that met the SLO.
    const settledBatchLimits = (best?.inspected as number[] | undefined) ?? clipper.describeModel(model).batching.limits;
    const generator = best === undefined ? undefined : await generatorCost(best.offered, quick ? 1 : 2);
    if (generator !== undefined) {
      log(`  the generator alone at ${best?.offered}/s: ${generator.microsecondsPerQuery.toFixed(2)} µs of main thread per query, ${(generator.shareOfMainThread * 100).toFixed(1)}% of it`);
    }
    return { best, rates, settledBatchLimits, generator };
  } finally {
    await clipper.stop();
  }
}


async function main(): Promise<void> {
  const noise = await measureWakeupNoise();
  log(`machine noise floor: worker round trip after 1 ms idle p50 ${noise.p50.toFixed(2)} ms, p99 ${noise.p99.toFixed(2)} ms, max ${noise.max.toFixed(2)} ms\n`);
  const results: Record<string, unknown> = {};
  const ratios: Record<string, { aimdOverNoBatching: number; servedOverUpperBound: number }> = {};
  const table: string[] = [];
  for (const spec of models) {
    const model = spec.name;
    const aimd = await served(spec, 'aimd');
    const none = await served(spec, 'none');
    const settled = Math.max(1, Math.round(aimd.settledBatchLimits.reduce((a, b) => a + b, 0) / aimd.settledBatchLimits.length));
    const meanBatch = Math.max(1, Math.round(aimd.best?.meanBatch ?? 1));
    // The same cores either way: one session per replica with one thread each, or one session with a thread
    // per replica (in-process session.run does not overlap on the main thread); the better is the bound.
    const seconds = quick ? 1 : 3;
    const bound = Math.max(await upperBound(model, settled, REPLICAS, 1, seconds), await upperBound(model, settled, 1, REPLICAS, seconds));
    const boundAtMean = Math.max(await upperBound(model, meanBatch, REPLICAS, 1, seconds), await upperBound(model, meanBatch, 1, REPLICAS, seconds));
    const aimdQps = aimd.best?.achieved ?? 0;
    const noneQps = none.best?.achieved ?? 0;
    ratios[model] = {
      aimdOverNoBatching: noneQps > 0 ? aimdQps / noneQps : Number.POSITIVE_INFINITY,
      servedOverUpperBound: aimdQps / bound,
    };
    results[model] = {
      upperBound: { rowsPerSecond: Math.round(bound), batch: settled, threads: REPLICAS },
      upperBoundAtMeanBatch: { rowsPerSecond: Math.round(boundAtMean), batch: meanBatch, threads: REPLICAS },
      aimd: { best: aimd.best, settledBatchLimits: aimd.settledBatchLimits, generatorAtBest: aimd.generator, rates: aimd.rates },
      noBatching: { best: none.best, generatorAtBest: none.generator, rates: none.rates },
    };
    table.push(
      `${model.padEnd(13)} ${String(Math.round(bound)).padStart(12)} (b=${settled})  ${String(aimdQps).padStart(10)}  ${fmt(aimd.best?.latency.p99 ?? Number.NaN).padStart(7)}  ` +
        `${(aimd.best?.meanBatch ?? 0).toFixed(1).padStart(10)}  ${String(noneQps).padStart(10)}  ${fmt(none.best?.latency.p99 ?? Number.NaN).padStart(7)}  ` +
        `${ratios[model].aimdOverNoBatching.toFixed(1).padStart(8)}x  ${ratios[model].servedOverUpperBound.toFixed(2).padStart(8)}`,
    );
  }
  if (json) {
    console.log(JSON.stringify({ sloMs: SLO_MS, replicas: REPLICAS, date: new Date().toISOString(), noiseFloorMs: noise, ratios, results }, null, 2));
    return;
  }
  console.log(`\nhighest throughput with p99 <= ${SLO_MS} ms, ${REPLICAS} replicas (1 intra-op thread each), cache off`);
  console.log('model          upper bound rows/s   AIMD q/s   p99 ms  mean batch   no-batch q/s   p99 ms   AIMD/none  served/upper');
  for (const line of table) console.log(line);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
