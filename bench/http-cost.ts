/**
 * `npm run bench:http-cost [-- --json] [-- --rounds N] [-- --requests N] [-- --replicas N]`: what one HTTP query costs each
 * server's main thread, beside the servers that bound it. Each server runs in a process of its own and is
 * driven closed-loop by h2load (HTTP/1.1, 32 connections, one fixed body: a held-out digit) for `--requests`
 * queries after 2,000 of warm-up; the servers take turns, `--rounds` times, so they share the machine's
 * moods. Per run: queries/s, the main thread's CPU per query (from /proc: user + system of the thread whose
 * id is the pid), the whole process's CPU per query, and the mean latency h2load saw.
 *
 * The servers (bench/baselines/): bare node:http (JSON.parse and a small answer: the ceiling), fastify with
 * no model (the framework's floor: what any fastify server spends per request), the naive fastify +
 * onnxruntime server a user would write instead (one session.run per request), and clipper-ts (mnist-mlp,
 * one replica per core the main thread does not need, AIMD, cache off). Protocols:
 * OIP infer with a JSON body, Clipper predict, OIP infer with a binary body (not the naive server's).
 *
 * Closed loop measures cost, not latency under a rate: bench:http is the SLO-bound measure (p99 <= 20 ms).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findH2load, processCpuSeconds } from './lib/h2load.js';
import { requestBodies } from './lib/request-bodies.js';
import { startServerProcess } from './lib/server-process.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const option = (name: string, fallback: number): number => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const ROUNDS = option('--rounds', 2);
const REQUESTS = option('--requests', 30_000);
/** clipper-ts's replicas, passed on as given (default: one per core the main thread does not need). */
const REPLICAS = args.includes('--replicas') ? ['--replicas', String(option('--replicas', 1))] : [];
const CONNECTIONS = 32;
const log = (line: string): void => {
  if (!json) console.log(line);
};

const h2load = findH2load();
if (h2load === undefined) {
  console.error('bench:http-cost needs h2load (Debian/Ubuntu: apt-get install nghttp2-client)');
  process.exit(1);
}

type Protocol = 'oip' | 'predict' | 'binary';
interface Server {
  name: string;
  module: string;
  args: string[];
  protocols: Protocol[];
}
const servers: Server[] = [
  { name: 'bare node:http', module: 'bare-server', args: [], protocols: ['oip', 'predict', 'binary'] },
  { name: 'fastify, no model', module: 'fastify-server', args: [], protocols: ['oip', 'predict', 'binary'] },
  { name: 'naive fastify + onnxruntime', module: 'naive-server', args: ['mnist-mlp'], protocols: ['oip', 'predict'] },
  { name: 'clipper-ts', module: 'clipper-server', args: REPLICAS, protocols: ['oip', 'predict', 'binary'] },
];

const bodies = requestBodies('mnist-mlp');
const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-http-cost-'));
const files = { oip: path.join(dir, 'oip'), predict: path.join(dir, 'predict'), binary: path.join(dir, 'binary') };
writeFileSync(files.oip, bodies.oip);
writeFileSync(files.predict, bodies.predict);
writeFileSync(files.binary, bodies.binary);
const targets: Record<Protocol, { path: string; headers: string[] }> = {
  oip: { path: '/v2/models/mnist-mlp/infer', headers: ['content-type: application/json'] },
  predict: { path: '/bench/predict', headers: ['content-type: application/json'] },
  binary: { path: '/v2/models/mnist-mlp/infer', headers: ['content-type: application/octet-stream', `inference-header-content-length: ${bodies.binaryHeaderLength}`] },
};

interface Run {
  server: string;
  protocol: Protocol;
  round: number;
  queriesPerSecond: number;
  succeeded: number;
  requests: number;
  mainThreadMicrosecondsPerQuery: number | null;
  processMicrosecondsPerQuery: number | null;
  meanLatencyMs: number | null;
}

/** h2load closed-loop; its summary lines parsed. */
function drive(origin: string, protocol: Protocol, requests: number): { queriesPerSecond: number; succeeded: number; meanLatencyMs: number | null } {
  const target = targets[protocol];
  const result = spawnSync(
    (h2load as { path: string }).path,
    ['--h1', '-n', String(requests), '-c', String(CONNECTIONS), '-d', files[protocol], ...target.headers.flatMap((h) => ['-H', h]), `${origin}${target.path}`],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const out = result.stdout ?? '';
  const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  const codes = /status codes: (\d+) 2xx/.exec(out);
  // "time for request:  min  max  mean  sd  +/- sd", each with its unit.
  const time = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out);
  const scale = { us: 1e-3, ms: 1, s: 1000 } as const;
  return {
    queriesPerSecond: rate === null ? 0 : Number(rate[1]),
    succeeded: codes === null ? 0 : Number(codes[1]),
    meanLatencyMs: time === null ? null : Number(time[1]) * scale[time[2] as keyof typeof scale],
  };
}

