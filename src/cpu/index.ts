/** The float64 CPU path: `webgpu-batchnorm/cpu`. */
export { CpuBatchNorm, type CpuGradients } from './batchnorm.js';
export * as reference from './reference.js';
export * from '../errors.js';
export { geometry, isLayout, type Geometry, type Layout, type TensorDtype } from '../layout.js';
export { renormSchedule } from '../options.js';
export type { BatchNormOptions, RenormOptions, RenormSchedule, RenormScheduleOptions } from '../options.js';
export type { StateDict } from '../validate/state.js';
