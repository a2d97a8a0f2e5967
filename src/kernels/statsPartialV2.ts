/** Wrapper for shaders/stats_partial_v2.wgsl: vec4 channels-last Welford partials. */
import source from '../../shaders/stats_partial_v2.wgsl?raw';
import { defineKernel, dispatch, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const statsPartialV2 = defineKernel('bn.stats_partial_v2', source, ['params', 'x', 'partials'] as const, ['C4', 'M', 'chunk'] as const);

export function encodeStatsPartialV2(device: GPUDevice, pass: GPUComputePassEncoder, p: Plan, b: { x: BufferSlice; partials: BufferSlice }): void {
  const C4 = p.geom.C / 4;
  const lanes = statsPartialV2.reflection().workgroupSize[0];
  dispatch(device, pass, statsPartialV2, { C4, M: p.geom.M, chunk: p.chunk }, b, [Math.ceil(C4 / lanes), p.slices]);
}
