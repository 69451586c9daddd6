import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { runGeneratorProcess } from '../../src/load/fork-generator.js';
import { resolveLoadSettings } from '../../src/load/load-runner.js';
import type { LoadRun } from '../../src/load/load-run.js';
import { projectRoot } from '../../src/paths.js';

// A tiny server on a real socket, speaking just enough of clipper-ts's API: every 10th predict answer is the
// default output, every 20th query is refused with 503, and /metrics says every batch held 4 rows.

const run = promisify(execFile);
const cli = path.join(projectRoot, 'dist', 'src', 'cli.js');

interface Seen {
  predict: number;
  infer: number;
  badBodies: number;
}

let server: Server;
let url: string;
const seen: Seen = { predict: 0, infer: 0, badBodies: 0 };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'loadtest-'));

function body(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

test.before(async () => {
  let queries = 0;
  server = createServer(async (request, response) => {
    if (request.method === 'GET' && request.url === '/metrics') {
      const batches = Math.floor(queries / 4);
      response.end(
        `clipper_batch_size_sum{model="m",version="1"} ${batches * 4}\nclipper_batch_size_count{model="m",version="1"} ${batches}\n` +
          `clipper_cache_hits_total{app="digits"} 0\nclipper_cache_misses_total{app="digits"} ${queries}\n`,
      );
      return;
    }
    const text = await body(request);
    const n = ++queries;
    let input: unknown;
    try {
      const parsed = JSON.parse(text) as { input?: unknown; inputs?: { data: unknown; shape: number[] }[] };
      input = request.url === '/digits/predict' ? parsed.input : parsed.inputs?.[0]?.data;
    } catch {
      input = undefined;
    }
    if (!Array.isArray(input) || input.length !== 784 || !input.every((v) => typeof v === 'number' && v >= 0 && v <= 1)) seen.badBodies++;
    if (n % 20 === 0) {
      response.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' });
      response.end('{"error":"overloaded","code":"OVERLOADED"}');
      return;
    }
    response.setHeader('content-type', 'application/json');
    if (request.url === '/digits/predict') {
      seen.predict++;
      response.end(JSON.stringify({ query_id: n, output: 7, default: n % 10 === 0 }));
    } else {
      seen.infer++;
      response.end('{"model_name":"m","outputs":[]}');
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after.always(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(tmp, { recursive: true, force: true });
});

test.serial('the generator runs in a process of its own, sends real MNIST bodies, and counts defaults, refusals and batches', async (t) => {
  const rates: number[] = [];
  const { outcome, target, pid } = await runGeneratorProcess(
    {
      http: { url, protocol: 'predict', app: 'digits', model: 'm', connections: 8 },
      inputs: { repeatShare: 0, seed: 1 },
      load: resolveLoadSettings({ rates: [100, 200], durationS: 0.5, warmupS: 0, stopAfterMisses: 0, sloMs: 1000, sampleIntervalMs: 100 }),
    },
    { onRate: (r) => rates.push(r.offered) },
  );
  t.is(target, `${url}/digits/predict`);
  t.not(pid, process.pid);
  t.deepEqual(rates, [100, 200]);
  t.is(outcome.rates.length, 2);
  const [a, b] = outcome.rates;
  t.is(a?.sent, 50);
  t.is(b?.sent, 100);
  t.is(seen.badBodies, 0, 'every body held 784 pixel values');
  t.is(seen.predict + (a?.refused ?? 0) + (b?.refused ?? 0), 150);
  const total = (k: 'defaults' | 'refused' | 'ok'): number => (a?.[k] ?? 0) + (b?.[k] ?? 0);
  t.is(total('refused'), Math.floor(150 / 20));
  t.is(total('defaults') + total('refused') + total('ok'), 150);
  t.true(total('defaults') >= 7 && total('defaults') <= 8, `defaults ${total('defaults')}`);
  t.is(a?.meanBatch, 4, 'mean batch from /metrics');
  t.is(a?.cacheHitRatio, 0);
  t.true((a?.generatorCpu ?? 0) > 0);
  t.true(outcome.timeline.length >= 2);
});

test.serial('clipper-ts loadtest prints JSON, saves the run and an HTML report; --compare reads runs back', async (t) => {
  const out = path.join(tmp, 'run.json');
  const report = path.join(tmp, 'report.html');
  const svg = path.join(tmp, 'report.svg');
  const { stdout } = await run(
    process.execPath,
    [cli, 'loadtest', '--target', url, '--protocol', 'oip', '--model', 'm', '--rate', '150', '--duration', '0.5', '--warmup', '0.2', '--warmup-rate', '50', '--slo-ms', '1000', '--json', '--out', out, '--report', report, '--label', 'tiny'],
    { cwd: projectRoot, timeout: 60_000 },
  );
  const printed = JSON.parse(stdout) as LoadRun;
  t.is(printed.format, 'clipper-ts-loadtest/1');
  t.is(printed.label, 'tiny');
  t.is(printed.target, `${url}/v2/models/m/infer`);
  t.is(printed.rates[0]?.offered, 150);
  t.is(printed.rates[0]?.sent, 75);
  t.is(printed.settings.warmupRate, 50, 'the warm-up rate is the one asked for');
  t.deepEqual(JSON.parse(readFileSync(out, 'utf8')), printed);
  const html = readFileSync(report, 'utf8');
  t.true(html.includes('<svg') && html.includes('tiny'));

  const compared = await run(process.execPath, [cli, 'loadtest', '--compare', out, out, '--report', svg], { cwd: projectRoot, timeout: 60_000 });
  t.regex(compared.stdout, /\[1\] tiny: /);
  t.regex(compared.stdout, /\[2\] tiny: /);
  t.regex(compared.stdout, /^150\s/m);
  t.true(readFileSync(svg, 'utf8').startsWith('<svg'));
});

test.serial('clipper-ts loadtest --target api drives the programmatic API in its own process: real models, batch sizes per query', async (t) => {
  const before = seen.predict + seen.infer;
  const { stdout } = await run(
    process.execPath,
    [cli, 'loadtest', '--target', 'api', '--model', 'mnist-linear', '--replicas', '1', '--rate', '40', '--duration', '0.5', '--warmup', '0', '--slo-ms', '1000', '--json'],
    { cwd: projectRoot, timeout: 120_000 },
  );
  const printed = JSON.parse(stdout) as LoadRun;
  t.is(printed.target, 'in-process mnist-linear (1 replicas), application loadtest');
  t.like(printed.settings, { target: 'api', model: 'mnist-linear', replicas: 1, cacheBytes: 'default' });
  t.regex(printed.label, /^api /);
  const [rate] = printed.rates;
  t.is(rate?.offered, 40);
  t.is(rate?.sent, 20);
  t.is(rate?.errors, 0);
  t.is((rate?.ok ?? 0) + (rate?.defaults ?? 0) + (rate?.refused ?? 0), 20, 'every query accounted for');
  // The API target reads batch sizes from each answer, not from /metrics.
  t.true((rate?.meanBatch ?? 0) >= 1, `mean batch ${rate?.meanBatch}`);
  t.is(seen.predict + seen.infer, before, 'the HTTP test server saw none of it');
});

test.serial('bad flags are refused with exit code 2 and a message naming the flag', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--rates', '1000..10x2'], /must not fall/],
    [['--arrivals', 'bursty'], /--arrivals must be fixed or poisson/],
    [['--protocol', 'grpc'], /--protocol must be oip, oip-binary or predict/],
    [['--duration', 'abc'], /--duration must be a number/],
    [['--report', 'out.png'], /--report must name an \.html or \.svg file/],
    [['--target', 'ftp://x'], /--target must be an http:\/\/ URL or "api"/],
    [['--nope'], /Unknown option '--nope'/],
  ];
  for (const [args, message] of cases) {
    const error = await run(process.execPath, [cli, 'loadtest', ...args], { cwd: projectRoot, timeout: 30_000 }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    t.is(error?.code, 2, args.join(' '));
    t.regex(error?.stderr ?? '', message, args.join(' '));
  }
  const help = await run(process.execPath, [cli, 'loadtest', '--help'], { cwd: projectRoot });
  t.regex(help.stdout, /--repeat-share F/);
});
