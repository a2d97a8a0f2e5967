/** Wrapper for shaders/apply_v4_rows.wgsl: channels-last normalisation, coefficients per thread. */
import source from '../../shaders/apply_v4_rows.wgsl?raw';
import { defineKernel, type BufferSlice } from '../gpu/kernel';
import { encodeV4, type Plan } from './plan';

export const applyV4Rows = defineKernel('bn.apply_v4_rows', source, ['params', 'stats', 'x', 'y'] as const, ['C4', 'M', 'chunk', 'slices'] as const);

/** `p` is a 'rows' plan (threadPlan): the thread geometry of the version 4 reductions. */
export function encodeApplyV4Rows(device: GPUDevice, pass: GPUComputePassEncoder, p: Plan, b: { stats: BufferSlice; x: BufferSlice; y: BufferSlice }, wg?: number): void {
  encodeV4(device, pass, p, applyV4Rows, null, b, wg);
}
