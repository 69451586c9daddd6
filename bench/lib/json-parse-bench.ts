import Fastify from 'fastify';
import { Bench } from 'tinybench';
import { digit, loadMnist } from '../../src/data/mnist-data.js';

export interface JsonParseCost {
  bodyBytes: number;
  /** Microseconds per body. */
  jsonParse: number;
  /** Fastify's default JSON parser (secure-json-parse with prototype-poisoning checks), µs per body. */
  fastifyParser: number;
  /** Turning the parsed array into the Float32Array a model takes, µs. */
  toFloat32: number;
}

/** What parsing a 784-float JSON body (a real MNIST digit, as the load tests send it) costs on this machine. */
export async function measureJsonParse(seconds = 0.5): Promise<JsonParseCost> {
  const { test } = loadMnist();
  const body = JSON.stringify({ input: Array.from(digit(test, 0)) });
  const app = Fastify({ logger: false });
  const parser = app.getDefaultJsonParser('error', 'error') as unknown as (req: unknown, body: string, done: (err: Error | null, value?: unknown) => void) => void;
  const parsed = (JSON.parse(body) as { input: number[] }).input;
  let sink: unknown;
  const bench = new Bench({ time: seconds * 1000, warmupTime: 100 });
  bench
    .add('JSON.parse', () => {
      sink = JSON.parse(body);
    })
    .add("fastify's JSON parser", () => {
      parser(undefined, body, (_err, value) => {
        sink = value;
      });
    })
    .add('Float32Array.from', () => {
      sink = Float32Array.from(parsed);
    });
  await bench.run();
  await app.close();
  void sink;
  const us = (name: string): number => {
    const task = bench.getTask(name);
    const mean = (task?.result as { latency?: { mean?: number }; mean?: number } | undefined)?.latency?.mean ?? (task?.result as { mean?: number } | undefined)?.mean;
    return (mean ?? Number.NaN) * 1000;
  };
  return {
    bodyBytes: Buffer.byteLength(body),
    jsonParse: us('JSON.parse'),
    fastifyParser: us("fastify's JSON parser"),
    toFloat32: us('Float32Array.from'),
  };
}
