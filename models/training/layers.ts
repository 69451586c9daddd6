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
  | { readonly kind: 'softmax' };

export interface TrainedNet {
  readonly layers: readonly Layer[];
}

/** Number of trainable scalars. */
export function parameterCount(net: TrainedNet): number {
  let n = 0;
  for (const l of net.layers) if (l.kind === 'dense' || l.kind === 'conv') n += l.w.length + l.b.length;
  return n;
}
