/**
 * The backward pass of one dense layer y = x W + b (W stored [in][out] row-major, as in layers.ts), shared by
 * the MLP trainer (dense.ts) and the CNN's two dense layers (cnn.ts). Only the inputs listed in
 * `active[0..count)` are visited: the others are zero (a sparse pixel, a ReLU that was off), so they add nothing
 * to the weight gradient and need no delta.
 *
 * The sums run in a fixed order (inputs as listed, outputs 0..n-1), so retraining stays byte-identical.
 */
export interface DenseGradients {
  /** The layer's weights, [in][out] row-major. */
  readonly w: Float32Array;
  /** Their gradient accumulator, same layout: += x_i d_j. */
  readonly gw: Float32Array;
  /** The bias gradient accumulator (+= d_j), or undefined when the caller accumulates it itself. */
  readonly gb: Float32Array | undefined;
  /** Outputs per row. */
  readonly nOut: number;
}

/**
 * Accumulates the layer's gradients for one sample whose output delta is `d`, and, when `dIn` is given (a layer
 * with a trainable layer below it), writes the delta at its inputs: dIn[i] = sum_j W[i][j] d_j for the active
 * inputs, 0 elsewhere. `dInBias`, when given, also receives that delta as computed in double precision, before
 * `dIn` rounds it to float32: the bias gradient of the layer below, for callers that have always accumulated
 * it that way (cnn.ts; rounding first would change its trained bytes).
 */
export function denseBackward(
  layer: DenseGradients,
  x: Float32Array,
  active: Int32Array | Uint32Array,
  count: number,
  d: Float32Array,
  dIn?: Float32Array,
  dInBias?: Float32Array,
): void {
  const { w, gw, gb, nOut } = layer;
  if (gb !== undefined) for (let j = 0; j < nOut; j++) gb[j] += d[j];
  if (dIn === undefined) {
    for (let k = 0; k < count; k++) {
      const i = active[k];
      const xi = x[i];
      const row = i * nOut;
      for (let j = 0; j < nOut; j++) gw[row + j] += xi * d[j];
    }
    return;
  }
  dIn.fill(0);
  for (let k = 0; k < count; k++) {
    const i = active[k];
    const xi = x[i];
    const row = i * nOut;
    let back = 0;
    for (let j = 0; j < nOut; j++) {
      gw[row + j] += xi * d[j];
      back += w[row + j] * d[j];
    }
    dIn[i] = back;
    if (dInBias !== undefined) dInBias[i] += back;
  }
}
