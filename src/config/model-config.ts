import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { ForbiddenPathError, ModelLoadError } from '../errors.js';
import type { BatchingOptions, InputType } from './options.js';

/** The `config.json` beside a model file (Triton's `config.pbtxt`, in JSON). */
export interface ModelConfig {
  name?: string;
  version?: string;
  platform?: string;
  input: { name?: string; dtype: InputType; shape: number[] };
  output: { name?: string; dtype?: string; shape?: number[]; kind?: 'classification' | 'regression' };
  /**
   * The model's own batching defaults (any of `deployModel`'s batching options): applied under the options a
   * deployment gives, so `deployModel({ batching })` overrides them key by key.
   */
  batching?: BatchingOptions;
  heldOutAccuracy?: number;
}

/**
 * Resolves a model path and confines it to the repository: relative paths are tried against the working
 * directory, then against the repository itself; symlinks are resolved before the check, so no path can
 * reach outside. Throws {@link ForbiddenPathError} or {@link ModelLoadError} (missing file).
 */
export function resolveModelPath(repository: string, given: string): string {
  const root = realpathSync(repository);
  const candidates = path.isAbsolute(given) ? [given] : [path.resolve(given), path.resolve(root, given)];
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined) {
    throw new ModelLoadError(`model file ${JSON.stringify(given)} does not exist (looked at ${candidates.map((c) => JSON.stringify(c)).join(' and ')})`);
  }
  const real = realpathSync(found);
  const relative = path.relative(root, real);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new ForbiddenPathError(`model path ${JSON.stringify(given)} resolves outside the model repository ${root}`);
  }
  return real;
}

/** Reads `config.json` beside the model file, if there is one. */
export function readModelConfig(modelPath: string): ModelConfig | undefined {
  const file = path.join(path.dirname(modelPath), 'config.json');
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ModelLoadError(`model config ${file} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const config = parsed as Partial<ModelConfig>;
  const input = config.input;
  if (typeof input !== 'object' || input === null || !Array.isArray(input.shape) || !['float32', 'int32'].includes(input.dtype as string)) {
    throw new ModelLoadError(`model config ${file} must have input: { dtype: "float32" | "int32", shape: number[] }`);
  }
  if (config.batching !== undefined && (typeof config.batching !== 'object' || config.batching === null || Array.isArray(config.batching))) {
    throw new ModelLoadError(`model config ${file}: batching must be an object of batching options, e.g. { "maxBatchSize": 64 }`);
  }
  return { ...config, input, output: config.output ?? {} } as ModelConfig;
}
