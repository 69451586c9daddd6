import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { digitBatch, loadMnist } from '../../src/data/mnist-data.js';
import { modelsDir } from '../../src/paths.js';

/**
 * Rows per second from onnxruntime called directly in this process with back-to-back batches of `batch`
 * rows: `sessions` sessions of `threads` intra-op threads each, all running at once. No HTTP, no JSON, no
 * queues: what the model itself allows on these cores.
 */
export async function upperBound(model: string, batch: number, sessions: number, threads: number, seconds: number): Promise<number> {
  const { test } = loadMnist();
  const file = path.join(modelsDir, model, '1', 'model.onnx');
  const created = await Promise.all(
    Array.from({ length: sessions }, () => ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' })),
  );
  const data = new Float32Array(batch * 784);
  for (let r = 0; r < batch; r++) data.set(digitBatch(test, r % test.count, 1), r * 784);
  const feeds = { input: new ort.Tensor('float32', data, [batch, 784]) };
  for (const s of created) await s.run(feeds);
  let rows = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    created.map(async (s) => {
      while (performance.now() < until) {
        await s.run(feeds);
        rows += batch;
      }
    }),
  );
  const elapsed = performance.now() - started;
  await Promise.all(created.map((s) => s.release()));
  return (rows / elapsed) * 1000;
}
