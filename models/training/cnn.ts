import { IMAGE_SIDE, NUM_CLASSES, type Digits } from '../../src/data/mnist-data.js';
import type { Log } from './dense.js';
import type { TrainedNet } from './layers.js';
import { denseBackward } from './backprop.js';
import { Adam, Param, softmaxXent } from './optim.js';
import { Rng } from './rng.js';

/**
 * Hyper-parameters of the small CNN:
 *   [N,784] -> reshape [N,1,28,28] -> conv 3x3 pad 1 x c1 -> ReLU -> maxpool 2
 *           -> conv 3x3 pad 1 x c2 -> ReLU -> maxpool 2 -> flatten (c2*7*7) -> dense hidden -> ReLU -> dense 10 -> softmax
 */
export interface CnnConfig {
  readonly c1: number;
  readonly c2: number;
  readonly hidden: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly lrDecay: number;
  readonly seed: number;
  /**
   * Data augmentation: each time a digit is drawn, it is moved by a random shift of -shift..shift pixels in y and
   * in x (zero fill), drawn from its own seeded stream (seed + 1), so it never changes the other draws.
   */
  readonly shift?: number;
}

const S0 = IMAGE_SIDE; // 28
const P0 = S0 + 2; // 30: padded input side
const S1 = S0 / 2; // 14: after pool 1
const P1 = S1 + 2; // 16: padded conv-2 input side
const S2 = S1 / 2; // 7: after pool 2

/**
 * Trains the CNN by minibatch Adam with hand-written forward/backward passes over Float32Arrays (NCHW layout, so the
 * weights export to ONNX Conv as they are). The backward pass is sparse: max-pooling routes each gradient to one of
 * four positions, so convolution gradients are accumulated only from the winning, active positions.
 */
