/**
 * `npm run bench:http [-- --json] [-- --quick] [-- --report FILE.html] [-- --generator node|h2load]`: clipper-ts
 * over HTTP and gRPC against the server a user would write instead, side by side in one run (issue 4's benchmark).
 *
 * Open-loop load at rising rates; the measure is the highest achieved throughput whose p99 stays within 20 ms
 * (refusals, default answers and errors count as misses). The load generator:
 *   - h2load (nghttp2's, in C; `apt-get install nghttp2-client`), the default when it is on PATH
 *     (bench/lib/h2load.ts): HTTP/1.1 for the HTTP endpoints, HTTP/2 for gRPC, one fixed body (one digit) per
 *     protocol; misses it cannot see (gRPC errors come back as HTTP 200, Clipper's default output too) are
 *     counted by clipper-ts itself, which runs in this process;
 *   - else the Node generator in a process of its own (undici; @grpc/grpc-js for gRPC, plus a hand-framed
 *     node:http2 client), the distinct held-out MNIST digits, each query distinct. Its gRPC client costs
 *     84-115 µs of CPU per call and pauses for young GCs (bench/grpc-isolation/), so its gRPC numbers measure it.
 * The servers:
 *   - clipper-ts, started here by `serve()` on ephemeral ports: mnist-mlp, one replica per core the main thread does not need (`--replicas N`; one onnxruntime thread
 *     each), AIMD batching, an application with the cache off; queried by OIP infer with a JSON body, by OIP
 *     infer with the binary tensor data extension (binary output asked back), by the OIP gRPC service's
 *     ModelInfer (raw_input_contents) and by Clipper's predict;
 *   - the naive server (bench/baselines/naive-server.ts) in a process of its own: fastify plus
 *     onnxruntime-node, one session.run per request, onnxruntime's default session options, JSON bodies.
 *     Every ratio is clipper-ts (one protocol) over this server's OIP JSON (predict: its predict);
 *   - the ceiling (bench/baselines/bare-server.ts): bare node:http that parses a JSON body and answers, or
 *     gathers a binary body and answers, with no framework and no model. Each protocol's share of it says
 *     how much of what one Node process could answer at all clipper-ts serves.
 * Also measured: what parsing one 784-float JSON body costs; with h2load, per rate, h2load's CPU, the server's
 * CPU and (clipper-ts) its main thread's event-loop utilisation.
 */
import { writeFileSync } from 'node:fs';
import { connect } from 'node:http2';
import os from 'node:os';
import { Clipper } from '../src/index.js';
import { formatMs, formatRate } from '../src/load/format.js';
import type { LoadRun } from '../src/load/load-run.js';
import { findH2load, h2loadSweep, type H2loadTarget, type ServerOutcomes } from './lib/h2load.js';
import { httpSweep } from './lib/http-load.js';
import { measureJsonParse } from './lib/json-parse-bench.js';
import { measureWakeupNoise } from './lib/noise.js';
import { startServerProcess } from './lib/server-process.js';
import { benchReplicas, serveBenchClipper } from './lib/bench-clipper.js';
import { requestBodies } from './lib/request-bodies.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const reportFile = args.includes('--report') ? args[args.indexOf('--report') + 1] : undefined;
const log = (line: string): void => {
  if (!json) console.log(line);
};

const SLO_MS = 20;
const MODEL = 'mnist-mlp';
/** `--replicas N`, else one per core the main thread does not need (see benchReplicas). */
const REPLICAS = benchReplicas(args);
const load = { sloMs: SLO_MS, durationS: quick ? 1.5 : 3, warmupS: 1, rates: geometric(500, 120_000, quick ? 1.5 : 1.25) };

/**
 * The load generator: h2load (nghttp2's, in C) when it is on PATH, else the Node one (undici, @grpc/grpc-js),
 * or as `--generator node|h2load` says.
 */
