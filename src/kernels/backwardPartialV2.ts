/** Wrapper for shaders/backward_partial_v2.wgsl: vec4 channels-last Σdy and Σdy·(x - mean). */
import source from '../../shaders/backward_partial_v2.wgsl?raw';
import { defineKernel, dispatch, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const backwardPartialV2 = defineKernel('bn.backward_partial_v2', source, ['params', 'stats', 'x', 'dy', 'partials'] as const, ['C4', 'M', 'chunk'] as const);

export function encodeBackwardPartialV2(
  device: GPUDevice, pass: GPUComputePassEncoder, p: Plan,
  b: { stats: BufferSlice; x: BufferSlice; dy: BufferSlice; partials: BufferSlice },
): void {
  const C4 = p.geom.C / 4;
  const lanes = backwardPartialV2.reflection().workgroupSize[0];
  dispatch(device, pass, backwardPartialV2, { C4, M: p.geom.M, chunk: p.chunk }, b, [Math.ceil(C4 / lanes), p.slices]);
}
