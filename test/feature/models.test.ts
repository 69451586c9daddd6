import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type { onnx as onnxP } from 'onnx-proto';
import { IMAGE_SIZE, NUM_CLASSES, loadMnist } from '../../src/data/mnist-data.js';
import { modelsDir } from '../../src/paths.js';
import { modelBytes } from '../../models/training/export.js';
import { MODEL_SPECS } from '../../models/training/specs.js';
import { trainSpec } from '../../models/training/worker.js';

const { onnx } = onnxProto;

interface ManifestEntry {
  name: string;
  version: string;
  model: string;
  config: string;
  architecture: string;
  parameters: number;
  heldOutAccuracy: number;
  trainAccuracy: number;
  microsecondsPerRow: number;
  degraded: boolean;
  sha256: string;
}

interface Config {
  name: string;
  version: string;
  platform: string;
  input: { name: string; dtype: string; shape: number[] };
  output: { name: string; dtype: string; shape: number[]; kind: string };
  batching: { maxBatchSize: number; maxQueueDelayMicroseconds: number };
  heldOutAccuracy: number;
  trainedOn: string;
  architecture: string;
}

const manifest = JSON.parse(fs.readFileSync(path.join(modelsDir, 'manifest.json'), 'utf8')) as { models: ManifestEntry[] };
const byId = new Map(manifest.models.map((m) => [`${m.name}/${m.version}`, m]));
// The nets' ops, plus test-time shifts (Pad, Slice, Concat, ReduceMean) and nearest neighbours (TopK, Gather, Mul, ReduceSum).
const ALLOWED_OPS = new Set(['Gemm', 'MatMul', 'Add', 'Relu', 'Conv', 'MaxPool', 'Reshape', 'Flatten', 'Softmax', 'Pad', 'Slice', 'Concat', 'ReduceMean', 'TopK', 'Gather', 'Mul', 'ReduceSum']);

test('the manifest lists exactly the expected model versions, each with its files', (t) => {
  t.deepEqual([...byId.keys()].sort(), [
    'mnist-cnn-aug/1',
    'mnist-cnn-tta/1',
    'mnist-cnn/1',
    'mnist-knn/1',
    'mnist-linear/1',
    'mnist-mlp-aug/1',
    'mnist-mlp/1',
    'mnist-mlp/2-broken',
  ]);
  for (const m of manifest.models) {
    t.is(m.model, `${m.name}/${m.version}/model.onnx`);
    t.is(m.config, `${m.name}/${m.version}/config.json`);
    t.true(fs.existsSync(path.join(modelsDir, m.model)), m.model);
    t.true(fs.existsSync(path.join(modelsDir, m.config)), m.config);
    t.true(m.parameters > 0 && m.microsecondsPerRow > 0);
  }
});

