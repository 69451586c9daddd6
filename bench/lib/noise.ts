import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';

/**
 * The machine's own latency floor: round trips of an empty message to a worker thread that sleeps between
 * messages, as a replica's worker does under light load. On a shared VM a sleeping thread can wake
 * milliseconds late; no serving design on this machine beats these numbers, so benchmarks print them.
 */
export async function measureWakeupNoise(rounds = 400): Promise<{ p50: number; p99: number; max: number }> {
  const worker = new Worker("require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m));", { eval: true });
  const rtts: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    await new Promise((resolve) => {
      worker.once('message', resolve);
      worker.postMessage(i);
    });
    rtts.push(performance.now() - started);
    await sleep(1);
  }
  await worker.terminate();
  rtts.sort((a, b) => a - b);
  const at = (q: number): number => rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))] as number;
  return { p50: at(0.5), p99: at(0.99), max: rtts[rtts.length - 1] as number };
}
