/**
 * Functional kernels: each call validates its arguments, then encodes one compute pass into the
 * caller's GPUCommandEncoder, on the caller's buffers and byte offsets. Nothing is submitted, so
 * any WebGPU app can put batch norm between its own passes.
 *
 * Per-channel state lives in three kinds of buffers:
 * - parameters and running statistics: C floats each (weight, bias, runningMean, runningVar);
 * - `stats`: statsByteLength(C) bytes, written by the forward pass and read by backward (the
 *   saved mean and invstd of PyTorch/cuDNN, plus Batch Renorm's r and d);
 * - an optional `workspace` of workspaceByteLength(...) bytes for the reductions' partials; one is
 *   allocated per call when it is omitted.
 */
import { BatchSizeError, FeatureError, OptionError } from './errors';
import { checkSharing, placeholder, storageRange, type TensorArg } from './gpu/buffers';
import { transient, type BufferSlice } from './gpu/kernel';
import { encodeApply } from './kernels/apply';
import { BackwardFlags, encodeBackwardFinalize } from './kernels/backwardFinalize';
import { encodeBackwardDx } from './kernels/backwardDx';
import { encodeBackwardPartial } from './kernels/backwardPartial';
import { EvalFlags, encodeEvalCoeffs } from './kernels/evalCoeffs';
import { encodeForwardFinalize, FinalizeFlags } from './kernels/forwardFinalize';
import { elementwiseIsVec4, KERNEL_VERSIONS, reductionKind, reductionPlan, threadPlan, type KernelVersion, type Plan } from './kernels/plan';
import { encodeStatsPartial, statsPartial } from './kernels/statsPartial';
import { encodeStatsPartialV2, statsPartialV2 } from './kernels/statsPartialV2';
import { encodeApplyV2 } from './kernels/applyV2';
import { encodeBackwardPartialV2 } from './kernels/backwardPartialV2';
import { encodeBackwardDxV2 } from './kernels/backwardDxV2';
import { encodeStatsPartialV3 } from './kernels/statsPartialV3';
import { encodeBackwardPartialV3 } from './kernels/backwardPartialV3';
import { encodeStatsPartialV4 } from './kernels/statsPartialV4';
import { encodeBackwardPartialV4 } from './kernels/backwardPartialV4';
import { encodeMerges } from './kernels/merge';
import { encodeApplyV4Rows } from './kernels/applyV4';
import { encodeBackwardDxV4Rows } from './kernels/backwardDxV4';
import { geometry, type Geometry, type Layout, type StorageType, type TensorDtype } from './layout';
import { checkDtype, checkKernelVersion, type RenormClip } from './options';

export type { TensorArg } from './gpu/buffers';
export type { KernelVersion } from './kernels/plan';

/** Bytes of the `stats` buffer for C channels: two vec4<f32> per channel. */
export function statsByteLength(C: number): number {
  return C * 32;
}

/** The newest kernel set; the default. */
export const LATEST_KERNEL_VERSION: KernelVersion = KERNEL_VERSIONS[KERNEL_VERSIONS.length - 1];

/** The reduction plan; workgroup shapes come from the kernels' WGSL. */
function planFor(device: GPUDevice, g: Geometry, version: KernelVersion): Plan {
  const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
  const kind = reductionKind(g, version);
  if (kind === 'thread' || kind === 'rows' || kind === 'runs') return threadPlan(g, kind, maxDim, version === 4);
  if (kind === 'vec4') {
    const [lanes, rows] = statsPartialV2.reflection().workgroupSize;
    return reductionPlan(g, kind, rows, 4 * lanes, maxDim);
  }
  return reductionPlan(g, kind, statsPartial.threadsPerWorkgroup(), 1, maxDim);
}

const STATS_PARTIAL = { workgroup: encodeStatsPartial, vec4: encodeStatsPartialV2 };
const BACKWARD_PARTIAL = { workgroup: encodeBackwardPartial, vec4: encodeBackwardPartialV2 };

/**
 * A vec4 of partials per (slice, channel), and room for the 2·C vec2 coefficients backward writes;
 * with merge levels, a second region (256-byte aligned) for the levels to ping-pong with.
 */
