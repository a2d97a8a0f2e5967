/** Wrapper for shaders/backward_partial_v3.wgsl: barrier-free Σdy and Σdy·(x - mean) partials. */
import source from '../../shaders/backward_partial_v3.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const backwardPartialV3 = defineKernel(
  'bn.backward_partial_v3', source, ['params', 'stats', 'x', 'dy', 'partials'] as const, ['C', 'inner', 'M', 'chunk', 'slices'] as const,
);

export function encodeBackwardPartialV3(
  device: GPUDevice, pass: GPUComputePassEncoder, p: Plan,
  b: { stats: BufferSlice; x: BufferSlice; dy: BufferSlice; partials: BufferSlice }, wg?: number,
): void {
  const { C, inner, M } = p.geom;
  const groups = gridFor(device, Math.ceil((p.slices * C) / backwardPartialV3.threadsPerWorkgroup(wg)));
  dispatch(device, pass, backwardPartialV3, { C, inner, M, chunk: p.chunk, slices: p.slices }, b, groups, wg, p.geom.dtype);
}
