/** Wrappers of the kernels that normalise: inference coefficients, the apply passes, and folding into a layer. */
import evalCoeffsWgsl from '../../shaders/eval_coeffs.wgsl?kernel';
import applyScalarWgsl from '../../shaders/apply_scalar.wgsl?kernel';
import applyVec4Wgsl from '../../shaders/apply_vec4.wgsl?kernel';
import applyRowsWgsl from '../../shaders/apply_rows.wgsl?kernel';
import foldWeightsWgsl from '../../shaders/fold_weights.wgsl?kernel';
import { defineKernel } from '../gpu/kernel.js';
import { ROWS_PARAMS } from './statistics.js';

export const evalCoeffs = defineKernel(
  'bn.eval_coeffs',
  evalCoeffsWgsl,
  ['params', 'gamma', 'beta', 'running_mean', 'running_spread', 'stats'] as const,
  ['C', 'eps', 'flags'] as const,
);

/** Flag bits of eval_coeffs.wgsl. */
export const EvalFlags = { AFFINE: 1, SPREAD_IS_STD: 2 } as const;

const APPLY_BINDINGS = ['params', 'stats', 'x', 'y', 'z', 'gamma', 'beta', 'running_mean', 'running_spread'] as const;
export const applyScalar = defineKernel('bn.apply_scalar', applyScalarWgsl, APPLY_BINDINGS, [
  'C',
  'inner',
  'count',
  'block',
  'eps',
  'flags',
] as const);
export const applyVec4 = defineKernel('bn.apply_vec4', applyVec4Wgsl, APPLY_BINDINGS, [
  'C',
  'inner',
  'count4',
  'eps',
  'flags',
] as const);
export const applyRows = defineKernel('bn.apply_rows', applyRowsWgsl, APPLY_BINDINGS, [
  ...ROWS_PARAMS,
  'eps',
  'flags',
] as const);

export const foldWeights = defineKernel(
  'bn.fold_weights',
  foldWeightsWgsl,
  ['params', 'stats', 'weight', 'bias', 'weight_out', 'bias_out'] as const,
  ['C', 'count', 'per', 'flags'] as const,
);

/** Flag bits of fold_weights.wgsl. */
export const FoldFlags = { OUT_LAST: 1, BIAS: 2 } as const;
