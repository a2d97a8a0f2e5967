/**
 * Wrappers for shaders/stats_partial_v4_rows.wgsl (channels-last) and stats_partial_v4_runs.wgsl
 * (channels-first): Welford partials from 16-byte loads, one thread per (slice, channel group).
 */
import rowsSource from '../../shaders/stats_partial_v4_rows.wgsl?raw';
import runsSource from '../../shaders/stats_partial_v4_runs.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

export const statsPartialV4Rows = defineKernel('bn.stats_partial_v4_rows', rowsSource, ['params', 'x', 'partials'] as const, ['C4', 'M', 'chunk', 'slices'] as const);
export const statsPartialV4Runs = defineKernel('bn.stats_partial_v4_runs', runsSource, ['params', 'x', 'partials'] as const, ['C', 'inner4', 'M4', 'slices'] as const);

export function encodeStatsPartialV4(device: GPUDevice, pass: GPUComputePassEncoder, p: Plan, b: { x: BufferSlice; partials: BufferSlice }, wg?: number): void {
  const { C, inner, M } = p.geom;
  if (p.kind === 'rows') {
    const C4 = C / 4;
    const groups = gridFor(device, Math.ceil((p.slices * C4) / statsPartialV4Rows.threadsPerWorkgroup(wg)));
    dispatch(device, pass, statsPartialV4Rows, { C4, M, chunk: p.chunk, slices: p.slices }, b, groups, wg, p.geom.dtype);
  } else {
    const groups = gridFor(device, Math.ceil((p.slices * C) / statsPartialV4Runs.threadsPerWorkgroup(wg)));
    dispatch(device, pass, statsPartialV4Runs, { C, inner4: inner / 4, M4: M / 4, slices: p.slices }, b, groups, wg, p.geom.dtype);
  }
}
