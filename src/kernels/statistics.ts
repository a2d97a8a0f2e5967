/**
 * Wrappers of the statistics kernels: the first stage of the reduction (one per strategy), the
 * merge levels and the finalize pass. Bindings and uniform members
 * are checked against the build-time reflection of each WGSL file.
 */
import statsThreadWgsl from '../../shaders/stats_thread.wgsl?kernel';
import statsRowsWgsl from '../../shaders/stats_rows.wgsl?kernel';
import statsRunsWgsl from '../../shaders/stats_runs.wgsl?kernel';
import statsBlocksWgsl from '../../shaders/stats_blocks.wgsl?kernel';
import statsMergeWgsl from '../../shaders/stats_merge.wgsl?kernel';
import forwardFinalizeWgsl from '../../shaders/forward_finalize.wgsl?kernel';
import forwardFinalizeTreeWgsl from '../../shaders/forward_finalize_tree.wgsl?kernel';
import { defineKernel } from '../gpu/kernel.js';

export const THREAD_PARAMS = ['C', 'inner', 'M', 'chunk', 'slices', 'spg', 'Mg'] as const;
export const ROWS_PARAMS = ['C4', 'M', 'chunk', 'slices'] as const;
export const RUNS_PARAMS = ['C', 'inner4', 'M4', 'slices'] as const;
export const BLOCKS_PARAMS = ['C4', 'inner', 'outer', 'chunk', 'slices'] as const;
export const MERGE_PARAMS = ['C', 'slices', 'group', 'groups', 'src', 'dst'] as const;

const STATS_BINDINGS = ['params', 'x', 'partials', 'schedule', 'state'] as const;
export const statsThread = defineKernel('bn.stats_thread', statsThreadWgsl, STATS_BINDINGS, THREAD_PARAMS);
export const statsRows = defineKernel('bn.stats_rows', statsRowsWgsl, STATS_BINDINGS, ROWS_PARAMS);
export const statsRuns = defineKernel('bn.stats_runs', statsRunsWgsl, STATS_BINDINGS, RUNS_PARAMS);
export const statsBlocks = defineKernel('bn.stats_blocks', statsBlocksWgsl, STATS_BINDINGS, BLOCKS_PARAMS);
export const statsMerge = defineKernel('bn.stats_merge', statsMergeWgsl, ['params', 'parts'] as const, MERGE_PARAMS);

const FINALIZE_PARAMS = ['C', 'slices', 'M', 'eps', 'flags', 'ghosts'] as const;
const FINALIZE_BINDINGS = [
  'params',
  'partials',
  'gamma',
  'beta',
  'running_mean',
  'running_spread',
  'stats',
  'step',
  'running_mean_out',
  'running_spread_out',
] as const;
export const forwardFinalize = defineKernel(
  'bn.forward_finalize',
  forwardFinalizeWgsl,
  FINALIZE_BINDINGS,
  FINALIZE_PARAMS,
);

/** Version 5's finalize: the same work, the slices merged as a tree in workgroup memory. */
export const forwardFinalizeTree = defineKernel(
  'bn.forward_finalize_tree',
  forwardFinalizeTreeWgsl,
  FINALIZE_BINDINGS,
  FINALIZE_PARAMS,
);

/** Flag bits of forward_finalize.wgsl (its `const` declarations; the reflection test compares them). */
export const FinalizeFlags = {
  UPDATE: 1,
  UNBIASED: 2,
  RENORM: 4,
  AFFINE: 8,
  RENORM_VAR: 16,
  OUT_OF_PLACE: 32,
} as const;
