/**
 * Reduction geometry shared by the two-stage reductions (statistics and gradient sums): which
 * kernel version runs, how many slices each channel's M values are split into, and how channels
 * fold onto dispatch dimensions.
 */
import type { Geometry } from '../layout';

/**
 * Kernel sets, numbered as they were written; each is validated by the same tests.
 * 1: layout-generic scalar kernels, one workgroup per (channel, slice).
 * 2: vec4 kernels where the layout allows (channels-last with C % 4 == 0 for the reductions; groups
 *    of four elements sharing a channel or spanning four channels for the elementwise passes),
 *    version 1 elsewhere.
 */
export type KernelVersion = 1 | 2;
export const KERNEL_VERSIONS: readonly KernelVersion[] = [1, 2];

export interface Plan {
  geom: Geometry;
  /** Whether the reductions use the vec4 channels-last kernels (version 2). */
  vec4: boolean;
  /** Values (rows for vec4) of one channel per workgroup. */
  chunk: number;
  /** Workgroups per channel (group). */
  slices: number;
  /** Channels per dispatch row (the x dimension), within the device's per-dimension limit. */
  cFold: number;
}

/** Workgroups the reductions aim for in all: enough to fill a large GPU, few enough for a CPU. */
const TARGET_WORKGROUPS = 2048;

/** The vec4 channels-last reductions apply: channels innermost and a multiple of four. */
export function reductionIsVec4(g: Geometry, version: KernelVersion): boolean {
  return version >= 2 && g.inner === 1 && g.C % 4 === 0;
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
export function reductionPlan(geom: Geometry, vec4: boolean, threads: number, channelsPerGroup: number, maxPerDimension: number): Plan {
  const groups = Math.ceil(geom.C / channelsPerGroup);
  const bySize = Math.ceil(geom.M / (threads * 4));
  const byTarget = Math.max(1, Math.floor(TARGET_WORKGROUPS / groups));
  let slices = Math.max(1, Math.min(bySize, byTarget, maxPerDimension));
  const chunk = Math.ceil(geom.M / slices);
  slices = Math.ceil(geom.M / chunk);
  return { geom, vec4, chunk, slices, cFold: Math.min(geom.C, maxPerDimension) };
}
