/**
 * Wrappers for shaders/backward_partial_v4_rows.wgsl (channels-last) and
 * backward_partial_v4_runs.wgsl (channels-first): Σdy and Σdy·(x - mean) from 16-byte loads.
 */
import rowsSource from '../../shaders/backward_partial_v4_rows.wgsl?raw';
import runsSource from '../../shaders/backward_partial_v4_runs.wgsl?raw';
import { defineKernel, type BufferSlice } from '../gpu/kernel';
import { encodeV4, type Plan } from './plan';

const BINDINGS = ['params', 'stats', 'x', 'dy', 'partials'] as const;
export const backwardPartialV4Rows = defineKernel('bn.backward_partial_v4_rows', rowsSource, BINDINGS, ['C4', 'M', 'chunk', 'slices'] as const);
export const backwardPartialV4Runs = defineKernel('bn.backward_partial_v4_runs', runsSource, BINDINGS, ['C', 'inner4', 'M4', 'slices'] as const);

export function encodeBackwardPartialV4(
  device: GPUDevice, pass: GPUComputePassEncoder, p: Plan,
  b: { stats: BufferSlice; x: BufferSlice; dy: BufferSlice; partials: BufferSlice }, wg?: number,
): void {
  encodeV4(device, pass, p, backwardPartialV4Rows, backwardPartialV4Runs, b, wg);
}
