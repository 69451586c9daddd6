/** What the worker entry needs of a loaded model, whichever runtime holds it (onnxruntime or a JS module). */
import type { ModelSpec } from './protocol.js';

export interface LoadedModel {
  readonly spec: ModelSpec;
  /** Runs rows x features of input; returns rows x k values. */
  run(input: Float32Array | Int32Array, rows: number): Promise<Float32Array>;
}
