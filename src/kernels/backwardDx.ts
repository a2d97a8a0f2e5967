/** Wrapper for shaders/backward_dx.wgsl: dx = A·dy + B·(x - mean) + D per element. */
import source from '../../shaders/backward_dx.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';
import type { Geometry } from '../layout';

export const backwardDx = defineKernel('bn.backward_dx', source, ['params', 'stats', 'coef', 'x', 'dy', 'dx'] as const, ['C', 'inner', 'count'] as const);

export function encodeBackwardDx(
  device: GPUDevice, pass: GPUComputePassEncoder, g: Geometry,
  b: { stats: BufferSlice; coef: BufferSlice; x: BufferSlice; dy: BufferSlice; dx: BufferSlice }, wg?: number,
): void {
  const groups = gridFor(device, Math.ceil(g.count / backwardDx.threadsPerWorkgroup(wg)));
  dispatch(device, pass, backwardDx, { C: g.C, inner: g.inner, count: g.count }, b, groups, wg, g.dtype);
}
