/** Wrapper for shaders/apply_v2.wgsl: the normalisation pass on vec4s. */
import source from '../../shaders/apply_v2.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';
import type { Geometry } from '../layout';

export const applyV2 = defineKernel('bn.apply_v2', source, ['params', 'stats', 'x', 'y'] as const, ['C', 'inner', 'count4'] as const);

export function encodeApplyV2(device: GPUDevice, pass: GPUComputePassEncoder, g: Geometry, b: { stats: BufferSlice; x: BufferSlice; y: BufferSlice }, wg?: number): void {
  const count4 = g.count / 4;
  dispatch(device, pass, applyV2, { C: g.C, inner: g.inner, count4 }, b, gridFor(device, Math.ceil(count4 / applyV2.threadsPerWorkgroup(wg))), wg, g.dtype);
}
