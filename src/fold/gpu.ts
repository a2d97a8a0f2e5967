/**
 * Folding on the GPU: a module's inference coefficients (eval_coeffs.wgsl, from its state where it
 * lives), then the folded weight and bias of the layer before it (fold_weights.wgsl). The module is
 * passed as the narrow FoldSource, so this file depends on no module class.
 */
import { OptionError } from '../errors.js';
import { placeholder } from '../gpu/buffers.js';
import { gridFor, prepareDispatch, type Dispatch } from '../gpu/kernel.js';
import { evalCoeffs, EvalFlags, foldWeights, FoldFlags } from '../kernels/normalise.js';
import type { ResolvedOptions } from '../options.js';
import { statsByteLength } from '../plan/params.js';
import { PassPlan, type Plan } from '../plan/pass.js';
import { checkKeys, checkObject } from '../validate/args.js';
import { bufferRange, checkNotModuleState, checkSharing } from '../validate/buffers.js';
import { weightGeometry, type GpuFoldLayer } from './host.js';

/** What folding reads of a module: its device, name, options and state buffers. */
export interface FoldSource {
  readonly device: GPUDevice;
  readonly name: string;
  readonly numFeatures: number;
  readonly options: ResolvedOptions;
  readonly isRenorm: boolean;
  readonly weight: GPUBuffer;
  readonly bias: GPUBuffer;
  readonly runningMean: GPUBuffer;
  readonly runningSpread: GPUBuffer;
}

/**
 * Plans folding `bn` into a layer on the GPU: encode() records two dispatches (the module's
 * inference coefficients, then the folded weight and bias) reading the module's state as it is
 * when the command buffer runs.
 */
export function planFold(bn: FoldSource, layer: GpuFoldLayer): Plan {
  const device = bn.device;
  const l = checkObject<GpuFoldLayer>('layer', layer);
  checkKeys('fold', l, ['weight', 'weightShape', 'weightLayout', 'bias', 'weightOut', 'biasOut'], 'argument');
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
