/** Wrappers of the backward kernels: gradient sums (one per strategy), merges, finalize, dx passes. */
import gradSumsThreadWgsl from '../../shaders/grad_sums_thread.wgsl?kernel';
import gradSumsRowsWgsl from '../../shaders/grad_sums_rows.wgsl?kernel';
import gradSumsRunsWgsl from '../../shaders/grad_sums_runs.wgsl?kernel';
import gradSumsBlocksWgsl from '../../shaders/grad_sums_blocks.wgsl?kernel';
import gradSumsMergeWgsl from '../../shaders/grad_sums_merge.wgsl?kernel';
import backwardFinalizeWgsl from '../../shaders/backward_finalize.wgsl?kernel';
import backwardFinalizeTreeWgsl from '../../shaders/backward_finalize_tree.wgsl?kernel';
import dxScalarWgsl from '../../shaders/dx_scalar.wgsl?kernel';
import dxVec4Wgsl from '../../shaders/dx_vec4.wgsl?kernel';
import dxRowsWgsl from '../../shaders/dx_rows.wgsl?kernel';
import { defineKernel } from '../gpu/kernel.js';
import { BLOCKS_PARAMS, MERGE_PARAMS, ROWS_PARAMS, RUNS_PARAMS, THREAD_PARAMS } from './statistics.js';

const SUMS_BINDINGS = ['params', 'stats', 'x', 'dy', 'partials', 'y'] as const;
export const gradSumsThread = defineKernel('bn.grad_sums_thread', gradSumsThreadWgsl, SUMS_BINDINGS, THREAD_PARAMS);
export const gradSumsRows = defineKernel('bn.grad_sums_rows', gradSumsRowsWgsl, SUMS_BINDINGS, ROWS_PARAMS);
export const gradSumsRuns = defineKernel('bn.grad_sums_runs', gradSumsRunsWgsl, SUMS_BINDINGS, RUNS_PARAMS);
export const gradSumsBlocks = defineKernel('bn.grad_sums_blocks', gradSumsBlocksWgsl, SUMS_BINDINGS, BLOCKS_PARAMS);
export const gradSumsMerge = defineKernel(
  'bn.grad_sums_merge',
  gradSumsMergeWgsl,
  ['params', 'parts'] as const,
  MERGE_PARAMS,
);

const BACKWARD_FINALIZE_BINDINGS = ['params', 'partials', 'stats', 'gamma', 'dgamma', 'dbeta'] as const;
const BACKWARD_FINALIZE_PARAMS = ['C', 'slices', 'M', 'flags', 'ghosts', 'coef_base'] as const;
export const backwardFinalize = defineKernel(
  'bn.backward_finalize',
  backwardFinalizeWgsl,
  BACKWARD_FINALIZE_BINDINGS,
  BACKWARD_FINALIZE_PARAMS,
);
/** Version 5's: the same work, the slices added as a tree in workgroup memory. */
export const backwardFinalizeTree = defineKernel(
  'bn.backward_finalize_tree',
  backwardFinalizeTreeWgsl,
  BACKWARD_FINALIZE_BINDINGS,
  BACKWARD_FINALIZE_PARAMS,
);

/** Flag bits of backward_finalize.wgsl. */
export const BackwardFlags = { BATCH_STATS: 1, AFFINE: 2 } as const;

const DX_BINDINGS = ['params', 'stats', 'coef', 'x', 'dy', 'dx', 'y', 'dz'] as const;
export const dxScalar = defineKernel('bn.dx_scalar', dxScalarWgsl, DX_BINDINGS, [
  'C',
  'inner',
  'count',
  'block',
  'coef_base',
  'CG',
] as const);
export const dxVec4 = defineKernel('bn.dx_vec4', dxVec4Wgsl, DX_BINDINGS, ['C', 'inner', 'count4'] as const);
export const dxRows = defineKernel('bn.dx_rows', dxRowsWgsl, DX_BINDINGS, ROWS_PARAMS);
