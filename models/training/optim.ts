/** A trainable tensor with its gradient accumulator and Adam moments. */
export class Param {
  readonly g: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  constructor(readonly w: Float32Array) {
    this.g = new Float32Array(w.length);
    this.m = new Float32Array(w.length);
    this.v = new Float32Array(w.length);
  }
}

/** Adam (Kingma & Ba) over gradients summed across a minibatch; `scale` (1 / batch size) averages them. */
export class Adam {
  private t = 0;
  constructor(
    readonly params: readonly Param[],
    public lr = 1e-3,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly eps = 1e-8,
  ) {}

  step(scale: number): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this;
    const c1 = 1 - Math.pow(b1, this.t);
    const c2 = 1 - Math.pow(b2, this.t);
    const stepSize = (this.lr * Math.sqrt(c2)) / c1;
    const epsHat = eps * Math.sqrt(c2);
    for (const p of this.params) {
      const { w, g, m, v } = p;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i] * scale;
        const mi = b1 * m[i] + (1 - b1) * gi;
        const vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= (stepSize * mi) / (Math.sqrt(vi) + epsHat);
        g[i] = 0;
      }
    }
  }
}

/** In-place softmax of `z`; returns the cross-entropy loss against `label`. */
export function softmaxXent(z: Float32Array, label: number): number {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i] > max) max = z[i];
  let sum = 0;
  for (let i = 0; i < z.length; i++) {
    const e = Math.exp(z[i] - max);
    z[i] = e;
    sum += e;
  }
  for (let i = 0; i < z.length; i++) z[i] /= sum;
  return -Math.log(Math.max(z[label], 1e-12));
}
