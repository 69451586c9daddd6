import { IMAGE_SIZE, NUM_CLASSES, type Digits } from '../../src/data/mnist-data.js';
import type { Log } from './dense.js';
import type { TrainedNet } from './layers.js';
import { Rng } from './rng.js';

/** Hyper-parameters of the k-nearest-neighbours model (see {@link trainKnn}). */
export interface KnnConfig {
  /** Principal components the digits are projected on before distances are taken. */
  readonly components: number;
  /** Rounds of orthogonal (subspace) iteration that find them. */
  readonly iterations: number;
  /** Neighbours that vote. */
  readonly k: number;
  /** A neighbour's vote, before the softmax: probabilities = softmax(scale * rank-weighted votes). */
  readonly scale: number;
  /** Each further neighbour's vote counts this much less than the one before (the nearest breaks ties). */
  readonly rankDecay: number;
  /** Seed of the subspace iteration's random start. */
  readonly seed: number;
}

/**
 * "Training" a k-nearest-neighbours classifier: the top principal components of the training digits (the
 * covariance, in float64, then orthogonal iteration from a seeded random start, a fixed number of rounds), and
 * every training digit projected on them as a prototype. Deterministic: plain float64 arithmetic in a fixed order.
 * The ONNX graph projects the query (Gemm), takes squared distances to all prototypes (one more Gemm), and the
 * `k` nearest vote (TopK, Gather, ReduceSum), followed by a softmax.
 */
export function trainKnn(train: Digits, labels: Uint8Array, cfg: KnnConfig, log: Log): TrainedNet {
  const D = IMAGE_SIZE;
  const d = cfg.components;
  const n = train.count;
  // Second moments from the non-zero pixels (MNIST is ~80% zeros), then centre: C = (X'X - n mu mu') / n.
  const mean = new Float64Array(D);
  const cov = new Float64Array(D * D);
  const idx = new Int32Array(D);
  const val = new Float64Array(D);
  for (let s = 0; s < n; s++) {
    let nz = 0;
    const base = s * D;
    for (let p = 0; p < D; p++) {
      const x = train.images[base + p];
      if (x !== 0) {
        idx[nz] = p;
        val[nz++] = x;
        mean[p] += x;
      }
    }
    for (let a = 0; a < nz; a++) {
      const row = idx[a] * D;
      const va = val[a];
      for (let b = 0; b < nz; b++) cov[row + idx[b]] += va * val[b];
    }
  }
  for (let p = 0; p < D; p++) mean[p] /= n;
  for (let a = 0; a < D; a++) for (let b = 0; b < D; b++) cov[a * D + b] = cov[a * D + b] / n - mean[a] * mean[b];

  // Orthogonal iteration: Q <- orth(C Q). Q is column-major here: column j is Q[j*D .. j*D + D).
  const rng = new Rng(cfg.seed);
  let q = new Float64Array(D * d);
  for (let i = 0; i < q.length; i++) q[i] = rng.normal();
  const orthonormalise = (m: Float64Array): void => {
    for (let j = 0; j < d; j++) {
      const cj = j * D;
      for (let i = 0; i < j; i++) {
        const ci = i * D;
        let dot = 0;
        for (let p = 0; p < D; p++) dot += m[ci + p] * m[cj + p];
        for (let p = 0; p < D; p++) m[cj + p] -= dot * m[ci + p];
      }
      let norm = 0;
      for (let p = 0; p < D; p++) norm += m[cj + p] * m[cj + p];
      norm = Math.sqrt(norm);
      for (let p = 0; p < D; p++) m[cj + p] /= norm;
    }
  };
  orthonormalise(q);
  for (let it = 0; it < cfg.iterations; it++) {
    const z = new Float64Array(D * d);
    for (let j = 0; j < d; j++) {
      const cj = j * D;
      for (let a = 0; a < D; a++) {
        const row = a * D;
        let sum = 0;
        for (let b = 0; b < D; b++) sum += cov[row + b] * q[cj + b];
        z[cj + a] = sum;
      }
    }
    orthonormalise(z);
    q = z;
  }
  let explained = 0;
  let total = 0;
  for (let p = 0; p < D; p++) total += cov[p * D + p];
  for (let j = 0; j < d; j++) {
    const cj = j * D;
    for (let a = 0; a < D; a++) {
      let sum = 0;
      for (let b = 0; b < D; b++) sum += cov[a * D + b] * q[cj + b];
      explained += q[cj + a] * sum;
    }
  }
  log(`${d} principal components explain ${((100 * explained) / total).toFixed(1)}% of the pixel variance`);

  // The projection as a dense layer (row-major [D][d], float32 as stored), and the prototypes projected with it.
  const proj = new Float32Array(D * d);
  for (let p = 0; p < D; p++) for (let j = 0; j < d; j++) proj[p * d + j] = q[j * D + p];
  const w = new Float32Array(d * n);
  const b = new Float32Array(n);
  const votes = new Float32Array(n * NUM_CLASSES);
  const z = new Float64Array(d);
  for (let s = 0; s < n; s++) {
    z.fill(0);
    const base = s * D;
    for (let p = 0; p < D; p++) {
      const x = train.images[base + p];
      if (x === 0) continue;
      for (let j = 0; j < d; j++) z[j] += x * proj[p * d + j];
    }
    let sq = 0;
    for (let j = 0; j < d; j++) {
      const zj = Math.fround(z[j]);
      w[j * n + s] = -2 * zj;
      sq += zj * zj;
    }
    b[s] = sq;
    votes[s * NUM_CLASSES + labels[s]] = cfg.scale;
  }
  const rankWeights = new Float32Array(cfg.k);
  for (let r = 0; r < cfg.k; r++) rankWeights[r] = 1 - r * cfg.rankDecay;
  return {
    layers: [
      { kind: 'dense', inSize: D, outSize: d, w: proj, b: new Float32Array(d) },
      { kind: 'nearest', dim: d, count: n, k: cfg.k, classes: NUM_CLASSES, w, b, votes, rankWeights },
      { kind: 'softmax' },
    ],
  };
}
