/**
 * `npm run bench:agreement [-- --rate N] [-- --seconds S] [-- --delay-ms D] [-- --json]`: does the load-test
 * harness measure what independent tools measure? Each tool drives the same endpoint at the same fixed rate
 * below saturation, with the same body, from a process of its own, one after the other: the harness,
 * autocannon, then `hey` (Go, from Debian's packages: `apt-get install -y hey`) when it is installed.
 * Agreement means throughput and p50 within 10%. Two endpoints: clipper-ts's OIP infer (mnist-mlp, 2
 * replicas, started here by `serve()`), and a calibration server that answers after a fixed delay.
 *
 * How the tools differ, which the comparison has to live with: the harness sends on an even schedule (open
 * loop); autocannon's `overallRate` lets each connection send its share of a second back to back at the start
 * of that second; hey paces each worker with a ticker.
 */
import { execFile, fork } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { promisify } from 'node:util';
import { Clipper } from '../src/index.js';
import { serve } from '../src/http/serve.js';
import { resolveServeSettings } from '../src/http/settings.js';
import { runGeneratorProcess } from '../src/load/fork-generator.js';
import { resolveLoadSettings } from '../src/load/load-runner.js';
import { digit, IMAGE_SIZE, loadMnist } from '../src/data/mnist-data.js';
import { modelsDir } from '../src/paths.js';
import type { AutocannonJob, AutocannonReport } from './lib/autocannon-child.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const json = args.includes('--json');
const RATE = flag('--rate', 500);
const SECONDS = flag('--seconds', 10);
const DELAY_MS = flag('--delay-ms', 5);
const MODEL = 'mnist-mlp';
const log = (line: string): void => {
  if (!json) console.log(line);
};

interface Measured {
  tool: string;
  throughput: number;
  p50: number;
  p99: number;
  note: string;
}

