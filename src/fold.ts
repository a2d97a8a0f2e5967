/**
 * Inference folding: a trained batch-norm (or renorm) module folded into the preceding convolution
 * or dense layer's weight and bias, with the semantics of PyTorch's fuse_conv_bn_eval and
 * fuse_linear_bn_eval: the layer alone, with the folded weight and bias, computes what the layer
 * followed by the module in eval mode computes.
 *
 *   weight' = weight · scale[o] (per output channel o), bias' = (bias − μ)·scale + β,
 *   scale = γ / sqrt(running_var + eps), or γ / σ for Batch Renorm's running σ.
 *
 * On GPU buffers (`planFold`, or `bn.fold()`), reading the module's state where it lives; on host
 * arrays (`foldBatchNorm`), from a state dict, in float64.
 */
import { OptionError, ShapeError, StateDictError } from './errors.js';
import { placeholder } from './gpu/buffers.js';
import { gridFor, prepareDispatch, type Dispatch } from './gpu/kernel.js';
import { evalCoeffs, EvalFlags, foldWeights, FoldFlags } from './kernels/normalise.js';
import { describe, checkObject, F32_MAX } from './validate/args.js';
import { evalCoefficients } from './cpu/reference.js';
import { bufferRange, checkNotModuleState, checkSharing, type TensorArg } from './validate/buffers.js';
import { checkEps } from './validate/args.js';
import type { StateDictInput } from './moduleBase.js';
import { PassPlan, statsByteLength, type Plan } from './plan/plans.js';
import type { BatchNorm } from './batchnorm.js';

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
function weightGeometry(shape: unknown, layout: unknown, C: number): { count: number; per: number; last: boolean } {
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
  const k = evalCoefficients(mu, spread, gamma, beta, eps, isStd);
  const weight = new Float32Array(g.count);
  for (let i = 0; i < g.count; i++) weight[i] = w[i] * k.scale[g.last ? i % C : Math.floor(i / g.per)];
  const bias = Float32Array.from({ length: C }, (_, c) => ((b ? b[c] : 0) - k.center[c]) * k.scale[c] + k.shift[c]);
  return { weight, bias };
}

/**
 * Plans folding `bn` into a layer on the GPU: encode() records two dispatches (the module's
 * inference coefficients, then the folded weight and bias) reading the module's state as it is
 * when the command buffer runs.
 */
export function planFold(bn: BatchNorm, layer: GpuFoldLayer): Plan {
  const device = bn.device;
  const l = checkObject<GpuFoldLayer>('layer', layer);
  for (const k of Object.keys(l))
    if (!['weight', 'weightShape', 'weightLayout', 'bias', 'weightOut', 'biasOut'].includes(k))
      throw new OptionError(
        `fold has unknown argument '${k}'; it takes weight, weightShape, weightLayout, bias, weightOut, biasOut`,
      );
  if (!bn.options.trackRunningStats)
    throw new OptionError(
      `${bn.name} has no running statistics (trackRunningStats: false): it normalises with batch statistics in eval too, so there is nothing to fold`,
    );
  const C = bn.numFeatures;
  const g = weightGeometry(l.weightShape, l.weightLayout, C);
  const weight = bufferRange(device, 'weight', l.weight, g.count * 4);
  const bias = l.bias === undefined ? null : bufferRange(device, 'bias', l.bias, C * 4);
  const weightOut = bufferRange(device, 'weightOut', l.weightOut, g.count * 4);
  const biasOut = bufferRange(device, 'biasOut', l.biasOut, C * 4);
  const reads = { weight, ...(bias ? { bias } : {}) };
  checkSharing({ weightOut, biasOut }, reads);
  checkNotModuleState({ weightOut, biasOut });
  const owned: GPUBuffer[] = [];
  const label = `${bn.name}.fold`;
  const statsBuffer = device.createBuffer({
    label: `${label}.coefficients`,
    size: statsByteLength(C),
    usage: GPUBufferUsage.STORAGE,
  });
  owned.push(statsBuffer);
  const stats = { buffer: statsBuffer, offset: 0, size: statsBuffer.size };
  const whole = (buffer: GPUBuffer) => ({ buffer, offset: 0, size: buffer.size });
  const dispatches: Dispatch[] = [
    prepareDispatch(
      device,
      evalCoeffs,
      {
        C,
        eps: bn.options.eps,
        flags: (bn.options.affine ? EvalFlags.AFFINE : 0) | (bn.isRenorm ? EvalFlags.SPREAD_IS_STD : 0),
      },
      {
        gamma: whole(bn.weight),
        beta: whole(bn.bias),
        running_mean: whole(bn.runningMean),
        running_spread: whole(bn.runningSpread),
        stats,
      },
      [Math.ceil(C / evalCoeffs.threadsPerWorkgroup())],
      owned,
    ),
    prepareDispatch(
      device,
      foldWeights,
      { C, count: g.count, per: g.per, flags: (g.last ? FoldFlags.OUT_LAST : 0) | (bias ? FoldFlags.BIAS : 0) },
      { stats, weight, bias: bias ?? placeholder(device, 0), weight_out: weightOut, bias_out: biasOut },
      gridFor(device, Math.ceil(Math.max(g.count, C) / foldWeights.threadsPerWorkgroup())),
      owned,
    ),
  ];
  return new PassPlan(device, label, dispatches, owned, { writes: { weightOut, biasOut }, reads });
}