const regionBytes = (slices: number, C: number) => Math.max(2, slices) * C * 16;
const firstRegionBytes = (p: Plan) => (p.levels.length ? Math.ceil(regionBytes(p.slices, p.geom.C) / 256) * 256 : regionBytes(p.slices, p.geom.C));
const workspaceBytes = (p: Plan) => firstRegionBytes(p) + (p.levels.length ? regionBytes(p.levels[0], p.geom.C) : 0);

/** Bytes of the optional workspace for a tensor of `shape` in `layout` with kernel `version`. */
export function workspaceByteLength(device: GPUDevice, layout: Layout, shape: readonly number[], version: KernelVersion = LATEST_KERNEL_VERSION): number {
  return workspaceBytes(planFor(device, geometry(layout, shape), checkKernelVersion(version)));
}

/** The reductions' partials; backward_finalize overwrites its first 2·C vec2 with coefficients. */
function workspace(device: GPUDevice, plan: Plan, arg: TensorArg | undefined): Required<BufferSlice> {
  const bytes = workspaceBytes(plan);
  return arg ? storageRange(device, 'workspace', arg, bytes)
    : { buffer: transient(device.createBuffer({ label: 'bn.workspace', size: bytes, usage: GPUBufferUsage.STORAGE })), offset: 0, size: bytes };
}

/** The normalisation pass: per-thread coefficients on version 4's rows, else vec4 or scalar. */
function encodeNormalise(device: GPUDevice, pass: GPUComputePassEncoder, g: Geometry, version: KernelVersion, plan: Plan | null, b: { stats: BufferSlice; x: BufferSlice; y: BufferSlice }, wg?: number) {
  if (plan?.kind === 'rows') encodeApplyV4Rows(device, pass, plan, b, wg);
  else (elementwiseIsVec4(g, version) ? encodeApplyV2 : encodeApply)(device, pass, g, b, wg);
}

/** Runs the plan's merge levels on the workspace; the finalize pass then reads `partials`. */
function merges(device: GPUDevice, pass: GPUComputePassEncoder, which: 'stats' | 'sums', plan: Plan, ws: Required<BufferSlice>, wg?: number) {
  if (!plan.levels.length) return { plan, partials: ws as BufferSlice };
  const out = encodeMerges(device, pass, which, plan.geom.C, plan.slices, ws, firstRegionBytes(plan), wg);
  return { plan: { ...plan, slices: out.slices }, partials: { buffer: ws.buffer, offset: ws.offset + out.offset, size: ws.size - out.offset } };
}

/** Workgroup size, reduction plan and workspace of a call with reductions. */
function reductionSetup(device: GPUDevice, g: Geometry, version: KernelVersion, p: { workgroupSize?: number; workspace?: TensorArg }) {
  const wg = checkWorkgroupSize(device, p.workgroupSize);
  const plan = planFor(device, g, version);
  return { wg, plan, ws: workspace(device, plan, p.workspace) };
}

/** The storage type for `dtype`, refused where the device or the kernel version cannot run it. */
function storageType(device: GPUDevice, dtype: TensorDtype | undefined, version: KernelVersion): StorageType {
  if (checkDtype(dtype) === 'float32') return 'f32';
  if (!device.features.has('shader-f16')) {
    throw new FeatureError("dtype 'float16' needs the device feature 'shader-f16', which this device was not created with; request it (requestBatchNormDevice({ optionalFeatures: ['shader-f16'] })) on an adapter that has it, or use float32");
  }
  if (version !== 4) throw new OptionError(`float16 tensors need kernelVersion 4 (versions 1-3 are float32 only); got kernelVersion ${version}`);
  return 'f16';
}

/** The view of a call's tensors, after checking kernel version and dtype. */
function tensorView(device: GPUDevice, p: { layout: Layout; shape: readonly number[]; dtype?: TensorDtype; kernelVersion?: KernelVersion }): { g: Geometry; version: KernelVersion } {
  const version = checkKernelVersion(p.kernelVersion);
  const st = storageType(device, p.dtype, version);
  return { g: geometry(p.layout, p.shape, st), version };
}

