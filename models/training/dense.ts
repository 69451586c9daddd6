import { IMAGE_SIZE, NUM_CLASSES, type Digits } from '../../src/data/mnist-data.js';
import type { Layer, TrainedNet } from './layers.js';
import { denseBackward } from './backprop.js';
import { Adam, Param, softmaxXent } from './optim.js';
import { Rng } from './rng.js';

/** Hyper-parameters of a fully connected softmax classifier (no hidden layers = multinomial logistic regression). */
export interface DenseConfig {
  /** Hidden layer widths, e.g. [256, 256]; [] for logistic regression. ReLU after each. */
  readonly hidden: readonly number[];
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** Multiplies the learning rate after every epoch. */
  readonly lrDecay: number;
  readonly seed: number;
}

/** Images as a compressed sparse row list of non-zero pixels: MNIST is ~80% zeros, so first-layer work drops ~5x. */
export interface SparseImages {
  readonly start: Uint32Array; // count + 1 offsets
  readonly index: Uint16Array;
  readonly value: Float32Array;
}

export function toSparse(set: Digits): SparseImages {
  let nnz = 0;
  for (let i = 0; i < set.images.length; i++) if (set.images[i] !== 0) nnz++;
  const start = new Uint32Array(set.count + 1);
  const index = new Uint16Array(nnz);
  const value = new Float32Array(nnz);
  let k = 0;
  for (let n = 0; n < set.count; n++) {
    start[n] = k;
    const base = n * IMAGE_SIZE;
    for (let p = 0; p < IMAGE_SIZE; p++) {
      const x = set.images[base + p];
      if (x !== 0) {
        index[k] = p;
        value[k] = x;
        k++;
      }
    }
  }
  start[set.count] = k;
  return { start, index, value };
}

export type Log = (message: string) => void;

/**
 * Trains a ReLU MLP with softmax cross-entropy by minibatch Adam, one sample at a time inside a batch (gradients are
 * summed, then averaged in the update). Deterministic for a given config and data: the only randomness is the
 * seeded initialisation and per-epoch shuffles. Exploits sparsity: only non-zero inputs / active ReLUs are visited.
 */
export function trainDense(train: Digits, labels: Uint8Array, cfg: DenseConfig, log: Log): TrainedNet {
  const rng = new Rng(cfg.seed);
  const sizes = [IMAGE_SIZE, ...cfg.hidden, NUM_CLASSES];
  const L = sizes.length - 1;
  const W: Param[] = [];
  const B: Param[] = [];
  for (let l = 0; l < L; l++) {
    const fanIn = sizes[l];
    // He initialisation for layers feeding a ReLU; Glorot-ish for the logits layer.
    const std = l < L - 1 ? Math.sqrt(2 / fanIn) : Math.sqrt(1 / fanIn);
    W.push(new Param(rng.fillNormal(new Float32Array(fanIn * sizes[l + 1]), std)));
    B.push(new Param(new Float32Array(sizes[l + 1])));
  }
  const opt = new Adam([...W, ...B], cfg.learningRate);
  const sparse = toSparse(train);

  // Per-layer activations (post-ReLU), their active index lists, and deltas.
  const act: Float32Array[] = sizes.map((s) => new Float32Array(s));
  const activeIdx: Uint32Array[] = sizes.map((s) => new Uint32Array(s));
  const activeCount = new Int32Array(sizes.length);
  const delta: Float32Array[] = sizes.map((s) => new Float32Array(s));

  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    const order = rng.permutation(train.count);
    let loss = 0;
    let correct = 0;
    for (let bStart = 0; bStart < train.count; bStart += cfg.batchSize) {
      const bEnd = Math.min(bStart + cfg.batchSize, train.count);
      for (let s = bStart; s < bEnd; s++) {
        const n = order[s];
        const label = labels[n];
        // Layer-0 activations: the sparse image.
        const a0 = act[0];
        const i0 = activeIdx[0];
        let c0 = 0;
        for (let k = sparse.start[n]; k < sparse.start[n + 1]; k++) {
          const p = sparse.index[k];
          a0[p] = sparse.value[k];
          i0[c0++] = p;
        }
        activeCount[0] = c0;

        // Forward.
        for (let l = 0; l < L; l++) {
          const out = act[l + 1];
          const nOut = sizes[l + 1];
          const w = W[l].w;
          out.set(B[l].w);
          const ain = act[l];
          const idx = activeIdx[l];
          const cnt = activeCount[l];
          for (let k = 0; k < cnt; k++) {
            const i = idx[k];
            const x = ain[i];
            const row = i * nOut;
            for (let j = 0; j < nOut; j++) out[j] += x * w[row + j];
          }
          if (l < L - 1) {
            const oi = activeIdx[l + 1];
            let c = 0;
            for (let j = 0; j < nOut; j++) {
              if (out[j] > 0) oi[c++] = j;
              else out[j] = 0;
            }
            activeCount[l + 1] = c;
          }
        }
        const probs = act[L];
        let best = 0;
        for (let j = 1; j < NUM_CLASSES; j++) if (probs[j] > probs[best]) best = j;
        if (best === label) correct++;
        loss += softmaxXent(probs, label);

        // Backward.
        const dOut = delta[L];
        for (let j = 0; j < NUM_CLASSES; j++) dOut[j] = probs[j] - (j === label ? 1 : 0);
        for (let l = L - 1; l >= 0; l--) {
          // The input layer has no trainable layer below it: weight and bias gradients only.
          const grads = { w: W[l].w, gw: W[l].g, gb: B[l].g, nOut: sizes[l + 1] };
          denseBackward(grads, act[l], activeIdx[l], activeCount[l], delta[l + 1], l === 0 ? undefined : delta[l]);
        }
        // Clear the sparse input so the next image starts from zeros.
        for (let k = 0; k < c0; k++) a0[i0[k]] = 0;
      }
      opt.step(1 / (bEnd - bStart));
    }
    log(
      `epoch ${epoch + 1}/${cfg.epochs} lr=${opt.lr.toExponential(2)} loss=${(loss / train.count).toFixed(4)} ` +
        `train-acc=${(correct / train.count).toFixed(4)}`,
    );
    opt.lr *= cfg.lrDecay;
  }

  const layers: Layer[] = [];
  for (let l = 0; l < L; l++) {
    layers.push({ kind: 'dense', inSize: sizes[l], outSize: sizes[l + 1], w: W[l].w, b: B[l].w });
    if (l < L - 1) layers.push({ kind: 'relu' });
  }
  layers.push({ kind: 'softmax' });
  return { layers };
}
