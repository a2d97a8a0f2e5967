/** Wrapper for shaders/stats_partial.wgsl: per-(slice, channel) Welford partials. */
import source from '../../shaders/stats_partial.wgsl?raw';
import { defineKernel, dispatch, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const statsPartial = defineKernel('bn.stats_partial', source, ['params', 'x', 'partials'] as const, ['C', 'inner', 'M', 'chunk', 'cFold'] as const);

export function encodeStatsPartial(device: GPUDevice, pass: GPUComputePassEncoder, p: Plan, b: { x: BufferSlice; partials: BufferSlice }): void {
  const { C, inner, M } = p.geom;
  dispatch(device, pass, statsPartial, { C, inner, M, chunk: p.chunk, cFold: p.cFold }, b, [Math.min(C, p.cFold), p.slices, Math.ceil(C / p.cFold)]);
}
