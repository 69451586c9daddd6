/**
 * Worker-thread entry of `npm run models`: receives ModelSpecs, trains them, posts the trained layer lists back.
 * Training a model is deterministic and independent of which worker runs it or in what order.
 */
import { parentPort } from 'node:worker_threads';
import { loadMnist } from '../../src/data/mnist-data.js';
import { trainCnn } from './cnn.js';
import { trainDense } from './dense.js';
import type { TrainedNet } from './layers.js';
import { Rng } from './rng.js';
import type { ModelSpec } from './specs.js';

export type ToWorker = { readonly type: 'train'; readonly spec: ModelSpec } | { readonly type: 'exit' };
export type FromWorker =
  | { readonly type: 'log'; readonly id: string; readonly message: string }
  | { readonly type: 'done'; readonly id: string; readonly net: TrainedNet; readonly seconds: number };

export function specId(spec: ModelSpec): string {
  return `${spec.name}/${spec.version}`;
}

/** Training labels for a spec: the true ones, or a seeded permutation of them (same class balance, no signal). */
export function trainingLabels(labels: Uint8Array, spec: ModelSpec): Uint8Array {
  if (!spec.shuffledLabels) return labels;
  const perm = new Rng(spec.shuffledLabels.seed).permutation(labels.length);
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = labels[perm[i]];
  return out;
}

export function trainSpec(spec: ModelSpec, log: (message: string) => void): TrainedNet {
  const { train } = loadMnist();
  const labels = trainingLabels(train.labels, spec);
  return spec.trainer === 'cnn' ? trainCnn(train, labels, spec.config, log) : trainDense(train, labels, spec.config, log);
}

const port = parentPort;
if (port) {
  loadMnist(); // parse the dataset once, before any timed training
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'exit') {
      port.close();
      return;
    }
    const id = specId(msg.spec);
    const t0 = performance.now();
    const net = trainSpec(msg.spec, (message) => port.postMessage({ type: 'log', id, message } satisfies FromWorker));
    const seconds = (performance.now() - t0) / 1000;
    port.postMessage({ type: 'done', id, net, seconds } satisfies FromWorker);
  });
}
