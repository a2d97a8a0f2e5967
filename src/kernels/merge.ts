/**
 * Wrappers for shaders/merge_stats.wgsl and merge_sums.wgsl: version 4 merges groups of
 * MERGE_GROUP partials per level until the finalize passes have at most MERGE_GROUP to merge.
 */
import statsSource from '../../shaders/merge_stats.wgsl?raw';
import sumsSource from '../../shaders/merge_sums.wgsl?raw';
import { defineKernel, dispatch, gridFor, type BufferSlice } from '../gpu/kernel';

const BINDINGS = ['params', 'parts'] as const;
const PARAMS = ['C', 'slices', 'group', 'groups', 'src', 'dst'] as const;
export const mergeStats = defineKernel('bn.merge_stats', statsSource, BINDINGS, PARAMS);
export const mergeSums = defineKernel('bn.merge_sums', sumsSource, BINDINGS, PARAMS);

/** Partials merged per thread and level. */
export const MERGE_GROUP = 32;

/** Slice counts after each merge level, starting from `slices`. */
export function mergeLevels(slices: number): number[] {
  const levels: number[] = [];
  for (let s = slices; s > MERGE_GROUP; ) levels.push((s = Math.ceil(s / MERGE_GROUP)));
  return levels;
}

/**
 * Encodes the merge levels over `workspace`, ping-ponging between its first region (the first
 * stage's partials) and the region from byte `second` on; returns the byte offset (within the
 * workspace) of the last level's partials, and their count.
 */
export function encodeMerges(
  device: GPUDevice, pass: GPUComputePassEncoder, which: 'stats' | 'sums', C: number, slices: number,
  workspace: BufferSlice, second: number, wg?: number,
): { slices: number; offset: number } {
  const kernel = which === 'stats' ? mergeStats : mergeSums;
  const unit = which === 'stats' ? 16 : 8;
  let src = 0, dst = second, n = slices;
  for (const groups of mergeLevels(slices)) {
    const grid = gridFor(device, Math.ceil((groups * C) / kernel.threadsPerWorkgroup(wg)));
    dispatch(device, pass, kernel, { C, slices: n, group: MERGE_GROUP, groups, src: src / unit, dst: dst / unit }, { parts: workspace }, grid, wg);
    [src, dst, n] = [dst, src, groups];
  }
  return { slices: n, offset: src };
}
