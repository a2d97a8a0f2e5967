/**
 * Reduction geometry shared by the two-stage reductions (statistics and gradient sums): which
 * kernel version runs, how many slices each channel's M values are split into, and how channels
 * fold onto dispatch dimensions.
 */
import type { Geometry } from '../layout';
import { dispatch, gridFor, type BufferSlice, type Kernel } from '../gpu/kernel';
import { mergeLevels } from './merge';

/**
 * Kernel sets, numbered as they were written; each is validated by the same tests.
 * 1: layout-generic scalar kernels, one workgroup per (channel, slice).
 * 2: vec4 kernels where the layout allows (channels-last with C % 4 == 0 for the reductions; groups
 *    of four elements sharing a channel or spanning four channels for the elementwise passes),
 *    version 1 elsewhere.
 * 3: version 2's elementwise passes, and reductions with one thread per (channel, slice) and no
 *    workgroup memory or barriers, in every layout.
 * 4: elementwise passes that keep four channels' coefficients per thread over a slice of rows
 *    (channels-last, C % 4 == 0), version 2's elsewhere; barrier-free reductions on 16-byte loads with several in
 *    flight per thread, across channels of a row (channels-last, C % 4 == 0) or along contiguous
 *    runs (channels-first, inner % 4 == 0), version 3's elsewhere; then merge levels, so no pass
 *    merges more than MERGE_GROUP partials per channel serially.
 */
export type KernelVersion = 1 | 2 | 3 | 4;
export const KERNEL_VERSIONS: readonly KernelVersion[] = [1, 2, 3, 4];

/**
 * Which reduction kernels a plan uses: workgroup trees (v1), vec4 workgroup trees (v2), threads
 * (v3, and v4's fallback), or v4's vec4 threads across a row's channels ('rows') or along runs.
 */
export type ReductionKind = 'workgroup' | 'vec4' | 'thread' | 'rows' | 'runs';

export interface Plan {
  geom: Geometry;
  kind: ReductionKind;
  /** Values (rows for vec4) of one channel per workgroup. */
  chunk: number;
  /** Workgroups per channel (group). */
  slices: number;
  /** Channels per dispatch row (the x dimension), within the device's per-dimension limit. */
  cFold: number;
  /** Partials per channel after each merge level (version 4; empty otherwise). */
  levels: number[];
}

/** Workgroups the reductions aim for in all: enough to fill a large GPU, few enough for a CPU. */
const TARGET_WORKGROUPS = 2048;

/** Threads the barrier-free reductions aim for: enough to fill a large GPU. */
const TARGET_THREADS = 65536;
/** Fewest values one barrier-free thread reduces, so the finalize pass has little to merge. */
const MIN_PER_THREAD = 16;

/** The reduction kernels for a shape and version. */
export function reductionKind(g: Geometry, version: KernelVersion): ReductionKind {
  if (version === 4) return g.inner === 1 && g.C % 4 === 0 ? 'rows' : g.inner % 4 === 0 ? 'runs' : 'thread';
  if (version === 3) return 'thread';
  return version === 2 && g.inner === 1 && g.C % 4 === 0 ? 'vec4' : 'workgroup';
}

/** The vec4 elementwise passes apply: each group of four shares a channel or spans four. */
export function elementwiseIsVec4(g: Geometry, version: KernelVersion): boolean {
  return version >= 2 && g.count % 4 === 0 && (g.inner % 4 === 0 || (g.inner === 1 && g.C % 4 === 0));
}

/**
 * `threads`: threads per channel (group) in the reduction kernel; `channelsPerGroup`: channels one
 * workgroup covers. Both come from the kernel's WGSL. Each thread gets at least 4 values, and the
 * slices spread TARGET_WORKGROUPS over the channel groups.
 */
export function reductionPlan(geom: Geometry, kind: ReductionKind, threads: number, channelsPerGroup: number, maxPerDimension: number): Plan {
  const groups = Math.ceil(geom.C / channelsPerGroup);
  const bySize = Math.ceil(geom.M / (threads * 4));
  const byTarget = Math.max(1, Math.floor(TARGET_WORKGROUPS / groups));
  return withSlices(geom, kind, Math.min(bySize, byTarget, maxPerDimension), maxPerDimension);
}

/**
 * Plan for the barrier-free reductions: slices·(threads per slice) threads, each with at least
 * MIN_PER_THREAD loads (values, or vec4s for 'rows' and 'runs'). Version 4 adds merge levels.
 */
export function threadPlan(geom: Geometry, kind: 'thread' | 'rows' | 'runs', maxPerDimension: number, merge: boolean): Plan {
  const perSlice = kind === 'rows' ? geom.C / 4 : geom.C;
  const loads = kind === 'runs' ? geom.M / 4 : geom.M;
  const byTarget = Math.ceil(TARGET_THREADS / perSlice);
  const bySize = Math.ceil(loads / MIN_PER_THREAD);
  const plan = withSlices(geom, kind, Math.min(byTarget, bySize), maxPerDimension);
  return merge ? { ...plan, levels: mergeLevels(plan.slices) } : plan;
}

function withSlices(geom: Geometry, kind: ReductionKind, want: number, maxPerDimension: number): Plan {
  let slices = Math.max(1, want);
  const chunk = Math.ceil(geom.M / slices);
  slices = Math.ceil(geom.M / chunk);
  return { geom, kind, chunk, slices, cFold: Math.min(geom.C, maxPerDimension), levels: [] };
}

/** Uniforms of version 4's kernels on a 'rows' plan: one thread per (slice, 4 channels). */
type RowsParam = 'C4' | 'M' | 'chunk' | 'slices';
/** Uniforms of version 4's kernels on a 'runs' plan: one thread per (channel, slice). */
type RunsParam = 'C' | 'inner4' | 'M4' | 'slices';

/**
 * Encodes a version 4 kernel on plan `p`: `rows` on a 'rows' plan, `runs` (when given) otherwise,
 * with one thread per (slice, channel group) and the plan's uniforms.
 */
export function encodeV4<B extends string>(
  device: GPUDevice, pass: GPUComputePassEncoder, p: Plan, rows: Kernel<B, RowsParam>, runs: Kernel<B, RunsParam> | null,
  buffers: Record<Exclude<B, 'params'>, BufferSlice>, wg?: number,
): void {
  const { C, inner, M, dtype } = p.geom;
  if (p.kind === 'rows') {
    const groups = gridFor(device, Math.ceil((p.slices * (C / 4)) / rows.threadsPerWorkgroup(wg)));
    dispatch(device, pass, rows, { C4: C / 4, M, chunk: p.chunk, slices: p.slices }, buffers, groups, wg, dtype);
  } else if (runs && p.kind === 'runs') {
    const groups = gridFor(device, Math.ceil((p.slices * C) / runs.threadsPerWorkgroup(wg)));
    dispatch(device, pass, runs, { C, inner4: inner / 4, M4: M / 4, slices: p.slices }, buffers, groups, wg, dtype);
  } else {
    throw new Error(`no version 4 kernel for a '${p.kind}' plan`);
  }
}
