/** Wrapper for shaders/backward_dx_v2.wgsl: dx on vec4s. */
import source from '../../shaders/backward_dx_v2.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';
import type { Geometry } from '../layout';

export const backwardDxV2 = defineKernel('bn.backward_dx_v2', source, ['params', 'stats', 'coef', 'x', 'dy', 'dx'] as const, ['C', 'inner', 'count4'] as const);

export function encodeBackwardDxV2(
  device: GPUDevice, pass: GPUComputePassEncoder, g: Geometry,
  b: { stats: BufferSlice; coef: BufferSlice; x: BufferSlice; dy: BufferSlice; dx: BufferSlice }, wg?: number,
): void {
  const count4 = g.count / 4;
  dispatch(device, pass, backwardDxV2, { C: g.C, inner: g.inner, count4 }, b, gridFor(device, Math.ceil(count4 / backwardDxV2.threadsPerWorkgroup(wg))), wg, g.dtype);
}
