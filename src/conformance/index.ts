/** GPU-vs-reference conformance runs: `webgpu-batchnorm/conformance`. */
export * from './golden.js';
export * from './runner.js';
export { cpuBackend } from './cpuBackend.js';
export { webgpuBackend } from './webgpuBackend.js';
export { notExpressible, tfjsBackend, TFJS_TOLERANCE, type TfjsConformanceEnv } from './tfjsBackend.js';
export { compareGpuCpu, type Errors, type Scenario } from './compare.js';
export {
  f16Cases,
  f16Failures,
  f16Report,
  runF16Cases,
  F16_OUTPUT_TOLERANCE,
  F16_STATE_TOLERANCE,
  type F16Report,
  type F16Result,
} from './f16.js';
export { permute, shapeInLayout } from './layouts.js';