for (const entry of manifest.models) {
  const id = `${entry.name}/${entry.version}`;

  test(`${id}: the committed ONNX graph has the documented interface and only standard ops`, (t) => {
    const bytes = fs.readFileSync(path.join(modelsDir, entry.model));
    const config = JSON.parse(fs.readFileSync(path.join(modelsDir, entry.config), 'utf8')) as Config;
    t.is(config.name, entry.name);
    t.is(config.version, entry.version);
    t.is(config.platform, 'onnxruntime');
    t.deepEqual(config.input, { name: 'input', dtype: 'float32', shape: [IMAGE_SIZE] });
    t.deepEqual(config.output, { name: 'probabilities', dtype: 'float32', shape: [NUM_CLASSES], kind: 'classification' });
    t.is(config.architecture, entry.architecture);

    const model = onnx.ModelProto.decode(bytes);
    t.is(Number(model.irVersion), 8);
    t.deepEqual(
      model.opsetImport.map((o) => [o.domain, Number(o.version)]),
      [['', 13]],
    );
    const graph = model.graph!;
    const inputs = graph.input ?? [];
    const outputs = graph.output ?? [];
    const nodes = graph.node ?? [];
    t.is(inputs.length, 1);
    t.is(outputs.length, 1);
    const dims = (v: onnxP.IValueInfoProto): (string | number)[] =>
      (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
    t.is(inputs[0].name, config.input.name);
    t.is(inputs[0].type?.tensorType?.elemType, onnx.TensorProto.DataType.FLOAT);
    t.deepEqual(dims(inputs[0]), ['N', ...config.input.shape]);
    t.is(outputs[0].name, config.output.name);
    t.is(outputs[0].type?.tensorType?.elemType, onnx.TensorProto.DataType.FLOAT);
    t.deepEqual(dims(outputs[0]), ['N', ...config.output.shape]);
    for (const node of nodes) t.true(ALLOWED_OPS.has(node.opType ?? ''), `op ${node.opType}`);
    t.is(nodes[nodes.length - 1].opType, 'Softmax');
    // Parameter count = float initializer elements.
    let floats = 0;
    for (const init of graph.initializer ?? []) {
      if (init.dataType === onnx.TensorProto.DataType.FLOAT) floats += (init.dims ?? []).reduce((a: number, d) => a * Number(d), 1);
    }
    t.is(floats, entry.parameters);
  });

  test(`${id}: onnxruntime reproduces the recorded held-out accuracy and returns probability rows`, async (t) => {
    const { test: held } = loadMnist();
    const config = JSON.parse(fs.readFileSync(path.join(modelsDir, entry.config), 'utf8')) as Config;
    const session = await ort.InferenceSession.create(path.join(modelsDir, entry.model), { intraOpNumThreads: 1, interOpNumThreads: 1 });
    try {
      t.deepEqual(session.inputNames, [config.input.name]);
      t.deepEqual(session.outputNames, [config.output.name]);
      const inMeta = session.inputMetadata[0];
      const outMeta = session.outputMetadata[0];
      t.true(inMeta.isTensor && outMeta.isTensor);
      if (inMeta.isTensor && outMeta.isTensor) {
        t.is(inMeta.type, 'float32');
        t.is(outMeta.type, 'float32');
        t.deepEqual([...inMeta.shape], ['N', IMAGE_SIZE]);
        t.deepEqual([...outMeta.shape], ['N', NUM_CLASSES]);
      }

      // The held-out split in batches of 250 (the batch dimension is symbolic; the test-time-shift model makes 49
      // copies of every row, so one batch of 2,000 would take gigabytes).
      const probs = new Float32Array(held.count * NUM_CLASSES);
      for (let start = 0; start < held.count; start += 250) {
        const rows = Math.min(250, held.count - start);
        const out = await session.run({ input: new ort.Tensor('float32', held.images.subarray(start * IMAGE_SIZE, (start + rows) * IMAGE_SIZE), [rows, IMAGE_SIZE]) });
        const result = out[config.output.name];
        t.deepEqual(result.dims, [rows, NUM_CLASSES]);
        probs.set(result.data as Float32Array, start * NUM_CLASSES);
      }
      let correct = 0;
      let worstSum = 0;
      let inRange = true;
      for (let r = 0; r < held.count; r++) {
        let sum = 0;
        let best = 0;
        for (let c = 0; c < NUM_CLASSES; c++) {
          const p = probs[r * NUM_CLASSES + c];
          if (!(p >= 0 && p <= 1)) inRange = false;
          sum += p;
          if (p > probs[r * NUM_CLASSES + best]) best = c;
        }
        worstSum = Math.max(worstSum, Math.abs(sum - 1));
        if (best === held.labels[r]) correct++;
      }
      t.true(inRange, 'every probability is in [0, 1]');
      t.true(worstSum < 1e-4, `rows sum to 1 (worst deviation ${worstSum})`);
      const accuracy = correct / held.count;
      t.true(Math.abs(accuracy - entry.heldOutAccuracy) <= 0.002, `accuracy ${accuracy} vs manifest ${entry.heldOutAccuracy}`);
      t.true(Math.abs(accuracy - config.heldOutAccuracy) <= 0.002, `accuracy ${accuracy} vs config ${config.heldOutAccuracy}`);

      // A single row gives the same answer as the same row inside the big batch.
      const one = await session.run({ input: new ort.Tensor('float32', held.images.slice(7 * IMAGE_SIZE, 8 * IMAGE_SIZE), [1, IMAGE_SIZE]) });
      const row = one[config.output.name].data as Float32Array;
      for (let c = 0; c < NUM_CLASSES; c++) t.true(Math.abs(row[c] - probs[7 * NUM_CLASSES + c]) < 1e-5);
    } finally {
      await session.release();
    }
  });
}

test('the models honestly differ in accuracy and cost', (t) => {
  const linear = byId.get('mnist-linear/1')!;
  const mlp = byId.get('mnist-mlp/1')!;
  const broken = byId.get('mnist-mlp/2-broken')!;
  const cnn = byId.get('mnist-cnn/1')!;
  t.true(linear.heldOutAccuracy > 0.85, `linear ${linear.heldOutAccuracy}`);
  t.true(linear.heldOutAccuracy < mlp.heldOutAccuracy, `linear ${linear.heldOutAccuracy} < mlp ${mlp.heldOutAccuracy}`);
  t.true(mlp.heldOutAccuracy > 0.94, `mlp ${mlp.heldOutAccuracy}`);
  t.true(cnn.heldOutAccuracy > linear.heldOutAccuracy, `cnn ${cnn.heldOutAccuracy}`);
  t.true(broken.heldOutAccuracy < 0.2, `broken ${broken.heldOutAccuracy}`);
  t.true(broken.degraded && !mlp.degraded && !linear.degraded && !cnn.degraded);
  t.is(broken.parameters, mlp.parameters, 'the broken version has the same architecture');
  // Recorded per-row costs (batch 64, one thread) rank linear < mlp < cnn.
  t.true(linear.microsecondsPerRow < mlp.microsecondsPerRow, 'linear cheaper than mlp');
  t.true(mlp.microsecondsPerRow < cnn.microsecondsPerRow, 'mlp cheaper than cnn');
});

test('the zoo: members comparable to the CNN, and one model at least 1 ms per row', (t) => {
  const cnn = byId.get('mnist-cnn/1')!;
  // Ensemble members (bench/eval-selection.ts COMPARABLE): within 1.5 points of the CNN's held-out accuracy.
  for (const id of ['mnist-cnn-aug/1', 'mnist-mlp-aug/1', 'mnist-knn/1']) {
    const m = byId.get(id)!;
    t.true(m.heldOutAccuracy >= 0.96 && Math.abs(m.heldOutAccuracy - cnn.heldOutAccuracy) <= 0.015, `${id} ${m.heldOutAccuracy} vs cnn ${cnn.heldOutAccuracy}`);
    t.false(m.degraded);
  }
  // The heavy model: decent, and its recorded cost (batch 64, one thread) is at least 1 ms a row, 20x the CNN's.
  const heavy = byId.get('mnist-cnn-tta/1')!;
  t.true(heavy.heldOutAccuracy >= 0.96, `mnist-cnn-tta ${heavy.heldOutAccuracy}`);
  t.true(heavy.microsecondsPerRow >= 1000, `mnist-cnn-tta ${heavy.microsecondsPerRow} us/row`);
  t.true(heavy.microsecondsPerRow >= 20 * cnn.microsecondsPerRow, `mnist-cnn-tta ${heavy.microsecondsPerRow} vs cnn ${cnn.microsecondsPerRow} us/row`);
});

// Retraining every model takes minutes (npm run models); the two cheapest are retrained here, in this process,
// and must give the committed bytes: the linear model (the dense trainer, Adam, seeded shuffles) and the
// nearest-neighbours model (float64 principal components, prototypes, the TopK/Gather graph).
for (const id of ['mnist-linear/1', 'mnist-knn/1']) {
  test(`${id}: retraining from its spec reproduces the committed bytes`, (t) => {
    const spec = MODEL_SPECS.find((s) => `${s.name}/${s.version}` === id)!;
    const bytes = modelBytes(spec, trainSpec(spec, () => {}));
    const committed = fs.readFileSync(path.join(modelsDir, byId.get(id)!.model));
    t.is(createHash('sha256').update(bytes).digest('hex'), byId.get(id)!.sha256);
    t.true(Buffer.from(bytes).equals(committed));
  });
}

test('the committed model files are the ones the manifest records: same bytes, same sha256', (t) => {
  // `npm run models` retrains byte-identically (fixed seeds) and records each file's sha256: a file retrained
  // differently, edited, or committed without its manifest fails here.
  const onDisk = fs
    .readdirSync(modelsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== 'training')
    .flatMap((d) => fs.readdirSync(path.join(modelsDir, d.name)).map((v) => `${d.name}/${v}/model.onnx`))
    .filter((file) => fs.existsSync(path.join(modelsDir, file)))
    .sort();
  t.deepEqual([...manifest.models.map((m) => m.model)].sort(), onDisk, 'every model.onnx is in the manifest, and only those');
  for (const entry of manifest.models) {
    const bytes = fs.readFileSync(path.join(modelsDir, entry.model));
    t.is(bytes.length, (entry as ManifestEntry & { bytes: number }).bytes, `${entry.model} size`);
    t.is(createHash('sha256').update(bytes).digest('hex'), entry.sha256, `${entry.model} sha256`);
  }
});
