export { Clipper, type AppInfo, type ModelInfo } from './clipper.js';
export type { Answer } from '../actors/router.js';
export type { ReplicaStatus } from '../actors/replica-set.js';
export * from './errors.js';
export type { BatchingMode, BatchingOptions, ClipperOptions, DeployModelOptions, FaultOptions, InputType, RegisterAppOptions } from './options.js';
export { StaticPolicy, type Combined, type ModelOutput, type SelectionPolicy } from './selection-policy.js';
export { ManualClock, systemClock, type Clock, type TimerHandle } from './clock.js';
export type { SupervisionEvent } from './supervisor.js';