const runs: Run[] = [];
const loadAverage = os.loadavg();
log(`closed loop, ${CONNECTIONS} connections, ${REQUESTS} queries per run after 2,000 of warm-up, ${ROUNDS} rounds (${h2load.version}; load average ${loadAverage.map((l) => l.toFixed(2)).join(' ')})`);
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const server of servers) {
      const running = await startServerProcess(server.module, server.args);
      const pid = running.child.pid as number;
      try {
        for (const protocol of server.protocols) {
          drive(running.url, protocol, 2000);
          const mainBefore = processCpuSeconds(pid, pid);
          const processBefore = processCpuSeconds(pid);
          const measured = drive(running.url, protocol, REQUESTS);
          const mainAfter = processCpuSeconds(pid, pid);
          const processAfter = processCpuSeconds(pid);
          const perQuery = (before: number | undefined, after: number | undefined): number | null =>
            before === undefined || after === undefined || measured.succeeded === 0 ? null : Math.round(((after - before) / measured.succeeded) * 1e7) / 10;
          const run: Run = {
            server: server.name,
            protocol,
            round,
            requests: REQUESTS,
            ...measured,
            mainThreadMicrosecondsPerQuery: perQuery(mainBefore, mainAfter),
            processMicrosecondsPerQuery: perQuery(processBefore, processAfter),
          };
          runs.push(run);
          log(
            `  round ${round}  ${server.name.padEnd(28)} ${protocol.padEnd(8)} ${run.queriesPerSecond.toFixed(0).padStart(6)}/s  ` +
              `main thread ${String(run.mainThreadMicrosecondsPerQuery ?? '-').padStart(6)} µs/query  process ${String(run.processMicrosecondsPerQuery ?? '-').padStart(6)} µs/query  ` +
              `ok ${run.succeeded}/${REQUESTS}  mean ${run.meanLatencyMs?.toFixed(2) ?? '-'} ms`,
          );
        }
      } finally {
        await running.stop();
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** The median over rounds of one server's runs on one protocol. */
function median(server: string, protocol: Protocol, key: 'queriesPerSecond' | 'mainThreadMicrosecondsPerQuery'): number | null {
  const values = runs.filter((r) => r.server === server && r.protocol === protocol && r[key] !== null).map((r) => r[key] as number).sort((a, b) => a - b);
  if (values.length === 0) return null;
  const mid = values.length >> 1;
  return values.length % 2 === 1 ? (values[mid] as number) : ((values[mid - 1] as number) + (values[mid] as number)) / 2;
}
const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : Math.round((a / b) * 100) / 100);
const summary = Object.fromEntries(
  (['oip', 'predict', 'binary'] as Protocol[]).map((protocol) => [
    protocol,
    {
      clipperOverNaiveThroughput: ratio(median('clipper-ts', protocol, 'queriesPerSecond'), median('naive fastify + onnxruntime', protocol, 'queriesPerSecond')),
      clipperShareOfCeiling: ratio(median('clipper-ts', protocol, 'queriesPerSecond'), median('bare node:http', protocol, 'queriesPerSecond')),
      clipperMainThreadOverFastifyFloor: ratio(median('clipper-ts', protocol, 'mainThreadMicrosecondsPerQuery'), median('fastify, no model', protocol, 'mainThreadMicrosecondsPerQuery')),
      mainThreadMicrosecondsPerQuery: Object.fromEntries(servers.map((s) => [s.name, median(s.name, protocol, 'mainThreadMicrosecondsPerQuery')])),
      queriesPerSecond: Object.fromEntries(servers.map((s) => [s.name, median(s.name, protocol, 'queriesPerSecond')])),
    },
  ]),
);
if (json) console.log(JSON.stringify({ date: new Date().toISOString(), loadAverage, generator: h2load.version, connections: CONNECTIONS, requests: REQUESTS, rounds: ROUNDS, summary, runs }, null, 2));
else {
  log('\nmedians over rounds (clipper-ts over the naive server in queries/s; its main thread per query over fastify with no model):');
  for (const [protocol, s] of Object.entries(summary)) {
    log(`  ${protocol.padEnd(8)} throughput x${s.clipperOverNaiveThroughput ?? '-'} of naive, ${s.clipperShareOfCeiling === null ? '-' : `${Math.round(s.clipperShareOfCeiling * 100)}%`} of bare node:http; main thread x${s.clipperMainThreadOverFastifyFloor ?? '-'} of fastify's floor`);
  }
}
