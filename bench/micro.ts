/**
 * `npm run bench:micro [-- --json]`: tinybench micro-benchmarks of the hot paths, in this process:
 *   cache hit (SHA-1 key of a 784-float input + LRU lookup), batch assembly (BatchQueue take of 64 queries and
 *   copying their rows into one Float32Array), AIMD update, Exp4 combine of 3 models' outputs, moving a
 *   64-row batch to a Piscina worker and back (transferred buffer, trivial echo worker), and parsing one
 *   784-float JSON body. Means are per operation; compare them with each other, not with another machine.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Piscina, move } from 'piscina';
import { Bench } from 'tinybench';
import { AimdController } from '../src/batching/aimd-controller.js';
import { BatchLatencyModel } from '../src/batching/batch-latency-model.js';
import { BatchQueue } from '../src/batching/batch-queue.js';
import { Exp4Policy } from '../src/selection/exp4-policy.js';
import { digit, IMAGE_SIZE, loadMnist } from '../src/data/mnist-data.js';
import { PredictionCache, predictionKey } from '../src/routing/prediction-cache.js';
import { measureJsonParse } from './lib/json-parse-bench.js';
import { Clipper, OverloadedError } from '../src/index.js';
import { modelsDir } from '../src/paths.js';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
/** Only the predict measurement (for profiling it: `node --cpu-prof dist/bench/micro.js --predict-only`). */
const predictOnly = process.argv.includes('--predict-only');
/**
 * `--profile=FILE`: a CPU profile of the main thread over the measured window only (no start-up, model loading
 * or warm-up in it), written to FILE as a .cpuprofile (Chrome DevTools, or `speedscope`).
 */
const profileFile = process.argv.find((a) => a.startsWith('--profile='))?.slice('--profile='.length);
const BATCH = 64;
const CALLERS = 128;

interface MainThreadCost {
  /** Main-thread busy µs per answered query. */
  perQueryMicroseconds: number;
  queriesPerSecond: number;
  /** Event-loop utilisation over the measured window (1 = the main thread never idled). */
  utilisation: number;
  queries: number;
  /** Refused in the measured window (none expected once warm). */
  refused: number;
  /** Rows per batch the replica ran in the measured window (one postMessage to the worker per batch). */
  meanBatchSize: number;
  /**
   * The main thread's own CPU time (user + system, from /proc, 10 ms ticks; Linux only, else null) per answered
   * query, µs. Unlike the event loop's busy time it leaves out the time the thread was runnable but not running
   * (other processes on the cores), so it moves less on a shared machine.
   */
  perQueryCpuMicroseconds: number | null;
}

/** The main thread's CPU time so far in ms (Linux: /proc/self/task/<pid>/stat), or undefined elsewhere. */
function mainThreadCpuMs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the command name, in clock ticks (100/s).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** See the file comment: main-thread µs per query of in-process `predict` at saturation. */
async function mainThreadCost(cache: boolean, seconds: number): Promise<MainThreadCost> {
  const clipper = await Clipper.start();
  try {
    await clipper.registerApp({ name: 'micro', inputType: 'float32', inputShape: [IMAGE_SIZE], defaultOutput: -1, latencySloMs: 1000, cacheMaxBytes: cache ? 64 * 1024 * 1024 : 0 });
    await clipper.deployModel({ name: 'mnist-linear', version: '1', path: path.join(modelsDir, 'mnist-linear', '1', 'model.onnx'), replicas: 1 });
    await clipper.linkModel('micro', 'mnist-linear');
    const { test } = loadMnist();
    let stopAt = 0;
    let answered = 0;
    let refused = 0;
    let counter = 0;
    const caller = async (i: number): Promise<void> => {
      const input = Float32Array.from(digit(test, i));
      while (performance.now() < stopAt) {
        // A new input every call (a cache miss); predict copies it before its first await.
        input[0] = counter++ / 1e9;
        try {
          await clipper.predict('micro', input);
          answered++;
        } catch (error) {
          // A refusal (a cold replica's admission) costs main-thread time too, but answers nothing.
          if (!(error instanceof OverloadedError)) throw error;
          refused++;
        }
      }
    };
    // Warm-up: AIMD finds its batch size, the JIT settles.
    stopAt = performance.now() + 1000;
    await Promise.all(Array.from({ length: CALLERS }, (_, i) => caller(i)));
    answered = 0;
    refused = 0;
    let batches = 0;
    let rows = 0;
    clipper.onBatch((event) => {
      batches++;
      rows += event.size;
    });
    const profiler = profileFile === undefined ? undefined : await startProfile();
    const started = performance.now();
    const cpuStarted = mainThreadCpuMs();
    const elu = performance.eventLoopUtilization();
    stopAt = started + seconds * 1000;
    await Promise.all(Array.from({ length: CALLERS }, (_, i) => caller(i)));
    const elapsed = performance.now() - started;
    const utilisation = performance.eventLoopUtilization(elu).utilization;
    const cpuEnded = mainThreadCpuMs();
    const cpuMs = cpuStarted === undefined || cpuEnded === undefined ? undefined : cpuEnded - cpuStarted;
    if (profiler !== undefined) await profiler.stop(profileFile as string);
    return { perQueryMicroseconds: (utilisation * elapsed * 1000) / answered, queriesPerSecond: (answered * 1000) / elapsed, utilisation, queries: answered, refused, meanBatchSize: rows / batches, perQueryCpuMicroseconds: cpuMs === undefined ? null : (cpuMs * 1000) / answered };
  } finally {
    await clipper.stop();
  }
}

/** Starts the inspector's CPU profiler in this thread; `stop` writes the profile. */
async function startProfile(): Promise<{ stop(file: string): Promise<void> }> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params, (error, result) => (error === null ? resolve(result) : reject(error))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

