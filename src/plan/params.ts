/**
 * What the functional calls and plans take: the parameters of each operation, the tensors an
 * encode may bind elsewhere, and the byte sizes of the buffers a caller provides.
 */
import { OptionError } from '../errors.js';
import type { Layout, TensorDtype } from '../layout.js';
import type { Epilogue, RenormClip } from '../options.js';
import { describe } from '../validate/args.js';
import type { TensorArg } from '../validate/buffers.js';

/** What every functional call takes. */
export interface ForwardParams {
  /** Required for rank 3 to 5 (the shape alone cannot tell channels-first from channels-last). */
  layout?: Layout;
  shape: readonly number[];
  x: TensorArg;
  y: TensorArg;
  /** Receives what backward needs (statistics and coefficients); statsByteLength(C) bytes. */
  stats: TensorArg;
  /** gamma and beta, both or neither. */
  weight?: TensorArg;
  bias?: TensorArg;
  /** Threads per workgroup of the elementwise passes, reductions and merges (default from the WGSL); results do not depend on it. */
  workgroupSize?: number;
  /**
   * Element type of x and y (default 'float32'). 'float16' needs a device created with
   * 'shader-f16'; statistics and parameters stay float32, arithmetic is f32.
   */
  dtype?: TensorDtype;
  /** Fused epilogue: y = relu(bn(x)), or y = relu(bn(x) + z) with 'add_relu'. Default none. */
  epilogue?: Epilogue;
  /** The residual added before the relu of 'add_relu' (x's shape and dtype). */
  z?: TensorArg;
}

export interface ForwardTrainParams extends ForwardParams {
  /** workspaceByteLength(...) bytes for the reductions; the plan allocates its own when omitted. */
  workspace?: TensorArg;
  /** Updated in place when given (both or neither), unless runningMeanOut/runningVarOut are given. */
  runningMean?: TensorArg;
  /** running_var, or running sigma when `renorm` is set (see runningIsStd). */
  runningVar?: TensorArg;
  /**
   * Receive the updated running statistics (both or neither; with runningMean/runningVar, which
   * are then only read): for frameworks whose tensors are immutable, such as TF.js.
   */
  runningMeanOut?: TensorArg;
  runningVarOut?: TensorArg;
  /**
   * With `renorm`: runningVar holds running sigma (true, the default) or the running variance
   * (false: Keras's weights; sigma = sqrt(running_var + eps), and the update stores the variance).
   */
  runningIsStd?: boolean;
  /**
   * Ghost batch norm: each group of this many consecutive samples along N is normalised with its
   * own statistics; N must be a multiple of it, and `stats` holds statsByteLength(C)·(N / k) bytes.
   */
  virtualBatchSize?: number;
  /** Default 1e-5. */
  eps?: number;
  /**
   * Weight of the new batch statistic in the running update (PyTorch's momentum), in [0, 1];
   * default 0.1. A cumulative average needs the step count: pass 1/n, or use the BatchNorm module.
   */
  momentum?: number;
  /** Store the unbiased variance n/(n-1)·var in runningVar; default true. */
  unbiased?: boolean;
  /**
   * Batch Renorm: correct towards runningMean and running sigma with this clip (r in [rmin, rmax],
   * rmin defaulting to 1/rmax; |d| <= dmax).
   */
  renorm?: RenormClip;
}

export interface ForwardEvalParams extends ForwardParams {
  runningMean: TensorArg;
  /** running_var, or running sigma with `runningIsStd`. */
  runningVar: TensorArg;
  eps?: number;
  /** runningVar holds sigma (Batch Renorm), not the variance. */
  runningIsStd?: boolean;
}

export interface BackwardParams {
  layout?: Layout;
  shape: readonly number[];
  /** The forward pass's input. */
  x: TensorArg;
  dy: TensorArg;
  dx: TensorArg;
  /** The `stats` the forward pass wrote. */
  stats: TensorArg;
  /**
   * With weight, weightGrad and biasGrad receive dγ and dβ (overwritten, not added): the names the
   * module's buffers and the CPU path's gradients carry. `dweight` and `dbias` are their deprecated
   * aliases.
   */
  weightGrad?: TensorArg;
  biasGrad?: TensorArg;
  /** @deprecated Use weightGrad. */
  weight?: TensorArg;
  dweight?: TensorArg;
  /** @deprecated Use biasGrad. */
  dbias?: TensorArg;
  /**
   * true (default) when the forward pass normalised with batch statistics: the gradient flows
   * through mean and variance. false for inference-mode forward: they are constants.
   */
  batchStats?: boolean;
  workspace?: TensorArg;
  workgroupSize?: number;
  /** Element type of x, dy and dx, as in ForwardParams. */
  dtype?: TensorDtype;
  /** The forward's epilogue: dy passes where the forward's output y was positive. */
  epilogue?: Epilogue;
  /** The forward's output (required with an epilogue: its sign is the relu's mask; no x̂ is stored). */
  y?: TensorArg;
  /** With 'add_relu': receives the residual's gradient (dy through the relu). */
  dz?: TensorArg;
  /** The forward's virtualBatchSize (with batchStats): `stats` then holds every ghost batch's. */
  virtualBatchSize?: number;
}

/** The tensors each encode of a plan may bind elsewhere. */
export type ForwardTrainTensors = Partial<
  Pick<
    ForwardTrainParams,
    'x' | 'y' | 'z' | 'stats' | 'weight' | 'bias' | 'runningMean' | 'runningVar' | 'runningMeanOut' | 'runningVarOut'
  >
>;
export type ForwardEvalTensors = Partial<
  Pick<ForwardEvalParams, 'x' | 'y' | 'z' | 'stats' | 'weight' | 'bias' | 'runningMean' | 'runningVar'>
>;
export type BackwardTensors = Partial<
  Pick<BackwardParams, 'x' | 'dy' | 'dx' | 'stats' | 'weight' | 'weightGrad' | 'biasGrad' | 'y' | 'dz'>
>;

/** Bytes of the `stats` buffer for C channels: two vec4<f32> per channel. */
export function statsByteLength(C: number): number {
  if (typeof C !== 'number' || !Number.isSafeInteger(C) || C < 1)
    throw new OptionError(`statsByteLength takes a channel count C >= 1; got ${describe(C)}`);
  return C * 32;
}

/**
 * Bytes of a tensor binding: 4 per float32 element, 2 per float16 element, rounded up to 4
 * (WebGPU binds storage in 4-byte units, so an odd-length float16 tensor needs 2 spare bytes).
 */
export function tensorByteLength(count: number, dtype: TensorDtype = 'float32'): number {
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1)
    throw new OptionError(`tensorByteLength takes an element count >= 1; got ${describe(count)}`);
  if (dtype !== 'float32' && dtype !== 'float16')
    throw new OptionError(`dtype must be 'float32' or 'float16'; got ${describe(dtype)}`);
  return dtype === 'float16' ? Math.ceil(count / 2) * 4 : count * 4;
}
