/** Wrapper for shaders/apply.wgsl: y = ((x - pivot) - mean_v)·scale + shift per element. */
import source from '../../shaders/apply.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';
import type { Geometry } from '../layout';

export const apply = defineKernel('bn.apply', source, ['params', 'stats', 'x', 'y'] as const, ['C', 'inner', 'count'] as const);

export function encodeApply(
  device: GPUDevice, pass: GPUComputePassEncoder, g: Geometry,
  b: { stats: BufferSlice; x: BufferSlice; y: BufferSlice }, wg?: number,
): void {
  const groups = gridFor(device, Math.ceil(g.count / apply.threadsPerWorkgroup(wg)));
  dispatch(device, pass, apply, { C: g.C, inner: g.inner, count: g.count }, b, groups, wg, g.dtype);
}
