/**
 * Wrappers for shaders/stats_partial_v4_rows.wgsl (channels-last) and stats_partial_v4_runs.wgsl
 * (channels-first): Welford partials from 16-byte loads, one thread per (slice, channel group).
 */
import rowsSource from '../../shaders/stats_partial_v4_rows.wgsl?raw';
import runsSource from '../../shaders/stats_partial_v4_runs.wgsl?raw';
import { defineKernel, type BufferSlice } from '../gpu/kernel';
import { encodeV4, type Plan } from './plan';

export const statsPartialV4Rows = defineKernel('bn.stats_partial_v4_rows', rowsSource, ['params', 'x', 'partials'] as const, ['C4', 'M', 'chunk', 'slices'] as const);
export const statsPartialV4Runs = defineKernel('bn.stats_partial_v4_runs', runsSource, ['params', 'x', 'partials'] as const, ['C', 'inner4', 'M4', 'slices'] as const);

export function encodeStatsPartialV4(device: GPUDevice, pass: GPUComputePassEncoder, p: Plan, b: { x: BufferSlice; partials: BufferSlice }, wg?: number): void {
  encodeV4(device, pass, p, statsPartialV4Rows, statsPartialV4Runs, b, wg);
}
