/** Wrapper for shaders/apply_v4_rows.wgsl: channels-last normalisation, coefficients per thread. */
import source from '../../shaders/apply_v4_rows.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const applyV4Rows = defineKernel('bn.apply_v4_rows', source, ['params', 'stats', 'x', 'y'] as const, ['C4', 'M', 'chunk', 'slices'] as const);

/** `p` is a 'rows' plan (threadPlan): the thread geometry of the version 4 reductions. */
export function encodeApplyV4Rows(device: GPUDevice, pass: GPUComputePassEncoder, p: Plan, b: { stats: BufferSlice; x: BufferSlice; y: BufferSlice }, wg?: number): void {
  const C4 = p.geom.C / 4;
  const groups = gridFor(device, Math.ceil((p.slices * C4) / applyV4Rows.threadsPerWorkgroup(wg)));
  dispatch(device, pass, applyV4Rows, { C4, M: p.geom.M, chunk: p.chunk, slices: p.slices }, b, groups, wg, p.geom.dtype);
}