const generatorFlag = args.includes('--generator') ? args[args.indexOf('--generator') + 1] : undefined;
if (generatorFlag !== undefined && generatorFlag !== 'node' && generatorFlag !== 'h2load') {
  console.error(`--generator must be node or h2load; got ${generatorFlag}`);
  process.exit(2);
}
const h2load = generatorFlag === 'node' ? undefined : findH2load();
if (generatorFlag === 'h2load' && h2load === undefined) {
  console.error('--generator h2load: h2load is not on PATH (Debian/Ubuntu: apt-get install nghttp2-client)');
  process.exit(2);
}
if (generatorFlag === undefined && h2load === undefined) {
  console.error(
    'bench:http: h2load is not on PATH (Debian/Ubuntu: apt-get install nghttp2-client), so the load comes from the Node generator ' +
      '(undici, @grpc/grpc-js) on the same cores: its gRPC client alone misses a 20 ms p99 from ~1,000 calls/s (bench/grpc-isolation/).',
  );
}
const generator: 'h2load' | 'node' = h2load === undefined ? 'node' : 'h2load';

function geometric(from: number, to: number, factor: number): number[] {
  const rates: number[] = [];
  for (let r = from; r <= to; r *= factor) rates.push(Math.round(r));
  return rates;
}

const bodies = requestBodies(MODEL);

type Protocol = 'oip' | 'oip-binary' | 'grpc' | 'predict';

/** A server's endpoint to sweep, for either generator. */
interface Endpoint {
  /** The HTTP origin, or for gRPC the service's host:port. */
  address: string;
  protocol: Protocol;
  /** Clipper predict: the application. */
  app?: string;
  /** The server's process, for its CPU (h2load only). */
  server: 'self' | number;
  /** clipper-ts's own counts of what it answered. */
  outcomes?: () => ServerOutcomes;
}

function h2loadTarget(e: Endpoint): H2loadTarget {
  const common = { ...(e.outcomes === undefined ? {} : { serverOutcomes: e.outcomes }), serverProcess: e.server };
  switch (e.protocol) {
    case 'oip':
      return { origin: e.address, path: `/v2/models/${MODEL}/infer`, body: bodies.oip, headers: { 'content-type': 'application/json' }, h2: false, ...common };
    case 'oip-binary':
      return {
        origin: e.address,
        path: `/v2/models/${MODEL}/infer`,
        body: bodies.binary,
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(bodies.binaryHeaderLength) },
        h2: false,
        ...common,
      };
    case 'predict':
      return { origin: e.address, path: `/${e.app ?? 'bench'}/predict`, body: bodies.predict, headers: { 'content-type': 'application/json' }, h2: false, ...common };
    case 'grpc':
      return {
        origin: `http://${e.address}`,
        path: '/inference.GRPCInferenceService/ModelInfer',
        body: bodies.grpc,
        headers: { 'content-type': 'application/grpc', te: 'trailers' },
        h2: true,
        ...common,
      };
  }
}

