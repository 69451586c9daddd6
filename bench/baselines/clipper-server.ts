/**
 * clipper-ts as bench:http serves it, in a process of its own (so its main thread's CPU is read from /proc as
 * the other servers' are): mnist-mlp with `--replicas N` replicas (default: one per core the main thread does
 * not need), AIMD batching, an application `bench` with a 20 ms SLO and the cache off, the query port on an
 * ephemeral port, gRPC off. Reports `{ url }` over IPC once it listens, and stops when the channel closes.
 */
import { benchReplicas, serveBenchClipper } from '../lib/bench-clipper.js';

const { server } = await serveBenchClipper({ model: 'mnist-mlp', replicas: benchReplicas(process.argv.slice(2)), sloMs: 20, serveArgs: ['--grpc-port', '0'] });
process.send?.({ url: server.queryUrl });
process.on('disconnect', () => {
  void server.close().then(() => process.exit(0));
});