export function trainCnn(train: Digits, labels: Uint8Array, cfg: CnnConfig, log: Log): TrainedNet {
  const { c1: C1, c2: C2, hidden: H } = cfg;
  const F = C2 * S2 * S2; // flattened features
  const rng = new Rng(cfg.seed);
  const conv1W = new Param(rng.fillNormal(new Float32Array(C1 * 9), Math.sqrt(2 / 9)));
  const conv1B = new Param(new Float32Array(C1));
  const conv2W = new Param(rng.fillNormal(new Float32Array(C2 * C1 * 9), Math.sqrt(2 / (C1 * 9))));
  const conv2B = new Param(new Float32Array(C2));
  const d1W = new Param(rng.fillNormal(new Float32Array(F * H), Math.sqrt(2 / F)));
  const d1B = new Param(new Float32Array(H));
  const d2W = new Param(rng.fillNormal(new Float32Array(H * NUM_CLASSES), Math.sqrt(1 / H)));
  const d2B = new Param(new Float32Array(NUM_CLASSES));
  const opt = new Adam([conv1W, conv1B, conv2W, conv2B, d1W, d1B, d2W, d2B], cfg.learningRate);

  const in0 = new Float32Array(P0 * P0); // zero border stays zero (unshifted)
  const shift = cfg.shift ?? 0;
  const shiftRng = new Rng(cfg.seed + 1);
  // Conv outputs are stored with the padded row stride (P0 / P1) so each kernel tap is one long contiguous loop;
  // the last two columns of every row are scratch and never read.
  const c1 = new Float32Array(C1 * S0 * P0);
  const p1 = new Float32Array(C1 * P1 * P1); // pooled + ReLU, zero border
  const arg1 = new Int32Array(C1 * S1 * S1);
  const dp1 = new Float32Array(C1 * P1 * P1);
  const c2 = new Float32Array(C2 * S1 * P1);
  const feat = new Float32Array(F);
  const arg2 = new Int32Array(F);
  const dfeat = new Float32Array(F);
  const featIdx = new Int32Array(F);
  const h = new Float32Array(H);
  const hIdx = new Int32Array(H);
  const dh = new Float32Array(H);
  const z = new Float32Array(NUM_CLASSES);
  const dz = new Float32Array(NUM_CLASSES);

  const w1 = conv1W.w;
  const w2 = conv2W.w;
  const wd1 = d1W.w;
  const wd2 = d2W.w;

  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    const order = rng.permutation(train.count);
    let loss = 0;
    let correct = 0;
    for (let bStart = 0; bStart < train.count; bStart += cfg.batchSize) {
      const bEnd = Math.min(bStart + cfg.batchSize, train.count);
      for (let s = bStart; s < bEnd; s++) {
        const n = order[s];
        const label = labels[n];
        const img = n * S0 * S0;
        if (shift === 0) {
          for (let y = 0; y < S0; y++) {
            const src = img + y * S0;
            const dst = (y + 1) * P0 + 1;
            for (let x = 0; x < S0; x++) in0[dst + x] = train.images[src + x];
          }
        } else {
          const dy = Math.floor(shiftRng.uniform() * (2 * shift + 1)) - shift;
          const dx = Math.floor(shiftRng.uniform() * (2 * shift + 1)) - shift;
          in0.fill(0);
          for (let y = Math.max(0, -dy); y < Math.min(S0, S0 - dy); y++) {
            const src = img + y * S0;
            const dst = (y + dy + 1) * P0 + 1 + dx;
            for (let x = Math.max(0, -dx); x < Math.min(S0, S0 - dx); x++) in0[dst + x] = train.images[src + x];
          }
        }

        // conv 1 (single input channel).
        const L1 = (S0 - 1) * P0 + S0;
        for (let co = 0; co < C1; co++) {
          const ob = co * S0 * P0;
          c1.fill(conv1B.w[co], ob, ob + S0 * P0);
          const k = co * 9;
          const k0 = w1[k], k1 = w1[k + 1], k2 = w1[k + 2], k3 = w1[k + 3], k4 = w1[k + 4];
          const k5 = w1[k + 5], k6 = w1[k + 6], k7 = w1[k + 7], k8 = w1[k + 8];
          for (let t = 0; t < L1; t++) {
            const r1 = t + P0;
            const r2 = t + 2 * P0;
            c1[ob + t] +=
              k0 * in0[t] + k1 * in0[t + 1] + k2 * in0[t + 2] +
              k3 * in0[r1] + k4 * in0[r1 + 1] + k5 * in0[r1 + 2] +
              k6 * in0[r2] + k7 * in0[r2 + 1] + k8 * in0[r2 + 2];
          }
        }
        // ReLU + maxpool 1 -> p1 (padded).
        for (let c = 0; c < C1; c++) {
          for (let py = 0; py < S1; py++) {
            for (let px = 0; px < S1; px++) {
              const base = c * S0 * P0 + 2 * py * P0 + 2 * px;
              let best = base;
              let m = c1[base];
              if (c1[base + 1] > m) { m = c1[base + 1]; best = base + 1; }
              if (c1[base + P0] > m) { m = c1[base + P0]; best = base + P0; }
              if (c1[base + P0 + 1] > m) { m = c1[base + P0 + 1]; best = base + P0 + 1; }
              arg1[c * S1 * S1 + py * S1 + px] = best;
              p1[c * P1 * P1 + (py + 1) * P1 + px + 1] = m > 0 ? m : 0;
            }
          }
        }
        // conv 2.
        const L2 = (S1 - 1) * P1 + S1;
        for (let co = 0; co < C2; co++) {
          const ob = co * S1 * P1;
          c2.fill(conv2B.w[co], ob, ob + S1 * P1);
          for (let ci = 0; ci < C1; ci++) {
            const wb = (co * C1 + ci) * 9;
            const cb = ci * P1 * P1;
            const k0 = w2[wb], k1 = w2[wb + 1], k2 = w2[wb + 2], k3 = w2[wb + 3], k4 = w2[wb + 4];
            const k5 = w2[wb + 5], k6 = w2[wb + 6], k7 = w2[wb + 7], k8 = w2[wb + 8];
            for (let t = 0; t < L2; t++) {
              const r0 = cb + t;
              const r1 = r0 + P1;
              const r2 = r0 + 2 * P1;
              c2[ob + t] +=
                k0 * p1[r0] + k1 * p1[r0 + 1] + k2 * p1[r0 + 2] +
                k3 * p1[r1] + k4 * p1[r1 + 1] + k5 * p1[r1 + 2] +
                k6 * p1[r2] + k7 * p1[r2 + 1] + k8 * p1[r2 + 2];
            }
          }
        }
        // ReLU + maxpool 2 -> feat (NCHW flatten order: c*49 + y*7 + x).
        let nf = 0;
        for (let c = 0; c < C2; c++) {
          for (let py = 0; py < S2; py++) {
            for (let px = 0; px < S2; px++) {
              const base = c * S1 * P1 + 2 * py * P1 + 2 * px;
              let best = base;
              let m = c2[base];
              if (c2[base + 1] > m) { m = c2[base + 1]; best = base + 1; }
              if (c2[base + P1] > m) { m = c2[base + P1]; best = base + P1; }
              if (c2[base + P1 + 1] > m) { m = c2[base + P1 + 1]; best = base + P1 + 1; }
              const f = c * S2 * S2 + py * S2 + px;
              arg2[f] = best;
              if (m > 0) {
                feat[f] = m;
                featIdx[nf++] = f;
              } else feat[f] = 0;
            }
          }
        }
        // dense 1 + ReLU.
        h.set(d1B.w);
        for (let k = 0; k < nf; k++) {
          const i = featIdx[k];
          const v = feat[i];
          const row = i * H;
          for (let j = 0; j < H; j++) h[j] += v * wd1[row + j];
        }
        let nh = 0;
        for (let j = 0; j < H; j++) {
          if (h[j] < 0) h[j] = 0;
          else if (h[j] !== 0) hIdx[nh++] = j;
        }
        // dense 2 + softmax.
        z.set(d2B.w);
        for (let i = 0; i < H; i++) {
          const v = h[i];
          if (v === 0) continue;
          const row = i * NUM_CLASSES;
          for (let j = 0; j < NUM_CLASSES; j++) z[j] += v * wd2[row + j];
        }
        let best = 0;
        for (let j = 1; j < NUM_CLASSES; j++) if (z[j] > z[best]) best = j;
        if (best === label) correct++;
        loss += softmaxXent(z, label);

        // ---- backward ----
        for (let j = 0; j < NUM_CLASSES; j++) dz[j] = z[j] - (j === label ? 1 : 0);
        // dense 2 also accumulates dense 1's bias gradient (the delta at its active ReLUs, unrounded), so dense 1's
        // own pass leaves its bias alone.
        denseBackward({ w: wd2, gw: d2W.g, gb: d2B.g, nOut: NUM_CLASSES }, h, hIdx, nh, dz, dh, d1B.g);
        denseBackward({ w: wd1, gw: d1W.g, gb: undefined, nOut: H }, feat, featIdx, nf, dh, dfeat);
        // Through pool 2 / ReLU to conv 2 (only the winning, active positions), accumulating dp1.
        dp1.fill(0);
        const g2 = conv2W.g;
        for (let k = 0; k < nf; k++) {
          const f = featIdx[k];
          const g = dfeat[f];
          if (g === 0) continue;
          const pos = arg2[f];
          const co = (pos / (S1 * P1)) | 0;
          const rem = pos - co * S1 * P1;
          const y = (rem / P1) | 0;
          const x = rem - y * P1;
          conv2B.g[co] += g;
          for (let ci = 0; ci < C1; ci++) {
            const wb = (co * C1 + ci) * 9;
            const pb = ci * P1 * P1 + y * P1 + x;
            for (let dy = 0; dy < 3; dy++) {
              const pr = pb + dy * P1;
              const wr = wb + dy * 3;
              g2[wr] += g * p1[pr];
              g2[wr + 1] += g * p1[pr + 1];
              g2[wr + 2] += g * p1[pr + 2];
              dp1[pr] += g * w2[wr];
              dp1[pr + 1] += g * w2[wr + 1];
              dp1[pr + 2] += g * w2[wr + 2];
            }
          }
        }
        // Through pool 1 / ReLU to conv 1.
        const g1 = conv1W.g;
        for (let c = 0; c < C1; c++) {
          for (let py = 0; py < S1; py++) {
            for (let px = 0; px < S1; px++) {
              const pi = c * P1 * P1 + (py + 1) * P1 + px + 1;
              if (p1[pi] === 0) continue;
              const g = dp1[pi];
              if (g === 0) continue;
              const pos = arg1[c * S1 * S1 + py * S1 + px] - c * S0 * P0;
              const y = (pos / P0) | 0;
              const x = pos - y * P0;
              conv1B.g[c] += g;
              const ib = y * P0 + x;
              const wb = c * 9;
              for (let dy = 0; dy < 3; dy++) {
                const r = ib + dy * P0;
                g1[wb + dy * 3] += g * in0[r];
                g1[wb + dy * 3 + 1] += g * in0[r + 1];
                g1[wb + dy * 3 + 2] += g * in0[r + 2];
              }
            }
          }
        }
      }
      opt.step(1 / (bEnd - bStart));
    }
    log(
      `epoch ${epoch + 1}/${cfg.epochs} lr=${opt.lr.toExponential(2)} loss=${(loss / train.count).toFixed(4)} ` +
        `train-acc=${(correct / train.count).toFixed(4)}`,
    );
    opt.lr *= cfg.lrDecay;
  }

  return {
    layers: [
      { kind: 'image', channels: 1, side: S0 },
      { kind: 'conv', cin: 1, cout: C1, k: 3, pad: 1, w: conv1W.w, b: conv1B.w },
      { kind: 'relu' },
      { kind: 'maxpool', size: 2 },
      { kind: 'conv', cin: C1, cout: C2, k: 3, pad: 1, w: conv2W.w, b: conv2B.w },
      { kind: 'relu' },
      { kind: 'maxpool', size: 2 },
      { kind: 'flatten' },
      { kind: 'dense', inSize: F, outSize: H, w: d1W.w, b: d1B.w },
      { kind: 'relu' },
      { kind: 'dense', inSize: H, outSize: NUM_CLASSES, w: d2W.w, b: d2B.w },
      { kind: 'softmax' },
    ],
  };
}
