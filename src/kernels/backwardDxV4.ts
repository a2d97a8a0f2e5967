/** Wrapper for shaders/backward_dx_v4_rows.wgsl: channels-last dx, coefficients per thread. */
import source from '../../shaders/backward_dx_v4_rows.wgsl?raw';
import { defineKernel, type BufferSlice } from '../gpu/kernel';
import { encodeV4, type Plan } from './plan';

export const backwardDxV4Rows = defineKernel(
  'bn.backward_dx_v4_rows', source, ['params', 'stats', 'coef', 'x', 'dy', 'dx'] as const, ['C4', 'M', 'chunk', 'slices'] as const,
);

/** `p` is a 'rows' plan (threadPlan): the thread geometry of the version 4 reductions. */
export function encodeBackwardDxV4Rows(
  device: GPUDevice, pass: GPUComputePassEncoder, p: Plan,
  b: { stats: BufferSlice; coef: BufferSlice; x: BufferSlice; dy: BufferSlice; dx: BufferSlice }, wg?: number,
): void {
  encodeV4(device, pass, p, backwardDxV4Rows, null, b, wg);
}
