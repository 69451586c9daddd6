// Open-loop isolation probe for the gRPC findings in the README (OIP over gRPC, "What limits gRPC"): one server,
// one client of the bench's load generator (its own process), fixed rates; prints per rate p50/p99, late sends,
// generator CPU, and this (server) process's CPU and event-loop utilisation. Run after `npm run build`, under the lock:
//   flock /tmp/clipper-cpu.lock node bench/grpc-isolation/probe.mjs SERVER CLIENT RATE...
// SERVER: echo (grpc-js, the same .proto, a constant reply) | echo-raw (grpc-js, no proto decode) | h2echo (bare
// node:http2 answering gRPC framing) | clipper (clipper-ts, mnist-mlp, 2 replicas, as bench:http).
// CLIENT: grpc-js | http2 (src/load/grpc-target.ts's two clients) | binary (OIP binary over HTTP, clipper only) | none
// (serve only; prints pid and address, for closed.mjs). GEN_ARGS='--trace-gc' (or --cpu-prof ...) goes to the
// generator process; SERVER_OPTS='{"grpc...": ...}' to the grpc-js echo servers; DUR seconds per rate (2).
import http2 from 'node:http2';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
const dist = new URL('../../dist', import.meta.url).pathname;
const { Clipper, modelsDir } = await import(`${dist}/src/index.js`).then(async (m) => ({ ...m, modelsDir: (await import(`${dist}/src/paths.js`)).modelsDir }));
const { serve } = await import(`${dist}/src/http/serve.js`);
const { resolveServeSettings } = await import(`${dist}/src/http/settings.js`);
const { runGeneratorProcess } = await import(`${dist}/src/load/fork-generator.js`);
const { resolveLoadSettings } = await import(`${dist}/src/load/load-runner.js`);
const { grpcProtoPath } = await import(`${dist}/src/grpc/grpc-server.js`);
const { protoLoadOptions } = await import(`${dist}/src/grpc/tensor-codec.js`);

if (process.env.GEN_ARGS) process.execArgv.push(...process.env.GEN_ARGS.split(' '));
const [serverKind, clientKind, ...rateArgs] = process.argv.slice(2);
const rates = rateArgs.map(Number);
const serverOpts = JSON.parse(process.env.SERVER_OPTS ?? '{}');
const MODEL = 'mnist-mlp';
const reply = { model_name: MODEL, model_version: '1', id: '', outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 10] }], raw_output_contents: [Buffer.alloc(40)] };

let address, url, close;
if (serverKind === 'echo' || serverKind === 'echo-raw') {
  const def = grpc.loadPackageDefinition(loadSync(grpcProtoPath, { ...protoLoadOptions }));
  const service = def.inference.GRPCInferenceService.service;
  const server = new grpc.Server(serverOpts);
  if (serverKind === 'echo') {
    server.addService(service, { ModelInfer: (call, cb) => cb(null, reply) });
  } else {
    const replyBytes = service.ModelInfer.responseSerialize(reply);
    server.addService({ ModelInfer: { ...service.ModelInfer, requestDeserialize: (b) => b, responseSerialize: () => replyBytes } }, { ModelInfer: (call, cb) => cb(null, null) });
  }
  const port = await new Promise((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  address = `127.0.0.1:${port}`;
  url = 'http://127.0.0.1:1/';
  close = () => new Promise((r) => server.tryShutdown(r));
} else if (serverKind === 'h2echo') {
  const def = loadSync(grpcProtoPath, { ...protoLoadOptions });
  const bytes = def['inference.GRPCInferenceService'].ModelInfer.responseSerialize(reply);
  const framed = Buffer.alloc(5 + bytes.length);
  framed.writeUInt32BE(bytes.length, 1);
  bytes.copy(framed, 5);
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(framed);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  address = `127.0.0.1:${server.address().port}`;
  url = 'http://127.0.0.1:1/';
  close = () => new Promise((r) => server.close(r));
} else {
  const clipper = await Clipper.start();
  await clipper.registerApp({ name: 'bench', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 20, cacheMaxBytes: 0 });
  await clipper.deployModel({ name: MODEL, version: '1', path: path.join(modelsDir, MODEL, '1', 'model.onnx'), replicas: 2 });
  await clipper.linkModel('bench', MODEL);
  const settings = resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent']);
  const server = await serve({ ...settings, bundled: false }, { clipper });
  address = server.grpcAddress;
  url = server.queryUrl;
  close = () => server.close();
}

if (clientKind === 'none') {
  console.log(JSON.stringify({ pid: process.pid, address, url }));
  process.on('SIGTERM', async () => { await close(); process.exit(0); });
  await new Promise(() => {});
}
const load = resolveLoadSettings({ sloMs: 20, durationS: Number(process.env.DUR ?? 2), warmupS: 1, rates, stopAfterMisses: 0, retries: 0 });
const grpcOpts = clientKind === 'binary' || clientKind === 'json' ? undefined : { address, model: MODEL, client: clientKind, connections: Number(process.env.CONNS ?? 1) };
let cpu = process.cpuUsage();
let elu = performance.eventLoopUtilization();
let t = performance.now();
console.log(`server ${serverKind} client ${clientKind} ${JSON.stringify(serverOpts)} load ${(await import('node:os')).loadavg()[0].toFixed(2)}`);
await runGeneratorProcess(
  { http: { url, protocol: clientKind === 'json' ? 'oip' : 'oip-binary', model: MODEL }, ...(grpcOpts ? { grpc: grpcOpts } : {}), inputs: { repeatShare: 0, seed: 1 }, load },
  {
    onRate: (r) => {
      const c = process.cpuUsage(cpu);
      const e = performance.eventLoopUtilization(elu);
      const dt = performance.now() - t;
      cpu = process.cpuUsage();
      elu = performance.eventLoopUtilization();
      t = performance.now();
      console.log(
        `offered ${String(r.offered).padStart(6)} achieved ${String(r.achieved).padStart(6)} p50 ${r.latency.p50?.toFixed(2)} p99 ${r.latency.p99?.toFixed(2)} ok ${r.ok} refused ${r.refused} errors ${r.errors} late ${r.late} maxLate ${r.maxLateMs.toFixed(1)} gen ${((r.generatorCpu ?? 0) * 100).toFixed(0)}% server cpu ${(((c.user + c.system) / 1000 / dt) * 100).toFixed(0)}% elu ${(e.utilization * 100).toFixed(0)}% batch ${r.meanBatch?.toFixed?.(1) ?? '-'} ${r.errorKinds ? JSON.stringify(r.errorKinds) : ''}`,
      );
    },
  },
);
await close();
process.exit(0);
