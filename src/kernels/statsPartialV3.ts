/** Wrapper for shaders/stats_partial_v3.wgsl: barrier-free Welford partials, one thread per (slice, channel). */
import source from '../../shaders/stats_partial_v3.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const statsPartialV3 = defineKernel('bn.stats_partial_v3', source, ['params', 'x', 'partials'] as const, ['C', 'inner', 'M', 'chunk', 'slices'] as const);

export function encodeStatsPartialV3(device: GPUDevice, pass: GPUComputePassEncoder, p: Plan, b: { x: BufferSlice; partials: BufferSlice }, wg?: number): void {
  const { C, inner, M } = p.geom;
  const groups = gridFor(device, Math.ceil((p.slices * C) / statsPartialV3.threadsPerWorkgroup(wg)));
  dispatch(device, pass, statsPartialV3, { C, inner, M, chunk: p.chunk, slices: p.slices }, b, groups, wg, p.geom.dtype);
}
