/**
 * `npm run bench:http [-- --json] [-- --quick] [-- --report FILE.html]`: clipper-ts over HTTP against the
 * server a user would write instead, side by side in one run (issue 4's benchmark).
 *
 * Open-loop load at rising rates from the load generator's own process; the measure is the highest achieved
 * throughput whose p99 stays within 20 ms (refusals, default answers and errors count as misses).
 *   - clipper-ts, started here by `serve()` on ephemeral ports: mnist-mlp, 2 replicas (one onnxruntime thread
 *     each), AIMD batching, an application with the cache off; queried by OIP infer with a JSON body, by OIP
 *     infer with the binary tensor data extension (binary output asked back), by the OIP gRPC service's
 *     ModelInfer (raw_input_contents, @grpc/grpc-js in the generator's process) and by Clipper's predict;
 *   - the naive server (bench/baselines/naive-server.ts) in a process of its own: fastify plus
 *     onnxruntime-node, one session.run per request, onnxruntime's default session options, JSON bodies.
 *     Every ratio is clipper-ts (one protocol) over this server's OIP JSON (predict: its predict);
 *   - the ceiling (bench/baselines/bare-server.ts): bare node:http that parses a JSON body and answers, or
 *     gathers a binary body and answers, with no framework and no model. Each protocol's share of it says
 *     how much of what one Node process could answer at all clipper-ts serves.
 * Inputs are the held-out MNIST digits, each query distinct. Also measured: what parsing one 784-float JSON
 * body costs.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Clipper } from '../src/index.js';
import { serve } from '../src/http/serve.js';
import { resolveServeSettings } from '../src/http/settings.js';
import { formatMs, formatRate } from '../src/load/format.js';
import type { LoadRun } from '../src/load/load-run.js';
import { modelsDir } from '../src/paths.js';
import { httpSweep } from './lib/http-load.js';
import { measureJsonParse } from './lib/json-parse-bench.js';
import { measureWakeupNoise } from './lib/noise.js';
import { startServerProcess } from './lib/server-process.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const reportFile = args.includes('--report') ? args[args.indexOf('--report') + 1] : undefined;
const log = (line: string): void => {
  if (!json) console.log(line);
};

const SLO_MS = 20;
const MODEL = 'mnist-mlp';
const REPLICAS = 2;
const load = { sloMs: SLO_MS, durationS: quick ? 1.5 : 3, warmupS: 1, rates: geometric(500, 120_000, quick ? 1.5 : 1.25) };

function geometric(from: number, to: number, factor: number): number[] {
  const rates: number[] = [];
  for (let r = from; r <= to; r *= factor) rates.push(Math.round(r));
  return rates;
}

async function clipperRuns(): Promise<{ oip: LoadRun; oipBinary: LoadRun; grpc: LoadRun; grpcLeanClient: LoadRun; predict: LoadRun }> {
  const clipper = await Clipper.start();
  await clipper.registerApp({ name: 'bench', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: SLO_MS, cacheMaxBytes: 0 });
  await clipper.deployModel({ name: MODEL, version: '1', path: path.join(modelsDir, MODEL, '1', 'model.onnx'), replicas: REPLICAS });
  await clipper.linkModel('bench', MODEL);
  const settings = resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent']);
  const server = await serve({ ...settings, bundled: false }, { clipper });
  try {
    const oip = await httpSweep('clipper-ts OIP infer', { url: server.queryUrl, protocol: 'oip', model: MODEL }, load, log);
    const oipBinary = await httpSweep('clipper-ts OIP binary', { url: server.queryUrl, protocol: 'oip-binary', model: MODEL }, load, log);
    const grpc = await httpSweep('clipper-ts OIP gRPC', { url: server.queryUrl, protocol: 'oip', model: MODEL }, load, log, { address: server.grpcAddress as string, model: MODEL });
    // The same service from a client a fraction of grpc-js's cost (gRPC framing on node:http2): how much of
    // the gRPC number is the client's, which shares the two cores with the server.
    const grpcLeanClient = await httpSweep('clipper-ts OIP gRPC, h2 client', { url: server.queryUrl, protocol: 'oip', model: MODEL }, load, log, {
      address: server.grpcAddress as string,
      model: MODEL,
      client: 'http2',
    });
    const predict = await httpSweep('clipper-ts Clipper predict', { url: server.queryUrl, protocol: 'predict', app: 'bench', model: MODEL }, load, log);
    return { oip, oipBinary, grpc, grpcLeanClient, predict };
  } finally {
    await server.close();
  }
}

async function naiveRuns(): Promise<{ oip: LoadRun; predict: LoadRun }> {
  const naive = await startServerProcess('naive-server', [MODEL]);
  try {
    const oip = await httpSweep('naive server OIP infer', { url: naive.url, protocol: 'oip', model: MODEL }, load, log);
    const predict = await httpSweep('naive server predict', { url: naive.url, protocol: 'predict', app: 'bench' }, load, log);
    return { oip, predict };
  } finally {
    await naive.stop();
  }
}

/** The bare node:http ceiling, JSON and binary bodies. */
async function ceilingRuns(): Promise<{ json: LoadRun; binary: LoadRun }> {
  const bare = await startServerProcess('bare-server');
  try {
    const json = await httpSweep('bare node:http JSON', { url: bare.url, protocol: 'oip', model: MODEL }, load, log);
    const binary = await httpSweep('bare node:http binary', { url: bare.url, protocol: 'oip-binary', model: MODEL }, load, log);
    return { json, binary };
  } finally {
    await bare.stop();
  }
}