function runAutocannon(job: AutocannonJob): Promise<AutocannonReport> {
  const file = fileURLToPath(new URL(`./lib/autocannon-child${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
  const child = fork(file, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m: AutocannonReport | { error: string }) => ('error' in m ? reject(new Error(m.error)) : resolve(m)));
    child.once('exit', (code) => code !== 0 && reject(new Error(`autocannon exited with ${code}`)));
    child.send(job);
  });
}

/** hey's summary: "Requests/sec: N" and the latency distribution's "50% in X secs". */
async function runHey(url: string, bodyFile: string, workers: number): Promise<Measured | undefined> {
  try {
    const { stdout } = await promisify(execFile)('hey', ['-z', `${SECONDS}s`, '-c', String(workers), '-q', String(RATE / workers), '-m', 'POST', '-T', 'application/json', '-D', bodyFile, url], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const number = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? Number.NaN);
    return {
      tool: `hey (${workers} worker${workers === 1 ? '' : 's'} x ${RATE / workers}/s)`,
      throughput: number(/Requests\/sec:\s+([\d.]+)/),
      p50: number(/50% in ([\d.]+) secs/) * 1000,
      p99: number(/99% in ([\d.]+) secs/) * 1000,
      note: 'hey prints 0.1 ms resolution',
    };
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * A calibration endpoint that answers every request after a fixed delay, whatever else is in flight: the true
 * latency is known, and large enough that the tools' own client costs (a tenth of a millisecond or so) stay
 * well inside 10%.
 */
async function delayServer(delayMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => setTimeout(() => response.end('{"outputs":[]}'), delayMs));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The three tools, one after the other, on one endpoint; concurrency for tools that need it to keep the rate. */
async function measureAll(origin: string, model: string, body: string, input: Float32Array, concurrency: number): Promise<Measured[]> {
  const url = `${origin}/v2/models/${model}/infer`;
  const results: Measured[] = [];
  const { outcome } = await runGeneratorProcess({
    http: { url: origin, protocol: 'oip', model, connections: 16 },
    inputs: { repeatShare: 0, seed: 1, matrix: { values: Float32Array.from(input), width: IMAGE_SIZE, tagRepeats: false } },
    load: resolveLoadSettings({ rates: [RATE], durationS: SECONDS, warmupS: 2, stopAfterMisses: 0, sloMs: 1000 }),
  });
  const r = outcome.rates[0];
  if (r === undefined) throw new Error('the harness measured nothing');
  results.push({ tool: 'clipper-ts loadtest (open loop, even spacing)', throughput: r.achieved, p50: r.latency.p50 ?? Number.NaN, p99: r.latency.p99 ?? Number.NaN, note: `late sends ${r.late}, errors ${r.errors + r.refused}` });

  const ac = await runAutocannon({ url, body, rate: RATE, durationS: SECONDS, connections: concurrency });
  results.push({
    tool: `autocannon (${concurrency} connection${concurrency === 1 ? '' : 's'}, overallRate)`,
    throughput: ac.requestsPerSecond,
    p50: ac.fine.p50,
    p99: ac.fine.p99,
    note: `its own histogram (whole ms): p50 ${ac.own.p50} ms, p99 ${ac.own.p99} ms; errors ${ac.errors}, non-2xx ${ac.non2xx}`,
  });

  const bodyFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'agreement-')), 'body.json');
  writeFileSync(bodyFile, body);
  const hey = await runHey(url, bodyFile, concurrency);
  if (hey === undefined) log('hey is not installed (apt-get install -y hey): skipped');
  else results.push(hey);
  return results;
}

interface Compared extends Measured {
  throughputRatio: number;
  p50Ratio: number;
  agrees?: boolean;
}

function compare(results: Measured[]): Compared[] {
  const reference = results[0] as Measured;
  return results.map((m, i) => {
    const throughputRatio = m.throughput / reference.throughput;
    const p50Ratio = m.p50 / reference.p50;
    return { ...m, throughputRatio, p50Ratio, ...(i === 0 ? {} : { agrees: Math.abs(throughputRatio - 1) <= 0.1 && Math.abs(p50Ratio - 1) <= 0.1 }) };
  });
}

function print(title: string, rows: Compared[]): void {
  console.log(`\n${title}`);
  console.log('tool                                            queries/s   p50 ms   p99 ms   vs harness: throughput   p50');
  for (const [i, m] of rows.entries()) {
    console.log(
      `${m.tool.padEnd(46)} ${m.throughput.toFixed(1).padStart(10)}  ${m.p50.toFixed(3).padStart(7)}  ${m.p99.toFixed(3).padStart(7)}  ` +
        `${i === 0 ? '' : `${m.throughputRatio.toFixed(3).padStart(22)}  ${m.p50Ratio.toFixed(3)}  ${m.agrees === true ? 'agree within 10%' : 'DISAGREE'}`}`,
    );
    console.log(`  ${m.note}`);
  }
}

async function main(): Promise<void> {
  const { test } = loadMnist();
  const input = digit(test, 0);
  const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, IMAGE_SIZE], datatype: 'FP32', data: Array.from(input) }] });
  log(`${RATE} queries/s for ${SECONDS} s per tool, the same ${Buffer.byteLength(body)}-byte body every time`);

  const clipper = await Clipper.start();
  await clipper.deployModel({ name: MODEL, version: '1', path: path.join(modelsDir, MODEL, '1', 'model.onnx'), replicas: 2 });
  const server = await serve({ ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent']), bundled: false }, { clipper });
  let served: Compared[];
  try {
    // One request at a time, so no tool's pacing makes a queue that another's does not.
    served = compare(await measureAll(server.queryUrl, MODEL, body, input, 1));
  } finally {
    await server.close();
  }
  const delayed = await delayServer(DELAY_MS);
  let calibrated: Compared[];
  try {
    calibrated = compare(await measureAll(delayed.url, 'delay', body, input, 10));
  } finally {
    await delayed.close();
  }
  if (json) {
    console.log(JSON.stringify({ date: new Date().toISOString(), rate: RATE, seconds: SECONDS, delayMs: DELAY_MS, clipperOipInfer: served, fixedDelayServer: calibrated }, null, 2));
    return;
  }
  print(`clipper-ts OIP infer (${MODEL}, 2 replicas)`, served);
  print(`calibration: a server that answers every request after ${DELAY_MS} ms`, calibrated);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
