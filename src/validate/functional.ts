/**
 * The functional calls' parameters, checked as a whole before anything is planned: each function
 * returns a typed description of a valid call (its geometry, kernels, bindings and flags), which
 * plan/plans.ts builds without checking anything again.
 */
import { OptionError } from '../errors.js';
import { placeholder } from '../gpu/buffers.js';
import type { Geometry } from '../layout.js';
import type { RenormClip } from '../options.js';
import type { BackwardParams, ForwardEvalParams, ForwardTrainParams } from '../plan/params.js';
import { statsByteLength } from '../plan/params.js';
import {
  kernelPlan,
  workspaceBytes,
  type BackwardBindings,
  type ForwardEvalBindings,
  type ForwardTrainBindings,
  type KernelPlan,
} from '../plan/sequences.js';
import type { KernelTable } from '../plan/table.js';
import { checkBoolean, checkEps, checkKeys, checkObject, checkUnit } from './args.js';
import {
  bufferRange,
  checkNotModuleState,
  checkSharing,
  checkWorkgroupSize,
  type Range,
  type TensorArg,
} from './buffers.js';
import { checkClip, checkEpilogue } from './options.js';
import {
  affineRanges,
  checkBatchValues,
  checkDevice,
  checkWorkspaceLimit,
  epilogueGradRanges,
  ghostCount,
  residualRange,
  tensorBytes,
  tensorGeometry,
} from './tensors.js';

const FORWARD_KEYS = [
  'layout',
  'shape',
  'x',
  'y',
  'stats',
  'weight',
  'bias',
  'workgroupSize',
  'dtype',
  'epilogue',
  'z',
];

/** What every checked call carries: its view and kernels, and its bindings split as checkSharing splits them. */
interface Checked {
  readonly g: Geometry;
  readonly shape: KernelPlan;
  readonly writes: Record<string, Range>;
  readonly reads: Record<string, Range>;
}

/** The caller's workspace, checked for the kernels' size; null: the plan allocates its own (checked against the limits). */
function workspaceArg(device: GPUDevice, shape: KernelPlan, arg: TensorArg | undefined): Range | null {
  const bytes = workspaceBytes(shape.r);
  if (arg !== undefined) return bufferRange(device, 'workspace', arg, bytes);
  checkWorkspaceLimit(device, bytes);
  return null;
}

/** The sharing and module-state checks of a call's bindings (the caller's workspace among the writes). */
function checkBindings(writes: Record<string, Range>, reads: Record<string, Range>, workspace: Range | null) {
  const w = workspace ? { ...writes, workspace } : writes;
  checkSharing(w, reads);
  checkNotModuleState(w);
}

export interface ForwardTrainCall extends Checked {
  readonly ghosts: number;
  readonly eps: number;
  readonly momentum: number;
  readonly unbiased: boolean;
  readonly clip: RenormClip | null;
  readonly runningIsStd: boolean;
  readonly tracked: boolean;
  readonly outOfPlace: boolean;
  readonly affine: boolean;
  readonly workspace: Range | null;
  readonly b: Omit<ForwardTrainBindings, 'step' | 'workspace'>;
}

