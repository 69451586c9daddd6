import path from 'node:path';
import { Clipper, modelsDir, OverloadedError, type BatchingMode } from '../index.js';
import type { InputSource } from './input-source.js';
import type { LoadTarget, QueryOutcome } from './load-target.js';

export interface ApiTargetOptions {
  /** A model in the repository, deployed as version 1 (default mnist-mlp). */
  model?: string;
  replicas?: number;
  sloMs: number;
  /** The application's prediction cache, bytes; 0 turns it off. Default: the application default. */
  cacheMaxBytes?: number;
  batching?: BatchingMode;
  /** A running system to query instead of starting one (its application `app` must exist). */
  clipper?: Clipper;
  app?: string;
}

/**
 * The programmatic API in this process: `clipper.predict(app, input)`. Unless given a running system, it
 * starts one with one application linked to one model. The generator shares the event loop with the system
 * here, so this measures the API, not a deployment; use an HTTP target for that.
 */
export class ApiTarget implements LoadTarget {
  readonly description: string;
  readonly #clipper: Clipper;
  readonly #app: string;
  readonly #inputs: InputSource;
  readonly #owned: boolean;

  private constructor(clipper: Clipper, app: string, inputs: InputSource, owned: boolean, description: string) {
    this.#clipper = clipper;
    this.#app = app;
    this.#inputs = inputs;
    this.#owned = owned;
    this.description = description;
  }

  static async start(options: ApiTargetOptions, inputs: InputSource): Promise<ApiTarget> {
    const app = options.app ?? 'loadtest';
    if (options.clipper !== undefined) return new ApiTarget(options.clipper, app, inputs, false, `in-process application ${app}`);
    const model = options.model ?? 'mnist-mlp';
    const replicas = options.replicas ?? 2;
    const clipper = await Clipper.start();
    try {
      await clipper.registerApp({
        name: app,
        inputType: 'float32',
        inputShape: [inputs.width],
        defaultOutput: -1,
        latencySloMs: options.sloMs,
        ...(options.cacheMaxBytes === undefined ? {} : { cacheMaxBytes: options.cacheMaxBytes }),
      });
      await clipper.deployModel({
        name: model,
        version: '1',
        path: path.join(modelsDir, model, '1', 'model.onnx'),
        replicas,
        ...(options.batching === undefined ? {} : { batching: { mode: options.batching } }),
      });
      await clipper.linkModel(app, model);
    } catch (error) {
      await clipper.stop();
      throw error;
    }
    return new ApiTarget(clipper, app, inputs, true, `in-process ${model} (${replicas} replicas), application ${app}`);
  }

  async send(): Promise<QueryOutcome> {
    const ref = this.#inputs.next();
    try {
      const answer = await this.#clipper.predict(this.#app, this.#inputs.floats(ref));
      if (answer.isDefault) return { status: 'default' };
      return { status: 'ok', cached: answer.cached, ...(answer.timings === undefined ? {} : { batchSize: answer.timings.batchSize }) };
    } catch (error) {
      if (error instanceof OverloadedError) return { status: 'refused' };
      return { status: 'error', detail: (error as Error).message };
    }
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#clipper.stop();
  }
}