async function main(): Promise<void> {
  log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(', ')} on ${os.cpus().length} cores (above the core count, other work competes)`);
  const noise = await measureWakeupNoise();
  log(`machine noise floor: worker round trip after 1 ms idle p50 ${noise.p50.toFixed(2)} ms, p99 ${noise.p99.toFixed(2)} ms, max ${noise.max.toFixed(2)} ms\n`);
  const parse = await measureJsonParse();
  log(
    `parsing one ${parse.bodyBytes}-byte body of 784 floats: JSON.parse ${parse.jsonParse.toFixed(1)} µs, fastify's parser ${parse.fastifyParser.toFixed(1)} µs, ` +
      `then Float32Array.from ${parse.toFloat32.toFixed(1)} µs\n`,
  );
  const clipper = await clipperRuns();
  const naive = await naiveRuns();
  const ceiling = await ceilingRuns();
  const runs = [clipper.oip, clipper.oipBinary, clipper.grpc, clipper.grpcLeanClient, clipper.predict, naive.oip, naive.predict, ceiling.json, ceiling.binary];
  const best = (run: LoadRun): number => run.best?.achieved ?? 0;
  const ratio = (a: LoadRun, b: LoadRun): number => (best(b) > 0 ? best(a) / best(b) : Number.POSITIVE_INFINITY);
  // Every protocol against the naive server's JSON OIP (what a user would write instead); predict against its predict.
  const ratios = {
    oip: ratio(clipper.oip, naive.oip),
    oipBinary: ratio(clipper.oipBinary, naive.oip),
    grpc: ratio(clipper.grpc, naive.oip),
    predict: ratio(clipper.predict, naive.predict),
  };
  // Not a target: gRPC again, loaded by a cheaper client than grpc-js (see clipperRuns).
  const grpcLeanClient = ratio(clipper.grpcLeanClient, naive.oip);
  const targets = { oip: 3, oipBinary: 5, grpc: 4, predict: 3 };
  // Share of the bare node:http ceiling: JSON protocols of the JSON ceiling, binary ones of the binary ceiling.
  const ceilingShares = {
    oip: ratio(clipper.oip, ceiling.json),
    oipBinary: ratio(clipper.oipBinary, ceiling.binary),
    grpc: ratio(clipper.grpc, ceiling.binary),
    predict: ratio(clipper.predict, ceiling.json),
  };
  if (reportFile !== undefined) {
    const { renderReportHtml } = await import('../src/load/report.js');
    writeFileSync(reportFile, await renderReportHtml(runs));
    log(`wrote ${reportFile}`);
  }
  if (json) {
    console.log(
      JSON.stringify(
        {
          loadAverage: os.loadavg(),
          sloMs: SLO_MS,
          model: MODEL,
          replicas: REPLICAS,
          date: new Date().toISOString(),
          noiseFloorMs: noise,
          jsonParseMicroseconds: parse,
          ratios,
          targets,
          grpcLeanClientRatio: grpcLeanClient,
          ceiling: { json: best(ceiling.json), binary: best(ceiling.binary) },
          ceilingShares,
          runs,
        },
        null,
        2,
      ),
    );
    return;
  }
  console.log(`\nhighest throughput with p99 <= ${SLO_MS} ms (${MODEL}; clipper-ts: ${REPLICAS} replicas, AIMD, cache off)`);
  console.log('server                        queries/s   p99 ms   mean batch   generator cpu');
  for (const run of runs) {
    const at = run.rates.find((r) => r.offered === run.best?.offered);
    console.log(
      `${run.label.padEnd(28)} ${formatRate(best(run)).padStart(10)}  ${formatMs(run.best?.p99 ?? null).padStart(7)}  ${(at?.meanBatch === null || at?.meanBatch === undefined ? '-' : at.meanBatch.toFixed(1)).padStart(11)}  ${`${((at?.generatorCpu ?? 0) * 100).toFixed(0)}%`.padStart(14)}`,
    );
  }
  console.log('\nclipper-ts / naive server (fastify + onnxruntime, JSON), and share of the bare node:http ceiling:');
  for (const key of Object.keys(ratios) as (keyof typeof ratios)[]) {
    console.log(`  ${key.padEnd(10)} ${ratios[key].toFixed(2)}x (target ${targets[key]}x)   ${(ceilingShares[key] * 100).toFixed(0)}% of the ${key === 'oipBinary' || key === 'grpc' ? 'binary' : 'JSON'} ceiling`);
  }
  console.log(`  gRPC from a node:http2 client instead of grpc-js: ${grpcLeanClient.toFixed(2)}x`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
