/**
 * Wrappers for shaders/backward_partial_v4_rows.wgsl (channels-last) and
 * backward_partial_v4_runs.wgsl (channels-first): Σdy and Σdy·(x - mean) from 16-byte loads.
 */
import rowsSource from '../../shaders/backward_partial_v4_rows.wgsl?raw';
import runsSource from '../../shaders/backward_partial_v4_runs.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';
import type { Plan } from './plan';

const BINDINGS = ['params', 'stats', 'x', 'dy', 'partials'] as const;
export const backwardPartialV4Rows = defineKernel('bn.backward_partial_v4_rows', rowsSource, BINDINGS, ['C4', 'M', 'chunk', 'slices'] as const);
export const backwardPartialV4Runs = defineKernel('bn.backward_partial_v4_runs', runsSource, BINDINGS, ['C', 'inner4', 'M4', 'slices'] as const);

export function encodeBackwardPartialV4(
  device: GPUDevice, pass: GPUComputePassEncoder, p: Plan,
  b: { stats: BufferSlice; x: BufferSlice; dy: BufferSlice; partials: BufferSlice }, wg?: number,
): void {
  const { C, inner, M } = p.geom;
  if (p.kind === 'rows') {
    const C4 = C / 4;
    const groups = gridFor(device, Math.ceil((p.slices * C4) / backwardPartialV4Rows.threadsPerWorkgroup(wg)));
    dispatch(device, pass, backwardPartialV4Rows, { C4, M, chunk: p.chunk, slices: p.slices }, b, groups, wg, p.geom.dtype);
  } else {
    const groups = gridFor(device, Math.ceil((p.slices * C) / backwardPartialV4Runs.threadsPerWorkgroup(wg)));
    dispatch(device, pass, backwardPartialV4Runs, { C, inner4: inner / 4, M4: M / 4, slices: p.slices }, b, groups, wg, p.geom.dtype);
  }
}
