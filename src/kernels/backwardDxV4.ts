/** Wrapper for shaders/backward_dx_v4_rows.wgsl: channels-last dx, coefficients per thread. */
import source from '../../shaders/backward_dx_v4_rows.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const backwardDxV4Rows = defineKernel(
  'bn.backward_dx_v4_rows', source, ['params', 'stats', 'coef', 'x', 'dy', 'dx'] as const, ['C4', 'M', 'chunk', 'slices'] as const,
);

/** `p` is a 'rows' plan (threadPlan): the thread geometry of the version 4 reductions. */
export function encodeBackwardDxV4Rows(
  device: GPUDevice, pass: GPUComputePassEncoder, p: Plan,
  b: { stats: BufferSlice; coef: BufferSlice; x: BufferSlice; dy: BufferSlice; dx: BufferSlice }, wg?: number,
): void {
  const C4 = p.geom.C / 4;
  const groups = gridFor(device, Math.ceil((p.slices * C4) / backwardDxV4Rows.threadsPerWorkgroup(wg)));
  dispatch(device, pass, backwardDxV4Rows, { C4, M: p.geom.M, chunk: p.chunk, slices: p.slices }, b, groups, wg, p.geom.dtype);
}
