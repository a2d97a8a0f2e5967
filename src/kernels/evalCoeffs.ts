/** Wrapper for shaders/eval_coeffs.wgsl: inference coefficients from running statistics. */
import source from '../../shaders/eval_coeffs.wgsl?raw';
import { defineKernel, dispatch, type BufferSlice } from '../gpu/kernel';

export const evalCoeffs = defineKernel(
  'bn.eval_coeffs', source,
  ['params', 'gamma', 'beta', 'running_mean', 'running_spread', 'stats'] as const,
  ['C', 'eps', 'flags'] as const,
);

/** Flag bits of eval_coeffs.wgsl. */
export const EvalFlags = { AFFINE: 1, SPREAD_IS_STD: 2 } as const;

export function encodeEvalCoeffs(
  device: GPUDevice, pass: GPUComputePassEncoder, a: { C: number; eps: number; flags: number },
  b: { gamma: BufferSlice; beta: BufferSlice; running_mean: BufferSlice; running_spread: BufferSlice; stats: BufferSlice },
): void {
  dispatch(device, pass, evalCoeffs, a, b, [Math.ceil(a.C / evalCoeffs.threadsPerWorkgroup())]);
}
