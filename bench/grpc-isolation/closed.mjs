// Closed-loop client for the README's gRPC findings (started by run-closed.sh, which starts the server):
//   node bench/grpc-isolation/closed.mjs KIND ADDRESS_OR_URL SERVER_PID [calls] [concurrency]
// KIND: h2 (hand-framed gRPC on node:http2) | grpc-js | binary (undici, OIP binary). The same 784-float row each
// call. Prints calls/s, the server process's CPU per call (/proc, all its threads: replicas included) and this
// client's CPU per call.
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
const [kind, target, pid, callsArg = '20000', concArg = '16'] = process.argv.slice(2);
const calls = Number(callsArg), conc = Number(concArg);
const tick = 100; // USER_HZ
const cpuOf = (p) => { const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / tick; };
// Request: fixed prefix as grpc-target builds it, row of 784 floats.
const dist = new URL('../../dist', import.meta.url).pathname;
const { loadSync } = await import('@grpc/proto-loader');
const def = loadSync(`${dist}/../src/grpc/grpc_service.proto`, { keepCase: true, longs: Number, defaults: true });
const fixed = def['inference.GRPCInferenceService'].ModelInfer.requestSerialize({ model_name: 'mnist-mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784] }] });
const row = Buffer.alloc(3136); for (let i = 0; i < 784; i++) row.writeFloatLE((i % 17) / 17, i * 4);
const msg = Buffer.concat([fixed, Buffer.from([(7 << 3) | 2, 0xc0, 0x18]), row]);
const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), msg]); framed.writeUInt32BE(msg.length, 1);
let send;
if (kind === 'h2') {
  const s = http2.connect(`http://${target}`);
  send = () => new Promise((res, rej) => {
    const st = s.request({ ':method': 'POST', ':path': '/inference.GRPCInferenceService/ModelInfer', 'content-type': 'application/grpc', te: 'trailers' });
    st.on('data', () => {}); st.on('trailers', (t) => (t['grpc-status'] === '0' ? res() : rej(new Error(t['grpc-status'])))); st.on('error', rej);
    st.on('response', (h) => { if (h['grpc-status'] !== undefined && h['grpc-status'] !== '0') rej(new Error(h['grpc-status'])); });
    st.end(framed);
  });
} else if (kind === 'grpc-js') {
  const Raw = grpc.makeGenericClientConstructor({}, 'x');
  const c = new Raw(target, grpc.credentials.createInsecure());
  send = () => new Promise((res, rej) => c.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (m) => m, (m) => m, msg, new grpc.Metadata(), { deadline: Date.now() + 30000 }, (e) => (e ? rej(e) : res())));
} else {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], parameters: { binary_data_size: 3136 } }], parameters: { binary_data_output: true } }));
  const body = Buffer.concat([header, row]);
  const u = new URL("/v2/models/mnist-mlp/infer", target).href;
  send = async () => { const r = await request(u, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } }); const b = await r.body.arrayBuffer(); if (r.statusCode !== 200) throw new Error(r.statusCode + ' ' + Buffer.from(b).toString().slice(0, 200)); };
}
// warm up
let errors = 0;
const run = async (n) => { let i = 0; await Promise.all(Array.from({ length: conc }, async () => { while (i++ < n) await send().catch(() => errors++); })); };
await run(2000); if (process.env.DEBUG) { try { await send(); } catch (e) { console.log('ERR', e); } }
errors = 0;
const s0 = cpuOf(pid), c0 = process.cpuUsage(), t0 = performance.now();
await run(calls);
const dt = (performance.now() - t0) / 1000, s1 = cpuOf(pid), c1 = process.cpuUsage(c0);
console.log(`${kind} conc ${conc}: ${(calls / dt).toFixed(0)} calls/s, server ${((s1 - s0) / calls * 1e6).toFixed(0)} us/call (${(((s1 - s0) / dt) * 100).toFixed(0)}% cpu), client ${(((c1.user + c1.system) / calls)).toFixed(0)} us/call, errors ${errors}`);
process.exit(0);
