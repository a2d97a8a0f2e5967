/** Wrapper for shaders/backward_partial.wgsl: per-(slice, channel) Σdy and Σdy·(x - mean). */
import source from '../../shaders/backward_partial.wgsl?raw';
import { defineKernel, dispatch, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const backwardPartial = defineKernel(
  'bn.backward_partial', source, ['params', 'stats', 'x', 'dy', 'partials'] as const, ['C', 'inner', 'M', 'chunk', 'cFold'] as const,
);

export function encodeBackwardPartial(
  device: GPUDevice, pass: GPUComputePassEncoder, p: Plan,
  b: { stats: BufferSlice; x: BufferSlice; dy: BufferSlice; partials: BufferSlice },
): void {
  const { C, inner, M } = p.geom;
  dispatch(device, pass, backwardPartial, { C, inner, M, chunk: p.chunk, cFold: p.cFold }, b, [Math.min(C, p.cFold), p.slices, Math.ceil(C / p.cFold)]);
}
