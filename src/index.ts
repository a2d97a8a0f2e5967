/** webgpu-batchnorm: Batch Normalization and Batch Renormalization as WebGPU compute kernels. */
export { BatchNorm } from './batchnorm';
export {
  encodeBackward, encodeForwardEval, encodeForwardTrain, LATEST_KERNEL_VERSION, statsByteLength, tensorByteLength, workspaceByteLength,
  type BackwardParams, type ForwardEvalParams, type ForwardParams, type ForwardTrainParams, type KernelVersion, type TensorArg,
} from './functional';
export { requestBatchNormDevice, type DeviceRequest } from './device';
export type { BufferSlice } from './gpu/kernel';
export * from './errors';
export * from './layout';
export { renormSchedule, resolveOptions } from './options';
export { fromHalfArray, roundHalf, toHalfArray } from './cpu/f16';
export type { BatchNormOptions, Convention, RenormClip, RenormOptions, RenormSchedule, RenormScheduleOptions } from './options';
export type { StateDict } from './moduleBase';