export function validateForwardTrain(device: unknown, params: unknown, table: KernelTable): ForwardTrainCall {
  checkDevice(device);
  const p = checkObject<ForwardTrainParams>('forward parameters', params);
  checkKeys(
    'encodeForwardTrain',
    p,
    [
      ...FORWARD_KEYS,
      'workspace',
      'runningMean',
      'runningVar',
      'runningMeanOut',
      'runningVarOut',
      'runningIsStd',
      'virtualBatchSize',
      'eps',
      'momentum',
      'unbiased',
      'renorm',
    ],
    'parameter',
  );
  const g = tensorGeometry(device, p.layout, p.shape, p.dtype);
  const ghosts = ghostCount(p.virtualBatchSize, g);
  checkBatchValues(g, ghosts, 'training');
  const eps = checkEps(p.eps === undefined ? 1e-5 : p.eps);
  if (p.momentum === null)
    throw new OptionError(
      'momentum null (a cumulative average) needs the step count: pass momentum 1/n for the n-th step, or use the BatchNorm module, which counts steps',
    );
  const momentum = checkUnit(
    'momentum',
    p.momentum === undefined ? 0.1 : p.momentum,
    'the weight of the new batch statistic, as in PyTorch',
  );
  const unbiased = checkBoolean('unbiased', p.unbiased, true);
  const clip = p.renorm === undefined ? null : checkClip(p.renorm, ' (renorm)', true);
  const runningIsStd = checkBoolean('runningIsStd', p.runningIsStd, clip !== null);
  if (runningIsStd && !clip)
    throw new OptionError(
      'runningIsStd is for renorm, whose running sigma it names; without renorm runningVar holds the variance',
    );
  const bytes = tensorBytes(g);
  const x = bufferRange(device, 'x', p.x, bytes);
  const y = bufferRange(device, 'y', p.y, bytes);
  const stats = bufferRange(device, 'stats', p.stats, statsByteLength(g.C) * ghosts);
  const { affine, gamma, beta } = affineRanges(device, g.C, p.weight, p.bias);
  if ((p.runningMean === undefined) !== (p.runningVar === undefined))
    throw new OptionError('pass runningMean and runningVar together, or neither');
  if ((p.runningMeanOut === undefined) !== (p.runningVarOut === undefined))
    throw new OptionError('pass runningMeanOut and runningVarOut together, or neither');
  if (clip && p.runningMean === undefined)
    throw new OptionError('renorm needs runningMean and runningVar (running sigma) to correct towards');
  const tracked = p.runningMean !== undefined;
  const outOfPlace = p.runningMeanOut !== undefined;
  if (outOfPlace && !tracked)
    throw new OptionError(
      'runningMeanOut and runningVarOut receive the update of runningMean and runningVar: pass those too',
    );
  const running = (name: string, arg: TensorArg | undefined, role: number) =>
    arg === undefined ? placeholder(device, role) : bufferRange(device, name, arg, g.C * 4);
  const runningMean = running('runningMean', p.runningMean, 2);
  const runningSpread = running('runningVar', p.runningVar, 3);
  const runningMeanOut = running('runningMeanOut', p.runningMeanOut, 8);
  const runningSpreadOut = running('runningVarOut', p.runningVarOut, 9);
  const epilogue = checkEpilogue(p.epilogue);
  const z = residualRange(device, epilogue, p.z, bytes);
  const shape = kernelPlan(device, table, g, checkWorkgroupSize(device, p.workgroupSize), epilogue, ghosts);
  const workspace = workspaceArg(device, shape, p.workspace);
  // The running statistics are read_write bindings even when only read (out of place).
  const writes = { y, stats, runningMean, runningVar: runningSpread, runningMeanOut, runningVarOut: runningSpreadOut };
  const reads = { x, weight: gamma, bias: beta, ...(epilogue === 'add_relu' ? { z } : {}) };
  checkBindings(writes, reads, workspace);
  return {
    g,
    shape,
    writes,
    reads,
    ghosts,
    eps,
    momentum,
    unbiased,
    clip,
    runningIsStd,
    tracked,
    outOfPlace,
    affine,
    workspace,
    b: { x, y, z, stats, gamma, beta, runningMean, runningSpread, runningMeanOut, runningSpreadOut },
  };
}

export interface ForwardEvalCall extends Checked {
  readonly eps: number;
  readonly runningIsStd: boolean;
  readonly affine: boolean;
  readonly b: ForwardEvalBindings;
}

export function validateForwardEval(device: unknown, params: unknown, table: KernelTable): ForwardEvalCall {
  checkDevice(device);
  const p = checkObject<ForwardEvalParams>('forward parameters', params);
  checkKeys('encodeForwardEval', p, [...FORWARD_KEYS, 'runningMean', 'runningVar', 'eps', 'runningIsStd'], 'parameter');
  const g = tensorGeometry(device, p.layout, p.shape, p.dtype);
  const eps = checkEps(p.eps === undefined ? 1e-5 : p.eps);
  const runningIsStd = checkBoolean('runningIsStd', p.runningIsStd, false);
  const bytes = tensorBytes(g);
  const x = bufferRange(device, 'x', p.x, bytes);
  const y = bufferRange(device, 'y', p.y, bytes);
  const stats = bufferRange(device, 'stats', p.stats, statsByteLength(g.C));
  const { affine, gamma, beta } = affineRanges(device, g.C, p.weight, p.bias);
  const runningMean = bufferRange(device, 'runningMean', p.runningMean, g.C * 4);
  const runningSpread = bufferRange(device, 'runningVar', p.runningVar, g.C * 4);
  const epilogue = checkEpilogue(p.epilogue);
  const z = residualRange(device, epilogue, p.z, bytes);
  const shape = kernelPlan(device, table, g, checkWorkgroupSize(device, p.workgroupSize), epilogue);
  const writes = { y, stats };
  const reads = {
    x,
    weight: gamma,
    bias: beta,
    runningMean,
    runningVar: runningSpread,
    ...(epilogue === 'add_relu' ? { z } : {}),
  };
  checkBindings(writes, reads, null);
  return {
    g,
    shape,
    writes,
    reads,
    eps,
    runningIsStd,
    affine,
    b: { x, y, z, stats, gamma, beta, runningMean, runningSpread },
  };
}

