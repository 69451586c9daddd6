/**
 * Baseline "Piscina without batching": fastify on the main thread, onnxruntime in a Piscina pool of two
 * worker threads (one session each), one row per task. What moving inference off the main thread buys
 * before any batching. Started in a process of its own; reports `{ url }` over IPC; stops when it closes.
 */
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { Piscina } from 'piscina';

const model = process.argv[2] ?? 'mnist-mlp';
process.env.BASELINE_MODEL = model;
const pool = new Piscina({
  filename: fileURLToPath(new URL(`./piscina-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)),
  minThreads: 2,
  maxThreads: 2,
  atomics: 'async',
});
const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });

app.post<{ Params: { model: string }; Body: { inputs: { data: number[] }[] } }>('/v2/models/:model/infer', async (request) => {
  const row = Float32Array.from(request.body.inputs[0]?.data ?? []);
  const probabilities = (await pool.run(row, { transferList: [row.buffer] })) as Float32Array;
  return { model_name: request.params.model, outputs: [{ name: 'probabilities', shape: [1, probabilities.length], datatype: 'FP32', data: Array.from(probabilities) }] };
});

// Warm both workers up (each loads its session on first use) before reporting ready.
await Promise.all([0, 1].map(() => pool.run(new Float32Array(784))));
const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.send?.({ url: address });
process.on('disconnect', () => {
  void app.close().then(() => pool.destroy()).then(() => process.exit(0));
});
