/**
 * Worker-thread entry of `npm run models`: receives ModelSpecs, trains them, posts the trained layer lists back.
 * Training a model is deterministic and independent of which worker runs it or in what order.
 */
import { parentPort } from 'node:worker_threads';
import { loadMnist } from '../../src/data/mnist-data.js';
import { trainCnn } from './cnn.js';
import { ONE_PIXEL_SHIFTS, withShiftedCopies } from './augment.js';
import { trainDense } from './dense.js';
import { trainKnn } from './knn.js';
import type { Layer, TrainedNet } from './layers.js';
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
  const { train: digits } = loadMnist();
  const plain = { set: digits, labels: trainingLabels(digits.labels, spec) };
  const { set: train, labels } = spec.shiftedCopies ? withShiftedCopies(plain.set, plain.labels, ONE_PIXEL_SHIFTS) : plain;
  let net: TrainedNet;
  switch (spec.trainer) {
    case 'cnn':
      net = trainCnn(train, labels, spec.config, log);
      break;
    case 'dense':
      net = trainDense(train, labels, spec.config, log);
      break;
    case 'knn':
      net = trainKnn(train, labels, spec.config, log);
      break;
  }
  return spec.testTimeShifts === undefined ? net : withTestTimeShifts(net, spec.testTimeShifts);
}

/** The net run on every shift of -r..r pixels of its input image, its logits averaged (see ModelSpec.testTimeShifts). */
function withTestTimeShifts(net: TrainedNet, radius: number): TrainedNet {
  const [image, ...rest] = net.layers;
  const softmax = rest.pop();
  const logits = [...rest].reverse().find((l) => l.kind === 'dense');
  if (image?.kind !== 'image' || softmax?.kind !== 'softmax' || logits?.kind !== 'dense') {
    throw new Error('test-time shifts need a net that starts with an image and ends in dense + softmax');
  }
  const copies = (2 * radius + 1) ** 2;
  const layers: Layer[] = [image, { kind: 'shifts', radius, side: image.side }, ...rest, { kind: 'mean', copies, classes: logits.outSize }, softmax];
  return { layers };
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
