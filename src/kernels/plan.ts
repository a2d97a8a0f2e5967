/**
 * Reduction geometry shared by the two-stage reductions (statistics and gradient sums): how many
 * slices each channel's M values are split into, and how channels fold onto dispatch dimensions.
 */
import type { Geometry } from '../layout';

export interface Plan {
  geom: Geometry;
  /** Values of one channel per workgroup. */
  chunk: number;
  /** Workgroups per channel. */
  slices: number;
  /** Channels per dispatch row (the x dimension), within the device's per-dimension limit. */
  cFold: number;
}

/** Workgroups the reductions aim for in all: enough to fill a large GPU, few enough for a CPU. */
const TARGET_WORKGROUPS = 2048;

/**
 * `threads` is the reduction kernel's workgroup size (from its WGSL). Each workgroup gets at least
 * 4 values per thread, and no more slices than the target spreads over C channels.
 */
export function reductionPlan(geom: Geometry, threads: number, maxPerDimension: number): Plan {
  const bySize = Math.ceil(geom.M / (threads * 4));
  const byTarget = Math.max(1, Math.floor(TARGET_WORKGROUPS / geom.C));
  let slices = Math.max(1, Math.min(bySize, byTarget, maxPerDimension));
  const chunk = Math.ceil(geom.M / slices);
  slices = Math.ceil(geom.M / chunk);
  return { geom, chunk, slices, cFold: Math.min(geom.C, maxPerDimension) };
}
