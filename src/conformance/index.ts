/** GPU-vs-reference conformance runs: `webgpu-batchnorm/conformance`. */
export * from './golden';
export * from './runner';
export { cpuBackend } from './cpuBackend';
export { webgpuBackend } from './webgpuBackend';
export { compareGpuCpu, type Errors, type Scenario } from './compare';
export { f16Cases, f16Failures, runF16Cases, F16_OUTPUT_TOLERANCE, F16_STATE_TOLERANCE, type F16Result } from './f16';
