export { Clipper } from './clipper.js';
export type {
  Answer,
  AppCounters,
  AppInfo,
  BatchEvent,
  ClipperTestingHandle,
  Fault,
  FeedbackRelay,
  FeedbackResult,
  InputType,
  ModelInfo,
  ModelSignatureInfo,
  ModelVersionInfo,
  OutputKind,
  PredictOptions,
  ReplicaCounters,
  RelayedFeedback,
  ReplicaStatus,
} from './api.js';
export * from './errors.js';
export type { BatchingMode, BatchingOptions, ClipperOptions, DeployModelOptions, FaultOptions, HedgingOptions, RegisterAppOptions } from './config/options.js';
export { StaticPolicy, type Combined, type ModelOutput, type PolicySnapshot, type QueryContext, type Selection, type SelectionPolicy } from './selection/selection-policy.js';
export { Exp3Policy, type Exp3Options } from './selection/exp3-policy.js';
export { Exp4Policy, type Exp4Options } from './selection/exp4-policy.js';
export { AbSplitPolicy } from './selection/ab-policy.js';
export { KeyedPolicy, type KeyedPolicyOptions } from './selection/keyed-policy.js';
export { createPolicy, type PolicySpec } from './selection/policy-factory.js';
export { ManualClock, systemClock, type Clock, type TimerHandle } from './kernel/clock.js';
export { mulberry32, type Random } from './kernel/random.js';
export type { SupervisionEvent } from './kernel/supervisor.js';
export { digit, digitBatch, IMAGE_SIZE, loadMnist, type Digits } from './data/mnist-data.js';
export { modelsDir, projectRoot } from './paths.js';
export { elementCount } from './config/shape.js';
export { Cancellation, type CancelSignal } from './kernel/cancellation.js';
