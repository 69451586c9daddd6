import type { GrpcTargetOptions } from './grpc-target.js';
import type { HttpTargetOptions } from './http-target.js';
import type { LoadOutcome, LoadProgress, LoadSettings } from './load-runner.js';
import type { RateResult } from './load-run.js';

/** What the generator process is told to do: the target, the inputs and the schedule. */
export interface GeneratorConfig {
  http: HttpTargetOptions;
  /** When given, the load goes to the OIP gRPC service instead of `http` (which then only names the server). */
  grpc?: GrpcTargetOptions;
  inputs: {
    /** A JSON file of inputs. */
    file?: string;
    /**
     * Inputs laid end to end, `width` values each; MNIST held-out digits when neither this nor `file` is given
     * (the parent loads them: the mnist package's 10,000 digits would stay in the generator's heap, and every
     * major GC would scan them mid-run).
     */
    matrix?: { values: Float32Array; width: number; tagRepeats: boolean };
    repeatShare: number;
    seed: number;
  };
  load: LoadSettings;
}

/** Parent to generator. */
export type ToGenerator = { type: 'run'; config: GeneratorConfig } | { type: 'stop' };

/** Generator to parent. */
export type FromGenerator =
  | { type: 'progress'; progress: LoadProgress }
  | { type: 'rate'; result: RateResult }
  | { type: 'done'; outcome: LoadOutcome; target: string; pid: number }
  | { type: 'failed'; message: string };