interface Queued {
  enqueuedAt: number;
  deadline: number;
  input: Float32Array;
}

async function main(): Promise<void> {
  if (predictOnly) {
    const cost = await mainThreadCost(process.argv.includes('--cache'), quick ? 2 : 5);
    console.log(JSON.stringify(cost));
    return;
  }
  const { test } = loadMnist();
  const input = digit(test, 3);
  const rows = Array.from({ length: BATCH }, (_, i) => digit(test, i));

  const cache = new PredictionCache(16 * 1024 * 1024);
  const prediction = { scores: new Float32Array(10), model: 'mnist-mlp', version: '1' };
  await cache.getOrEvaluate(predictionKey('mnist-mlp', '1', input), async () => prediction);

  const latency = new BatchLatencyModel();
  latency.observe(BATCH, 2);
  const queue = new BatchQueue<Queued>();
  const batchBuffer = new Float32Array(BATCH * IMAGE_SIZE);

  const aimd = new AimdController({ mode: 'aimd', maxBatchSize: 256, initialBatchSize: 32, additiveStep: 2, backoffFactor: 0.9 });
  let flip = 0;

  const exp4 = new Exp4Policy();
  const outputs = ['mnist-cnn', 'mnist-mlp', 'mnist-linear'].map((model, m) => ({
    model,
    version: '1',
    scores: Float32Array.from({ length: 10 }, (_, k) => (k === 3 ? 0.7 - m * 0.1 : 0.03)),
  }));

  const pool = new Piscina({
    filename: fileURLToPath(new URL(`./lib/echo-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)),
    minThreads: 1,
    maxThreads: 1,
    atomics: 'async',
  });
  let travelling: Float32Array = new Float32Array(BATCH * IMAGE_SIZE);

  let sink: unknown;
  const bench = new Bench({ time: 700, warmupTime: 200 });
  bench
    .add('cache hit (key + lookup)', async () => {
      sink = await cache.getOrEvaluate(predictionKey('mnist-mlp', '1', input), async () => prediction);
    })
    .add(`batch assembly (take ${BATCH} + copy rows)`, () => {
      for (let i = 0; i < BATCH; i++) queue.push({ enqueuedAt: 0, deadline: 1e12, input: rows[i] as Float32Array });
      const taken = queue.take(1, { limit: BATCH, maxDelayMs: 0, latency });
      if (taken.kind !== 'batch') throw new Error('expected a batch');
      for (let i = 0; i < taken.batch.length; i++) batchBuffer.set((taken.batch[i] as Queued).input, i * IMAGE_SIZE);
      sink = taken;
    })
    .add('AIMD update', () => {
      aimd.observe(aimd.limit, (flip++ & 7) === 0 ? 12 : 5, 10);
    })
    .add('Exp4 combine (3 models)', () => {
      sink = exp4.combine(outputs);
    })
    .add(`worker round trip (${BATCH} rows, transferred)`, async () => {
      travelling = (await pool.run(move(travelling))) as Float32Array;
      if (travelling.length !== BATCH * IMAGE_SIZE) throw new Error('the batch did not come back whole');
    });
  await bench.run();
  await pool.destroy();
  void sink;
  const parse = await measureJsonParse(0.7);
  const results = bench.tasks.map((task) => {
    const r = task.result as { latency?: { mean?: number; p99?: number }; throughput?: { mean?: number } } | undefined;
    return { name: task.name, meanMicroseconds: (r?.latency?.mean ?? Number.NaN) * 1000, p99Microseconds: (r?.latency?.p99 ?? Number.NaN) * 1000 };
  });
  results.push({ name: 'JSON.parse of a 784-float body', meanMicroseconds: parse.jsonParse, p99Microseconds: Number.NaN });
  results.push({ name: "fastify's JSON parser, same body", meanMicroseconds: parse.fastifyParser, p99Microseconds: Number.NaN });
  const seconds = quick ? 2 : 5;
  const cacheOff = await mainThreadCost(false, seconds);
  const cacheOnMiss = await mainThreadCost(true, seconds);
  const perQueryMainThreadMicroseconds = { cacheOff: cacheOff.perQueryMicroseconds, cacheOnMiss: cacheOnMiss.perQueryMicroseconds };
  const perQueryMainThreadCpuMicroseconds = { cacheOff: cacheOff.perQueryCpuMicroseconds, cacheOnMiss: cacheOnMiss.perQueryCpuMicroseconds };
  if (json) {
    console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, results, perQueryMainThreadMicroseconds, perQueryMainThreadCpuMicroseconds, predict: { cacheOff, cacheOnMiss } }, null, 2));
    return;
  }
  console.log('operation                                      mean µs     p99 µs');
  for (const r of results) {
    console.log(`${r.name.padEnd(44)} ${r.meanMicroseconds.toFixed(2).padStart(9)}  ${Number.isNaN(r.p99Microseconds) ? '        -' : r.p99Microseconds.toFixed(2).padStart(9)}`);
  }
  console.log(`\nin-process predict at saturation (${CALLERS} callers, one linear-model replica), main-thread µs per query:`);
  for (const [name, c] of [['cache off', cacheOff], ['cache on (miss)', cacheOnMiss]] as const) {
    const cpu = c.perQueryCpuMicroseconds === null ? '' : `, ${c.perQueryCpuMicroseconds.toFixed(2)} µs of main-thread CPU`;
    console.log(`  ${name.padEnd(16)} ${c.perQueryMicroseconds.toFixed(2).padStart(6)} µs  (${Math.round(c.queriesPerSecond).toLocaleString('en-US')} queries/s, event loop ${(100 * c.utilisation).toFixed(0)}% busy${cpu}; ${c.meanBatchSize.toFixed(0)} rows a batch)`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