/** Sends the h2load target's body once and checks the answer (status, grpc-status, Clipper's default flag). */
async function checkTarget(t: H2loadTarget): Promise<void> {
  if (t.h2) {
    const session = connect(t.origin);
    try {
      const grpcStatus = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': t.path, ...t.headers });
        let status: string | undefined;
        let bytes = 0;
        stream.on('response', (h) => (status ??= h['grpc-status'] as string | undefined));
        stream.on('trailers', (h) => (status ??= h['grpc-status'] as string | undefined));
        stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
        stream.on('end', () => resolve(`${status ?? 'none'} (${bytes} bytes)`));
        stream.on('error', reject);
        stream.end(t.body);
      });
      if (!grpcStatus.startsWith('0 ')) throw new Error(`${t.origin}${t.path} answered grpc-status ${grpcStatus} to the h2load body`);
    } finally {
      session.close();
    }
    return;
  }
  const response = await fetch(`${t.origin}${t.path}`, { method: 'POST', headers: t.headers, body: new Uint8Array(t.body) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${t.origin}${t.path} answered ${response.status} to the h2load body: ${text.slice(0, 200)}`);
  if (t.path.endsWith('/predict') && (JSON.parse(text) as { default?: boolean }).default !== false) throw new Error(`${t.origin}${t.path} answered the default output: ${text}`);
}

async function sweep(label: string, e: Endpoint): Promise<LoadRun> {
  if (h2load !== undefined) {
    const target = h2loadTarget(e);
    await checkTarget(target);
    return h2loadSweep(h2load.path, label, target, { ...load, lateThresholdMs: SLO_MS / 2, maxLateShare: 0.01, stopAfterMisses: 3, retries: 1 }, log);
  }
  if (e.protocol === 'grpc') return httpSweep(label, { url: 'http://unused', protocol: 'oip', model: MODEL }, load, log, { address: e.address, model: MODEL });
  return httpSweep(label, { url: e.address, protocol: e.protocol, model: MODEL, ...(e.app === undefined ? {} : { app: e.app }) }, load, log);
}

/**
 * clipper-ts's own count of what it answered, for misses h2load cannot see (a gRPC error is an HTTP 200, so is
 * Clipper's default output): `infer` (OIP over HTTP and gRPC) and `predict` on the instance the servers call,
 * wrapped to count outcomes; rows and batches from the replicas' counters.
 */
function countOutcomes(clipper: Clipper): () => ServerOutcomes {
  const counts = { answered: 0, defaults: 0, failed: 0 };
  const infer = clipper.infer.bind(clipper);
  clipper.infer = async (...a: Parameters<Clipper['infer']>) => {
    try {
      const outputs = await infer(...a);
      counts.answered++;
      return outputs;
    } catch (error) {
      counts.failed++;
      throw error;
    }
  };
  const predict = clipper.predict.bind(clipper);
  clipper.predict = async (...a: Parameters<Clipper['predict']>) => {
    try {
      const answer = await predict(...a);
      if (answer.isDefault) counts.defaults++;
      else counts.answered++;
      return answer;
    } catch (error) {
      counts.failed++;
      throw error;
    }
  };
  return () => {
    let rows = 0;
    let batches = 0;
    for (const m of clipper.getModels()) for (const v of m.versions) for (const r of v.replicas) {
      rows += r.counters.rows;
      batches += r.counters.batches;
    }
    return { ...counts, rows, batches };
  };
}

async function clipperRuns(): Promise<{ oip: LoadRun; oipBinary: LoadRun; grpc: LoadRun; grpcLeanClient: LoadRun | undefined; predict: LoadRun }> {
  const { clipper, server } = await serveBenchClipper({ model: MODEL, replicas: REPLICAS, sloMs: SLO_MS });
  // Counted from here on: the query server looks `infer` and `predict` up on the instance per request.
  const outcomes = generator === 'h2load' ? countOutcomes(clipper) : undefined;
  const at = (protocol: Protocol, extra: Partial<Endpoint> = {}): Endpoint => ({
    address: protocol === 'grpc' ? (server.grpcAddress as string) : server.queryUrl,
    protocol,
    server: 'self',
    ...(outcomes === undefined ? {} : { outcomes }),
    ...extra,
  });
  try {
    const oip = await sweep('clipper-ts OIP infer', at('oip'));
    const oipBinary = await sweep('clipper-ts OIP binary', at('oip-binary'));
    const grpc = await sweep(`clipper-ts OIP gRPC${generator === 'node' ? ' (grpc-js client)' : ''}`, at('grpc'));
    // Node generator only: the same service from a client a fraction of grpc-js's cost (gRPC framing on
    // node:http2), to tell how much of the gRPC number is the client's, which shares the two cores with the server.
    const grpcLeanClient =
      generator === 'node'
        ? await httpSweep('clipper-ts OIP gRPC, h2 client', { url: server.queryUrl, protocol: 'oip', model: MODEL }, load, log, {
            address: server.grpcAddress as string,
            model: MODEL,
            client: 'http2',
          })
        : undefined;
    const predict = await sweep('clipper-ts Clipper predict', at('predict', { app: 'bench' }));
    return { oip, oipBinary, grpc, grpcLeanClient, predict };
  } finally {
    await server.close();
  }
}

async function naiveRuns(): Promise<{ oip: LoadRun; predict: LoadRun }> {
  const naive = await startServerProcess('naive-server', [MODEL]);
  try {
    const server = naive.child.pid as number;
    const oip = await sweep('naive server OIP infer', { address: naive.url, protocol: 'oip', server });
    const predict = await sweep('naive server predict', { address: naive.url, protocol: 'predict', app: 'bench', server });
    return { oip, predict };
  } finally {
    await naive.stop();
  }
}

/** The bare node:http ceiling, JSON and binary bodies. */
async function ceilingRuns(): Promise<{ json: LoadRun; binary: LoadRun }> {
  const bare = await startServerProcess('bare-server');
  try {
    const server = bare.child.pid as number;
    const json = await sweep('bare node:http JSON', { address: bare.url, protocol: 'oip', server });
    const binary = await sweep('bare node:http binary', { address: bare.url, protocol: 'oip-binary', server });
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
  const runs = [clipper.oip, clipper.oipBinary, clipper.grpc, clipper.grpcLeanClient, clipper.predict, naive.oip, naive.predict, ceiling.json, ceiling.binary].filter(
    (run): run is LoadRun => run !== undefined,
  );
  const best = (run: LoadRun): number => run.best?.achieved ?? 0;
  // Nothing over nothing (both sweeps failed from their first rate) is no ratio: NaN, null in the JSON.
  const ratio = (a: LoadRun, b: LoadRun): number => (best(b) > 0 ? best(a) / best(b) : best(a) > 0 ? Number.POSITIVE_INFINITY : Number.NaN);
  // Every protocol against the naive server's JSON OIP (what a user would write instead); predict against its predict.
  const ratios = {
    oip: ratio(clipper.oip, naive.oip),
    oipBinary: ratio(clipper.oipBinary, naive.oip),
    grpc: ratio(clipper.grpc, naive.oip),
    predict: ratio(clipper.predict, naive.predict),
  };
  // Not a target: gRPC again, loaded by a cheaper client than grpc-js (Node generator only; see clipperRuns).
  const grpcLeanClient = clipper.grpcLeanClient === undefined ? null : ratio(clipper.grpcLeanClient, naive.oip);
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
          generator: { name: generator, ...(h2load === undefined ? {} : { version: h2load.version }) },
          noiseFloorMs: noise,
          jsonParseMicroseconds: parse,
          ratios,
          targets,
          grpcLeanClientRatio: grpcLeanClient,
          ceiling: { json: best(ceiling.json), binary: best(ceiling.binary) },
          ceilingShares,
          best: bestSummary(runs),
          runs,
        },
        null,
        2,
      ),
    );
    return;
  }
  console.log(`\nhighest throughput with p99 <= ${SLO_MS} ms (${MODEL}; clipper-ts: ${REPLICAS} replicas, AIMD, cache off)`);
  console.log(`load generator: ${generator === 'h2load' ? (h2load?.version ?? 'h2load') : 'Node (undici, @grpc/grpc-js)'}`);
  console.log('server                        queries/s   p99 ms   mean batch   generator cpu   server cpu   main thread busy');
  for (const b of bestSummary(runs)) {
    const pct = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(0)}%`);
    console.log(
      `${b.label.padEnd(28)} ${formatRate(b.achieved).padStart(10)}  ${formatMs(b.p99).padStart(7)}  ${(b.meanBatch === null ? '-' : b.meanBatch.toFixed(1)).padStart(11)}  ${pct(b.generatorCpu).padStart(14)}  ${pct(b.serverCpu).padStart(11)}  ${pct(b.serverMainThreadBusy).padStart(17)}`,
    );
  }
  console.log('\nclipper-ts / naive server (fastify + onnxruntime, JSON), and share of the bare node:http ceiling:');
  for (const key of Object.keys(ratios) as (keyof typeof ratios)[]) {
    console.log(`  ${key.padEnd(10)} ${ratios[key].toFixed(2)}x (target ${targets[key]}x)   ${(ceilingShares[key] * 100).toFixed(0)}% of the ${key === 'oipBinary' || key === 'grpc' ? 'binary' : 'JSON'} ceiling`);
  }
  if (grpcLeanClient !== null) console.log(`  gRPC from a node:http2 client instead of grpc-js: ${grpcLeanClient.toFixed(2)}x`);
}

/**
 * Each run's best rate, with what the generator and the server used there (CPU in cores; the server's
 * main-thread busy share for clipper-ts, h2load only), and the generator's highest CPU over the whole sweep.
 */
function bestSummary(runs: readonly LoadRun[]) {
  return runs.map((run) => {
    const at = run.rates.find((r) => r.offered === run.best?.offered && r.meetsSlo && r.valid) as
      | (LoadRun['rates'][number] & { serverCpu?: number | null; serverMainThreadBusy?: number | null; serverMainThreadCpu?: number | null })
      | undefined;
    return {
      label: run.label,
      achieved: run.best?.achieved ?? 0,
      p99: run.best?.p99 ?? null,
      meanBatch: at?.meanBatch ?? null,
      generatorCpu: at?.generatorCpu ?? null,
      serverCpu: at?.serverCpu ?? null,
      serverMainThreadBusy: at?.serverMainThreadBusy ?? null,
      serverMainThreadCpu: at?.serverMainThreadCpu ?? null,
      generatorCpuMax: Math.max(0, ...run.rates.map((r) => r.generatorCpu ?? 0)),
    };
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
