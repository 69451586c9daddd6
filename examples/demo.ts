/**
 * `npm start`: serves the 2,000 held-out MNIST digits through the programmatic API, one application per
 * bundled model, at a steady open-loop rate, and prints accuracy, throughput and latency percentiles.
 */
import { performance } from 'node:perf_hooks';
import { Clipper } from '../src/index.js';
import { LatencyRecorder } from '../src/load/latency-recorder.js';
import { runOpenLoop } from '../src/load/open-loop.js';
import { digit, loadMnist } from '../src/data/mnist-data.js';

const models = [
  { name: 'mnist-linear', version: '1', rate: 2000 },
  { name: 'mnist-mlp', version: '1', rate: 1500 },
  { name: 'mnist-cnn', version: '1', rate: 800 },
];

const fmt = (ms: number): string => (Number.isFinite(ms) ? ms.toFixed(2) : 'miss');

async function main(): Promise<void> {
  const { test } = loadMnist();
  const started = performance.now();
  const clipper = await Clipper.start();
  for (const m of models) {
    await clipper.registerApp({ name: `digits-${m.name}`, inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 20 });
    await clipper.deployModel({ name: m.name, version: m.version, path: `models/${m.name}/${m.version}/model.onnx`, replicas: 2 });
    await clipper.linkModel(`digits-${m.name}`, m.name);
  }
  console.log(`clipper-ts: ${models.length} models deployed with 2 replicas each in ${(performance.now() - started).toFixed(0)} ms`);
  console.log(`serving ${test.count} held-out MNIST digits per model, open loop, SLO 20 ms\n`);
  console.log('model          rate/s  achieved/s  accuracy  defaults  p50 ms  p99 ms  p99.9 ms  mean batch');
  for (const m of models) {
    const latencies = new LatencyRecorder();
    let correct = 0;
    let defaults = 0;
    let batchRows = 0;
    let answered = 0;
    const report = await runOpenLoop({
      rate: m.rate,
      count: test.count,
      send: (i) => clipper.predict(`digits-${m.name}`, digit(test, i)),
      onOutcome: (o) => {
        const answer = o.result;
        if (answer === undefined || answer.isDefault) {
          defaults++;
          latencies.recordMiss();
          return;
        }
        answered++;
        latencies.record(o.latencyMs);
        if (answer.output === test.labels[o.index]) correct++;
        batchRows += answer.timings?.batchSize ?? 1;
      },
    });
    const s = latencies.summary();
    console.log(
      `${m.name.padEnd(13)} ${String(m.rate).padStart(6)}  ${report.achievedRate.toFixed(0).padStart(10)}  ${(correct / test.count).toFixed(4).padStart(8)}  ` +
        `${String(defaults).padStart(8)}  ${fmt(s.p50).padStart(6)}  ${fmt(s.p99).padStart(6)}  ${fmt(s.p999).padStart(8)}  ${(batchRows / Math.max(1, answered)).toFixed(1).padStart(10)}`,
    );
  }
  await clipper.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
