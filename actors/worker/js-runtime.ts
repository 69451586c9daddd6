/** Loads a JS model module (inside a worker thread). */
import { pathToFileURL } from 'node:url';
import type { LoadedModel } from './model-runtime.js';
import type { ModelSpec } from './protocol.js';

/** A JS model module: `export function predict(input, rows, featureShape)` returning rows x k numbers. */
interface JsModelModule {
  predict(input: Float32Array | Int32Array, rows: number, featureShape: number[]): ArrayLike<number> | Promise<ArrayLike<number>>;
  load?(): void | Promise<void>;
}

export async function loadJs(spec: ModelSpec): Promise<LoadedModel> {
  const module = (await import(pathToFileURL(spec.path).href)) as Partial<JsModelModule>;
  if (typeof module.predict !== 'function') {
    throw new Error(`JS model ${spec.path} must export a function predict(input, rows, featureShape); it exports ${JSON.stringify(Object.keys(module))}`);
  }
  await module.load?.();
  const predict = module.predict.bind(module);
  return {
    spec,
    async run(input, rows) {
      const out = await predict(input, rows, spec.featureShape);
      return out instanceof Float32Array ? out : Float32Array.from(out);
    },
  };
}
