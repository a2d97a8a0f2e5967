/** GPU-vs-reference conformance runs: `webgpu-batchnorm/conformance`. */
export * from './golden';
export * from './runner';
export { cpuBackend } from './cpuBackend';
export { webgpuBackend } from './webgpuBackend';
