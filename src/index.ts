/** webgpu-batchnorm: Batch Normalization and Batch Renormalization as WebGPU compute kernels. */
export { BatchNorm } from './module/batchnorm.js';
export { BatchNormStep } from './module/step.js';
export { type StepTensors, type SyncBackwardOptions, type SyncForwardOptions } from './module/types.js';
export { mergeGradSums, mergeStats, type ShardGradSums, type ShardStats } from './sync.js';
export { encodeBackward, encodeForwardEval, encodeForwardTrain, PLAN_CACHE_SIZE } from './functional.js';
export { planBackward, planForwardEval, planForwardTrain, workspaceByteLength } from './plan/plans.js';
export {
  statsByteLength,
  tensorByteLength,
  type BackwardParams,
  type ForwardEvalParams,
  type ForwardParams,
  type ForwardTrainParams,
} from './plan/params.js';
export { type Plan } from './plan/pass.js';
export { foldBatchNorm, type FoldLayer, type GpuFoldLayer, type WeightLayout } from './fold/host.js';
export { requestBatchNormDevice, type DeviceRequest } from './device.js';
export { readBuffer } from './gpu/buffers.js';
export type { BufferSlice } from './gpu/kernel.js';
export type { TensorArg } from './validate/buffers.js';
export * from './errors.js';
export { geometry, isLayout, type Geometry, type Layout, type StorageType, type TensorDtype } from './layout.js';
export { renormSchedule } from './options.js';
export { resolveOptions } from './validate/options.js';
export { fromHalfArray, roundHalf, toHalfArray } from './f16.js';
export type {
  BatchNormOptions,
  Breakpoints,
  Convention,
  PiecewiseSchedule,
  RenormClip,
  RenormOptions,
  RenormSchedule,
  RenormScheduleOptions,
} from './options.js';
export type { StateDict, StateDictInput, StateTensorKey } from './validate/state.js';
