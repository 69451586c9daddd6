/** Loads an ONNX model into an onnxruntime-node session (inside a worker thread). */
import * as ort from 'onnxruntime-node';
import type { LoadedModel } from './model-runtime.js';
import type { ModelSpec } from './protocol.js';

export async function loadOnnx(spec: ModelSpec): Promise<LoadedModel> {
  const session = await ort.InferenceSession.create(spec.path, {
    intraOpNumThreads: spec.intraOpNumThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inputName = spec.inputName ?? session.inputNames[0];
  const outputName = spec.outputName ?? session.outputNames[0];
  if (inputName === undefined || !session.inputNames.includes(inputName)) {
    throw new Error(`model ${spec.key} has no input ${JSON.stringify(inputName)}; its inputs are ${JSON.stringify(session.inputNames)}`);
  }
  if (outputName === undefined || !session.outputNames.includes(outputName)) {
    throw new Error(`model ${spec.key} has no output ${JSON.stringify(outputName)}; its outputs are ${JSON.stringify(session.outputNames)}`);
  }
  return {
    spec,
    async run(input, rows) {
      const tensor = new ort.Tensor(spec.inputDtype, input, [rows, ...spec.featureShape]);
      const outputs = await session.run({ [inputName]: tensor }, [outputName]);
      const out = outputs[outputName] as ort.Tensor;
      if (out.type !== 'float32') throw new Error(`model ${spec.key} output ${outputName} is ${out.type}; expected float32`);
      return out.data as Float32Array;
    },
  };
}