/**
 * Bytes of a tensor binding: 4 per float32 element, 2 per float16 element, rounded up to 4
 * (WebGPU binds storage in 4-byte units, so an odd-length float16 tensor needs 2 spare bytes).
 */
export function tensorByteLength(count: number, dtype: TensorDtype = 'float32'): number {
  return dtype === 'float16' ? Math.ceil(count / 2) * 4 : count * 4;
}

const tensorBytes = (g: Geometry) => tensorByteLength(g.count, g.dtype === 'f16' ? 'float16' : 'float32');

function checkWorkgroupSize(device: GPUDevice, wg: number | undefined): number | undefined {
  if (wg === undefined) return undefined;
  const max = Math.min(device.limits.maxComputeWorkgroupSizeX, device.limits.maxComputeInvocationsPerWorkgroup);
  if (!Number.isSafeInteger(wg) || wg < 1 || wg > max) throw new OptionError(`workgroupSize must be an integer in [1, ${max}] on this device; got ${String(wg)}`);
  return wg;
}

function checkEps(eps: number): void {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps <= 0) {
    throw new OptionError(`eps must be a finite number > 0; got ${String(eps)}. Pass e.g. 1e-5.`);
  }
}

/** weight and bias, both or neither; placeholders (roles 0, 1) without affine. */
function affineRanges(device: GPUDevice, C: number, weight?: TensorArg, bias?: TensorArg) {
  if (!weight !== !bias) throw new OptionError('pass weight and bias together (affine), or neither');
  if (!weight) return { affine: false, gamma: placeholder(device, 0), beta: placeholder(device, 1) };
  return { affine: true, gamma: storageRange(device, 'weight', weight, C * 4), beta: storageRange(device, 'bias', bias, C * 4) };
}

/** What both forward modes take. */
export interface ForwardParams {
  layout: Layout;
  shape: readonly number[];
  x: TensorArg;
  y: TensorArg;
  /** Receives what backward needs (statistics and coefficients); statsByteLength(C) bytes. */
  stats: TensorArg;
  /** gamma and beta, both or neither. */
  weight?: TensorArg;
  bias?: TensorArg;
  /** Kernel set (see KernelVersion); default the latest. */
  kernelVersion?: KernelVersion;
  /** workspaceByteLength(...) bytes for the reductions; allocated per call when omitted. */
  workspace?: TensorArg;
  /** Threads per workgroup of the elementwise passes and of versions 3 and 4's reductions and merges (default from the WGSL); results do not depend on it. */
  workgroupSize?: number;
  /**
   * Element type of x and y (default 'float32'). 'float16' needs a device created with
   * 'shader-f16' and kernel version 4; statistics and parameters stay float32, arithmetic is f32.
   */
  dtype?: TensorDtype;
}

export interface ForwardTrainParams extends ForwardParams {
  /** Updated in place when given (both or neither). */
  runningMean?: TensorArg;
  /** running_var, or running sigma when `renorm` is set. */
  runningVar?: TensorArg;
  /** Default 1e-5. */
  eps?: number;
  /** Weight of the new batch statistic in the running update (PyTorch form); default 0.1. */
  momentum?: number;
  /** Store the unbiased variance n/(n-1)·var in runningVar; default true. */
  unbiased?: boolean;
  /** Batch Renorm: correct towards runningMean and running sigma (in runningVar). */
  renorm?: RenormClip;
}

