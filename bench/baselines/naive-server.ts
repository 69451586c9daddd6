/**
 * "The server a user would write instead" of clipper-ts: fastify plus onnxruntime-node, one `session.run` per
 * request on the main thread, the session created with onnxruntime's defaults. Speaks the same two endpoints
 * as clipper-ts (OIP infer and Clipper REST predict) so the same load test drives both.
 *
 * Started by the benchmarks in a process of its own (`node dist/bench/baselines/naive-server.js MODEL`); it
 * reports `{ url }` over the IPC channel once it listens, and stops when the channel closes.
 */
import path from 'node:path';
import Fastify from 'fastify';
import * as ort from 'onnxruntime-node';
import { modelsDir } from '../../src/paths.js';

const model = process.argv[2] ?? 'mnist-mlp';
const session = await ort.InferenceSession.create(path.join(modelsDir, model, '1', 'model.onnx'));
const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });

async function predict(data: number[]): Promise<Float32Array> {
  const input = new ort.Tensor('float32', Float32Array.from(data), [1, data.length]);
  const output = await session.run({ input });
  return output.probabilities?.data as Float32Array;
}

app.post<{ Params: { model: string }; Body: { inputs: { data: number[] }[] } }>('/v2/models/:model/infer', async (request) => {
  const probabilities = await predict(request.body.inputs[0]?.data ?? []);
  return { model_name: request.params.model, outputs: [{ name: 'probabilities', shape: [1, probabilities.length], datatype: 'FP32', data: Array.from(probabilities) }] };
});

let queryId = 0;
app.post<{ Body: { input: number[] } }>('/:app/predict', async (request) => {
  const probabilities = await predict(request.body.input);
  let best = 0;
  for (let i = 1; i < probabilities.length; i++) if ((probabilities[i] as number) > (probabilities[best] as number)) best = i;
  return { query_id: queryId++, output: best, default: false };
});

const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.send?.({ url: address });
process.on('disconnect', () => {
  void app.close().then(() => process.exit(0));
});
