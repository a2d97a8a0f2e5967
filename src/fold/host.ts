/**
 * Inference folding: a trained batch-norm (or renorm) module folded into the preceding convolution
 * or dense layer's weight and bias, with the semantics of PyTorch's fuse_conv_bn_eval and
 * fuse_linear_bn_eval: the layer alone, with the folded weight and bias, computes what the layer
 * followed by the module in eval mode computes.
 *
 *   weight' = weight · scale[o] (per output channel o), bias' = (bias − μ)·scale + β,
 *   scale = γ / sqrt(running_var + eps), or γ / σ for Batch Renorm's running σ.
 *
 * On host arrays here (`foldBatchNorm`, from a state dict, in float64, with its own arithmetic); on
 * GPU buffers in fold/gpu.ts (`planFold`, or `bn.fold()`), reading the module's state where it lives.
 */
import { OptionError, ShapeError, StateDictError } from '../errors.js';
import { checkEps, checkObject, describe, F32_MAX } from '../validate/args.js';
import type { TensorArg } from '../validate/buffers.js';
import type { StateDictInput } from '../validate/state.js';

/**
 * Where a weight's output channels are: 'OIHW' on the first axis (PyTorch convolutions of any
 * rank, and nn.Linear's [out, in]), 'HWIO' on the last (TensorFlow/Keras convolutions, and Dense's
 * [in, out] kernel).
 */
export type WeightLayout = 'OIHW' | 'HWIO';

/** The layer before the batch norm, on the host. */
export interface FoldLayer {
  /** The weight, in `weightLayout` order. */
  weight: ArrayLike<number>;
  weightShape: readonly number[];
  weightLayout: WeightLayout;
  /** The layer's bias (one per output channel); none counts as zeros. */
  bias?: ArrayLike<number> | null;
}

/** The layer before the batch norm, on the GPU, and where the folded weight and bias go. */
export interface GpuFoldLayer {
  weight: TensorArg;
  weightShape: readonly number[];
  weightLayout: WeightLayout;
  bias?: TensorArg;
  /** The folded weight (float32, the weight's shape); a buffer other than the weight's. */
  weightOut: TensorArg;
  /** The folded bias (C float32 values). */
  biasOut: TensorArg;
}

/** The count of weight elements and the elements per output channel, for `C` output channels. */
export function weightGeometry(
  shape: unknown,
  layout: unknown,
  C: number,
): { count: number; per: number; last: boolean } {
  if (layout !== 'OIHW' && layout !== 'HWIO')
    throw new OptionError(
      `weightLayout must be 'OIHW' (output channels first) or 'HWIO' (last); got ${describe(layout)}`,
    );
  if (!Array.isArray(shape) || shape.length < 2 || shape.some((d) => !Number.isSafeInteger(d) || d < 1))
    throw new ShapeError(`weightShape must be an array of at least two positive integers; got ${describe(shape)}`);
  const last = layout === 'HWIO';
  const O = last ? shape[shape.length - 1] : shape[0];
  if (O !== C)
    throw new ShapeError(
      `a ${layout} weight of shape ${JSON.stringify(shape)} has ${O} output channels but the batch norm has ${C}; fold a module into the layer that feeds it`,
    );
  const count = shape.reduce((a: number, b: number) => a * b, 1);
  if (!Number.isSafeInteger(count) || count > 2 ** 32 - 1)
    throw new ShapeError(`weightShape ${JSON.stringify(shape)} has more elements than a GPU index can address`);
  return { count, per: count / C, last };
}

/** A host array of `n` finite float32-range numbers. */
function hostArray(name: string, a: unknown, n: number, err: (m: string) => Error): ArrayLike<number> {
  const ok = Array.isArray(a) || (ArrayBuffer.isView(a) && !(a instanceof DataView));
  if (!ok) throw err(`${name} must be an array or typed array of ${n} numbers; got ${describe(a)}`);
  const v = a as ArrayLike<unknown>;
  if (v.length !== n) throw err(`${name} has ${v.length} values; ${n} are needed`);
  for (let i = 0; i < n; i++) {
    const x = v[i];
    if (typeof x !== 'number' || !Number.isFinite(x) || Math.abs(x) > F32_MAX)
      throw err(`${name} holds ${describe(x)} at index ${i}; it must hold finite float32-range numbers`);
  }
  return v as ArrayLike<number>;
}

/**
 * Folds a batch-norm state (a module's `stateDict()`, or a PyTorch checkpoint's entries) into a
 * layer's weight and bias on the host, in float64, rounded to float32. `eps` is the module's (not
 * needed for a renorm state, whose running_std already includes it).
 */
export function foldBatchNorm(
  layer: FoldLayer,
  state: StateDictInput,
  options: { eps?: number } = {},
): { weight: Float32Array; bias: Float32Array } {
  const l = checkObject<FoldLayer>('layer', layer);
  const sd = checkObject<StateDictInput>('state', state) as Record<string, unknown>;
  const o = checkObject<{ eps?: number }>('options', options);
  const bad = (m: string) => new StateDictError(m);
  if (sd.running_mean === undefined)
    throw bad('state has no running_mean: a module without running statistics cannot be folded');
  const isStd = sd.running_std !== undefined;
  if (isStd === (sd.running_var !== undefined))
    throw bad('state needs running_var (batch norm) or running_std (Batch Renorm), exactly one of them');
  const C = (sd.running_mean as ArrayLike<number>).length;
  const mu = hostArray('running_mean', sd.running_mean, C, bad);
  const spread = hostArray(isStd ? 'running_std' : 'running_var', isStd ? sd.running_std : sd.running_var, C, bad);
  for (let c = 0; c < C; c++)
    if (isStd ? !(spread[c] > 0) : !(spread[c] >= 0))
      throw bad(`${isStd ? 'running_std must be > 0' : 'running_var must be >= 0'}; index ${c} holds ${spread[c]}`);
  if ((sd.weight === undefined) !== (sd.bias === undefined))
    throw bad('state has weight without bias, or bias without weight');
  const gamma = sd.weight === undefined ? new Float64Array(C).fill(1) : hostArray('weight', sd.weight, C, bad);
  const beta = sd.bias === undefined ? new Float64Array(C) : hostArray('bias', sd.bias, C, bad);
  if (!isStd && o.eps === undefined)
    throw new OptionError("options.eps is required with running_var: pass the module's eps (bn.options.eps)");
  const eps = isStd ? 0 : checkEps(o.eps);
  const g = weightGeometry(l.weightShape, l.weightLayout, C);
  const shapeError = (m: string) => new ShapeError(m);
  const w = hostArray('weight', l.weight, g.count, shapeError);
  const b = l.bias === undefined || l.bias === null ? null : hostArray('bias', l.bias, C, shapeError);
  // scale = γ/σ with σ = sqrt(running_var + eps), or the running σ itself for Batch Renorm.
  const scale = Float64Array.from({ length: C }, (_, c) => gamma[c] / (isStd ? spread[c] : Math.sqrt(spread[c] + eps)));
  const weight = new Float32Array(g.count);
  for (let i = 0; i < g.count; i++) weight[i] = w[i] * scale[g.last ? i % C : Math.floor(i / g.per)];
  const bias = Float32Array.from({ length: C }, (_, c) => ((b ? b[c] : 0) - mu[c]) * scale[c] + beta[c]);
  return { weight, bias };
}