/** Training-mode forward: batch statistics, running update, y = normalised x. */
export function encodeForwardTrain(device: GPUDevice, encoder: GPUCommandEncoder, p: ForwardTrainParams): void {
  const { g, version } = tensorView(device, p);
  if (g.M < 2) throw new BatchSizeError(`training needs more than one value per channel; shape ${JSON.stringify(p.shape)} gives M = ${g.M}. Use a larger batch, or inference mode.`);
  const eps = p.eps ?? 1e-5;
  checkEps(eps);
  const momentum = p.momentum ?? 0.1;
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) throw new OptionError(`momentum must lie in [0, 1]; got ${String(momentum)}`);
  if (p.renorm && (!(p.renorm.rmax >= 1) || !(p.renorm.dmax >= 0) || !Number.isFinite(p.renorm.rmax) || !Number.isFinite(p.renorm.dmax))) {
    throw new OptionError(`renorm needs finite rmax >= 1 and dmax >= 0; got rmax ${p.renorm.rmax}, dmax ${p.renorm.dmax}`);
  }
  const bytes = tensorBytes(g);
  const x = storageRange(device, 'x', p.x, bytes);
  const y = storageRange(device, 'y', p.y, bytes);
  const stats = storageRange(device, 'stats', p.stats, statsByteLength(g.C));
  const { affine, gamma, beta } = affineRanges(device, g.C, p.weight, p.bias);
  if (!p.runningMean !== !p.runningVar) throw new OptionError('pass runningMean and runningVar together, or neither');
  if (p.renorm && !p.runningMean) throw new OptionError('renorm needs runningMean and runningVar (running sigma) to correct towards');
  const tracked = !!p.runningMean;
  const rm = tracked ? storageRange(device, 'runningMean', p.runningMean, g.C * 4) : placeholder(device, 2);
  const rv = tracked ? storageRange(device, 'runningVar', p.runningVar, g.C * 4) : placeholder(device, 3);
  const { wg, plan, ws } = reductionSetup(device, g, version, p);
  checkSharing({ workspace: ws }, { x });
  checkSharing({ stats, runningMean: rm, runningVar: rv }, { workspace: ws, weight: gamma, bias: beta });
  checkSharing({ y }, { x, stats });

  const flags = (tracked ? FinalizeFlags.UPDATE : 0) | (p.unbiased ?? true ? FinalizeFlags.UNBIASED : 0)
    | (p.renorm ? FinalizeFlags.RENORM : 0) | (affine ? FinalizeFlags.AFFINE : 0);
  const pass = encoder.beginComputePass({ label: 'bn.forward_train' });
  if (plan.kind === 'thread') encodeStatsPartialV3(device, pass, plan, { x, partials: ws }, wg);
  else if (plan.kind === 'rows' || plan.kind === 'runs') encodeStatsPartialV4(device, pass, plan, { x, partials: ws }, wg);
  else STATS_PARTIAL[plan.kind](device, pass, plan, { x, partials: ws });
  const merged = merges(device, pass, 'stats', plan, ws, wg);
  encodeForwardFinalize(device, pass, merged.plan, { eps, factor: momentum, rmax: p.renorm?.rmax ?? 1, dmax: p.renorm?.dmax ?? 0, flags },
    { partials: merged.partials, gamma, beta, running_mean: rm, running_spread: rv, stats });
  encodeNormalise(device, pass, g, version, plan, { stats, x, y }, wg);
  pass.end();
}

export interface ForwardEvalParams extends ForwardParams {
  runningMean: TensorArg;
  /** running_var, or running sigma with `runningIsStd`. */
  runningVar: TensorArg;
  eps?: number;
  /** runningVar holds sigma (Batch Renorm), not the variance. */
  runningIsStd?: boolean;
}

/** Inference-mode forward: y = (x - running_mean)·gamma/sqrt(running_var + eps) + beta. */
export function encodeForwardEval(device: GPUDevice, encoder: GPUCommandEncoder, p: ForwardEvalParams): void {
  const { g, version } = tensorView(device, p);
  const eps = p.eps ?? 1e-5;
  checkEps(eps);
  const wg = checkWorkgroupSize(device, p.workgroupSize);
  const bytes = tensorBytes(g);
  const x = storageRange(device, 'x', p.x, bytes);
  const y = storageRange(device, 'y', p.y, bytes);
  const stats = storageRange(device, 'stats', p.stats, statsByteLength(g.C));
  const { affine, gamma, beta } = affineRanges(device, g.C, p.weight, p.bias);
  const rm = storageRange(device, 'runningMean', p.runningMean, g.C * 4);
  const rv = storageRange(device, 'runningVar', p.runningVar, g.C * 4);
  checkSharing({ stats }, { weight: gamma, bias: beta, runningMean: rm, runningVar: rv });
  checkSharing({ y }, { x, stats });
  const flags = (affine ? EvalFlags.AFFINE : 0) | (p.runningIsStd ? EvalFlags.SPREAD_IS_STD : 0);
  const pass = encoder.beginComputePass({ label: 'bn.forward_eval' });
  encodeEvalCoeffs(device, pass, { C: g.C, eps, flags }, { gamma, beta, running_mean: rm, running_spread: rv, stats });
  // Inference has no reduction; only version 4's channels-last pass needs the plan's thread geometry.
  const plan = reductionKind(g, version) === 'rows' ? planFor(device, g, version) : null;
  encodeNormalise(device, pass, g, version, plan, { stats, x, y }, wg);
  pass.end();
}

