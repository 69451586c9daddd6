import os from 'node:os';
import path from 'node:path';
import { Clipper } from '../../src/index.js';
import { serve, type RunningServer } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { modelsDir } from '../../src/paths.js';

/**
 * How many replicas the benchmarks give a model: `--replicas N` in `args`, else one per core the main thread does
 * not need (one on a 2-core machine), at least one. The main thread carries every query (HTTP, JSON, routing)
 * and a replica beside it on the same core takes its time.
 */
export function benchReplicas(args: readonly string[]): number {
  const at = args.indexOf('--replicas');
  return at >= 0 ? Number(args[at + 1]) : Math.max(1, os.availableParallelism() - 1);
}

/**
 * clipper-ts as the HTTP benchmarks serve it: `model` (a bundled ONNX model) with `replicas` replicas and AIMD,
 * linked to an application `bench` (float32 [784], `sloMs`, the cache off), served with `serve()` on ephemeral
 * ports (admin too), logging nothing; `serveArgs` add CLI settings (`--grpc-port 0`, say).
 */
export async function serveBenchClipper(options: { model: string; replicas: number; sloMs: number; serveArgs?: readonly string[] }): Promise<{ clipper: Clipper; server: RunningServer }> {
  const clipper = await Clipper.start();
  await clipper.registerApp({ name: 'bench', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: options.sloMs, cacheMaxBytes: 0 });
  await clipper.deployModel({ name: options.model, version: '1', path: path.join(modelsDir, options.model, '1', 'model.onnx'), replicas: options.replicas });
  await clipper.linkModel('bench', options.model);
  const settings = resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent', ...(options.serveArgs ?? [])]);
  const server = await serve({ ...settings, bundled: false }, { clipper });
  return { clipper, server };
}
