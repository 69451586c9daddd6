/**
 * A trained network as a plain, structured-clone-friendly list of layers: what the trainers (running in worker
 * threads) hand back to `models/train.ts`, and what `onnx-graph.ts` turns into an ONNX graph.
 *
 * Weight layouts match ONNX directly so export is a byte copy:
 * - dense: `w` is [in][out] row-major (Gemm's B with transB = 0), `b` is [out];
 * - conv:  `w` is [cout][cin][k][k] (ONNX Conv's W), `b` is [cout]; stride 1, symmetric zero padding `pad`.
 */
export type Layer =
  | { readonly kind: 'image'; readonly channels: 1; readonly side: number } // Reshape [N, side*side] -> [N, 1, side, side]
  | { readonly kind: 'dense'; readonly inSize: number; readonly outSize: number; readonly w: Float32Array; readonly b: Float32Array }
  | {
      readonly kind: 'conv';
      readonly cin: number;
      readonly cout: number;
      readonly k: number;
      readonly pad: number;
      readonly w: Float32Array;
      readonly b: Float32Array;
    }
  | { readonly kind: 'relu' }
  | { readonly kind: 'maxpool'; readonly size: number } // kernel = stride = size
  | { readonly kind: 'flatten' }
  /**
   * Test-time augmentation, part 1: after `image`, every digit becomes the (2r+1)^2 copies of itself shifted by
   * -r..r pixels in y and x (zero fill), stacked along the batch: [N, 1, s, s] -> [N * (2r+1)^2, 1, s, s].
   * No parameters (ONNX Pad, Slice, Concat, Reshape).
   */
  | { readonly kind: 'shifts'; readonly radius: number; readonly side: number }
  /** Test-time augmentation, part 2: the mean of each digit's `copies` logit rows: [N * copies, C] -> [N, C]. */
  | { readonly kind: 'mean'; readonly copies: number; readonly classes: number }
  /**
   * k nearest neighbours over stored prototypes: `w` is [dim][count] (-2 * prototype, transposed) and `b` is [count]
   * (squared prototype norms), so `x w + b` is each prototype's squared distance to x minus |x|^2 (the same for all
   * prototypes, so the ranking is the distance ranking). The `k` smallest pick rows of `votes` ([count][classes]:
   * the prototype's one-hot label times `scale`), weighted by `rankWeights` ([k], nearest first), summed.
   */
  | {
      readonly kind: 'nearest';
      readonly dim: number;
      readonly count: number;
      readonly k: number;
      readonly classes: number;
      readonly w: Float32Array;
      readonly b: Float32Array;
      readonly votes: Float32Array;
      readonly rankWeights: Float32Array;
    }
  | { readonly kind: 'softmax' };

export interface TrainedNet {
  readonly layers: readonly Layer[];
}

/** Number of stored float scalars (weights, biases; for `nearest`, the prototypes, their norms, votes and rank weights). */
export function parameterCount(net: TrainedNet): number {
  let n = 0;
  for (const l of net.layers) {
    if (l.kind === 'dense' || l.kind === 'conv') n += l.w.length + l.b.length;
    else if (l.kind === 'nearest') n += l.w.length + l.b.length + l.votes.length + l.rankWeights.length;
  }
  return n;
}
