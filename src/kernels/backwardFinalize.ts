/** Wrapper for shaders/backward_finalize.wgsl: coefficients (A, B, D) over the partials, dgamma, dbeta. */
import source from '../../shaders/backward_finalize.wgsl?raw';
import { defineKernel, dispatch, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const backwardFinalize = defineKernel(
  'bn.backward_finalize', source,
  ['params', 'partials', 'stats', 'gamma', 'dgamma', 'dbeta'] as const,
  ['C', 'slices', 'M', 'flags'] as const,
);

/** Flag bits of backward_finalize.wgsl. */
export const BackwardFlags = { BATCH_STATS: 1, AFFINE: 2 } as const;

export function encodeBackwardFinalize(
  device: GPUDevice, pass: GPUComputePassEncoder, p: Plan, flags: number,
  b: { partials: BufferSlice; stats: BufferSlice; gamma: BufferSlice; dgamma: BufferSlice; dbeta: BufferSlice },
): void {
  const { C, M } = p.geom;
  dispatch(device, pass, backwardFinalize, { C, slices: p.slices, M, flags }, b, [Math.ceil(C / backwardFinalize.threadsPerWorkgroup())]);
}