export interface BackwardParams {
  layout: Layout;
  shape: readonly number[];
  /** The forward pass's input. */
  x: TensorArg;
  dy: TensorArg;
  dx: TensorArg;
  /** The `stats` the forward pass wrote. */
  stats: TensorArg;
  /** With weight, dweight and dbias receive the parameter gradients (overwritten, not added). */
  weight?: TensorArg;
  dweight?: TensorArg;
  dbias?: TensorArg;
  /**
   * true (default) when the forward pass normalised with batch statistics: the gradient flows
   * through mean and variance. false for inference-mode forward: they are constants.
   */
  batchStats?: boolean;
  kernelVersion?: KernelVersion;
  workspace?: TensorArg;
  workgroupSize?: number;
  /** Element type of x, dy and dx, as in ForwardParams. */
  dtype?: TensorDtype;
}

/** Backward: dx, and dweight/dbias when affine. */
export function encodeBackward(device: GPUDevice, encoder: GPUCommandEncoder, p: BackwardParams): void {
  const { g, version } = tensorView(device, p);
  const batchStats = p.batchStats ?? true;
  if (batchStats && g.M < 2) throw new BatchSizeError(`backward through batch statistics needs more than one value per channel; shape ${JSON.stringify(p.shape)} gives M = ${g.M}`);
  const bytes = tensorBytes(g);
  const x = storageRange(device, 'x', p.x, bytes);
  const dy = storageRange(device, 'dy', p.dy, bytes);
  const dx = storageRange(device, 'dx', p.dx, bytes);
  const stats = storageRange(device, 'stats', p.stats, statsByteLength(g.C));
  const affine = !!p.weight;
  if (affine && (!p.dweight || !p.dbias)) throw new OptionError('with weight, pass dweight and dbias to receive the parameter gradients');
  const gamma = affine ? storageRange(device, 'weight', p.weight, g.C * 4) : placeholder(device, 0);
  const dgamma = affine ? storageRange(device, 'dweight', p.dweight, g.C * 4) : placeholder(device, 4);
  const dbeta = affine ? storageRange(device, 'dbias', p.dbias, g.C * 4) : placeholder(device, 5);
  const { wg, plan, ws } = reductionSetup(device, g, version, p);
  checkSharing({ workspace: ws }, { stats, x, dy });
  checkSharing({ workspace: ws, dweight: dgamma, dbias: dbeta }, { stats, weight: gamma });
  checkSharing({ dx }, { stats, workspace: ws, x, dy });
  const flags = (batchStats ? BackwardFlags.BATCH_STATS : 0) | (affine ? BackwardFlags.AFFINE : 0);
  const pass = encoder.beginComputePass({ label: 'bn.backward' });
  if (plan.kind === 'thread') encodeBackwardPartialV3(device, pass, plan, { stats, x, dy, partials: ws }, wg);
  else if (plan.kind === 'rows' || plan.kind === 'runs') encodeBackwardPartialV4(device, pass, plan, { stats, x, dy, partials: ws }, wg);
  else BACKWARD_PARTIAL[plan.kind](device, pass, plan, { stats, x, dy, partials: ws });
  const merged = merges(device, pass, 'sums', plan, ws, wg);
  encodeBackwardFinalize(device, pass, merged.plan, flags, { partials: merged.partials, stats, gamma, dgamma, dbeta });
  const dxBuffers = { stats, coef: merged.partials, x, dy, dx };
  if (plan.kind === 'rows') encodeBackwardDxV4Rows(device, pass, plan, dxBuffers, wg);
  else (elementwiseIsVec4(g, version) ? encodeBackwardDxV2 : encodeBackwardDx)(device, pass, g, dxBuffers, wg);
  pass.end();
}
