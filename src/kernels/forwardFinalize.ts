/** Wrapper for shaders/forward_finalize.wgsl: merge partials, coefficients, running update. */
import source from '../../shaders/forward_finalize.wgsl?raw';
import { defineKernel, dispatch, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const forwardFinalize = defineKernel(
  'bn.forward_finalize', source,
  ['params', 'partials', 'gamma', 'beta', 'running_mean', 'running_spread', 'stats'] as const,
  ['C', 'slices', 'M', 'eps', 'factor', 'rmax', 'dmax', 'flags'] as const,
);

/** Flag bits of forward_finalize.wgsl. */
export const FinalizeFlags = { UPDATE: 1, UNBIASED: 2, RENORM: 4, AFFINE: 8 } as const;

export interface ForwardFinalizeArgs {
  eps: number;
  factor: number;
  rmax: number;
  dmax: number;
  flags: number;
}

export function encodeForwardFinalize(
  device: GPUDevice, pass: GPUComputePassEncoder, p: Plan, a: ForwardFinalizeArgs,
  b: { partials: BufferSlice; gamma: BufferSlice; beta: BufferSlice; running_mean: BufferSlice; running_spread: BufferSlice; stats: BufferSlice },
): void {
  const { C, M } = p.geom;
  dispatch(device, pass, forwardFinalize, { C, slices: p.slices, M, ...a }, b, [Math.ceil(C / forwardFinalize.threadsPerWorkgroup())]);
}
