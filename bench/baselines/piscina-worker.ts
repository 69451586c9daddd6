/** The Piscina baseline's worker: one onnxruntime session (one thread), one row per task. */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { modelsDir } from '../../src/paths.js';

const model = (process.env.BASELINE_MODEL as string | undefined) ?? 'mnist-mlp';
const session = await ort.InferenceSession.create(path.join(modelsDir, model, '1', 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });

export default async function run(row: Float32Array): Promise<Float32Array> {
  const output = await session.run({ input: new ort.Tensor('float32', row, [1, row.length]) });
  return Float32Array.from(output.probabilities?.data as Float32Array);
}