export interface BackwardCall extends Checked {
  readonly batchStats: boolean;
  readonly affine: boolean;
  readonly workspace: Range | null;
  readonly b: Omit<BackwardBindings, 'workspace'>;
}

export function validateBackward(device: unknown, params: unknown, table: KernelTable): BackwardCall {
  checkDevice(device);
  const p = checkObject<BackwardParams>('backward parameters', params);
  checkKeys(
    'encodeBackward',
    p,
    [
      'layout',
      'shape',
      'x',
      'dy',
      'dx',
      'stats',
      'weight',
      'weightGrad',
      'biasGrad',
      'dweight',
      'dbias',
      'batchStats',
      'workspace',
      'workgroupSize',
      'dtype',
      'epilogue',
      'y',
      'dz',
      'virtualBatchSize',
    ],
    'parameter',
  );
  const g = tensorGeometry(device, p.layout, p.shape, p.dtype);
  const batchStats = checkBoolean('batchStats', p.batchStats, true);
  if (!batchStats && p.virtualBatchSize !== undefined)
    throw new OptionError(
      'virtualBatchSize is for backward through batch statistics: an inference-mode forward normalised every sample with the running statistics',
    );
  const ghosts = ghostCount(p.virtualBatchSize, g);
  if (batchStats) checkBatchValues(g, ghosts, 'backward through batch statistics');
  const bytes = tensorBytes(g);
  const x = bufferRange(device, 'x', p.x, bytes);
  const dy = bufferRange(device, 'dy', p.dy, bytes);
  const dx = bufferRange(device, 'dx', p.dx, bytes);
  const stats = bufferRange(device, 'stats', p.stats, statsByteLength(g.C) * ghosts);
  const affine = p.weight !== undefined;
  if ((p.weightGrad !== undefined && p.dweight !== undefined) || (p.biasGrad !== undefined && p.dbias !== undefined))
    throw new OptionError('pass weightGrad and biasGrad (dweight and dbias are their deprecated names), not both');
  const weightGrad = p.weightGrad ?? p.dweight;
  const biasGrad = p.biasGrad ?? p.dbias;
  if (!affine && (weightGrad !== undefined || biasGrad !== undefined))
    throw new OptionError("weightGrad and biasGrad need weight (the forward pass's gamma); pass all three, or none");
  if (affine && (weightGrad === undefined || biasGrad === undefined))
    throw new OptionError('with weight, pass weightGrad and biasGrad to receive the parameter gradients');
  const gamma = affine ? bufferRange(device, 'weight', p.weight, g.C * 4) : placeholder(device, 0);
  const dgamma = affine ? bufferRange(device, 'weightGrad', weightGrad, g.C * 4) : placeholder(device, 4);
  const dbeta = affine ? bufferRange(device, 'biasGrad', biasGrad, g.C * 4) : placeholder(device, 5);
  const epilogue = checkEpilogue(p.epilogue);
  const e = epilogueGradRanges(device, epilogue, p.y, p.dz, bytes);
  const shape = kernelPlan(device, table, g, checkWorkgroupSize(device, p.workgroupSize), epilogue, ghosts);
  const workspace = workspaceArg(device, shape, p.workspace);
  const writes = { dx, weightGrad: dgamma, biasGrad: dbeta, ...(epilogue === 'add_relu' ? { dz: e.dz } : {}) };
  const reads = { x, dy, stats, weight: gamma, ...(epilogue ? { y: e.y } : {}) };
  checkBindings(writes, reads, workspace);
  return {
    g,
    shape,
    writes,
    reads,
    batchStats,
    affine,
    workspace,
    b: { x, dy, dx, y: e.y, dz: e.dz, stats, gamma, dgamma, dbeta },
  };
}
