/** The float64 CPU path: `webgpu-batchnorm/cpu`. */
export { CpuBatchNorm } from './batchnorm';
export * as reference from './reference';
export * from '../errors';
export * from '../layout';
export { renormSchedule } from '../options';
export type { BatchNormOptions, RenormOptions, RenormSchedule, RenormScheduleOptions } from '../options';
export type { StateDict } from '../moduleBase';
