/**
 * clipper-ts as bench:http serves it, in a process of its own (so its main thread's CPU is read from /proc as
 * the other servers' are): mnist-mlp with argv[2] replicas (default: one per core the main thread does not need, at least one), AIMD batching, an
 * application `bench` with a 20 ms SLO and the cache off, the query port on an ephemeral port. Reports
 * `{ url }` over IPC once it listens, and stops when the channel closes.
 */
import os from 'node:os';
import path from 'node:path';
import { Clipper } from '../../src/index.js';
import { serve } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { modelsDir } from '../../src/paths.js';

const replicas = process.argv[2] === undefined ? Math.max(1, os.availableParallelism() - 1) : Number(process.argv[2]);
const clipper = await Clipper.start();
await clipper.registerApp({ name: 'bench', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 20, cacheMaxBytes: 0 });
await clipper.deployModel({ name: 'mnist-mlp', version: '1', path: path.join(modelsDir, 'mnist-mlp', '1', 'model.onnx'), replicas });
await clipper.linkModel('bench', 'mnist-mlp');
const settings = resolveServeSettings(['--port', '0', '--admin-port', '0', '--grpc-port', '0', '--log-level', 'silent']);
const server = await serve({ ...settings, bundled: false }, { clipper });
process.send?.({ url: server.queryUrl });
process.on('disconnect', () => {
  void server.close().then(() => process.exit(0));
});
