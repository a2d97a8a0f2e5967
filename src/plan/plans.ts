/**
 * Plans: validate once, encode many. A plan holds everything that depends only on the shape,
 * layout, dtype, buffers and options of a call: the validated bindings, the kernels chosen from the
 * dispatch table, their geometry, uniform buffers and bind groups (made once) and the workspace.
 * Encoding a plan is one compute pass of setPipeline / setBindGroup / dispatchWorkgroups.
 *
 * validate → plan → encode: the functions below check every argument (validate.ts) before they
 * build anything (sequences.ts), and a plan's encode() checks only what can change between encodes.
 */
import { BatchSizeError, DestroyedError, FeatureError, LimitError, OptionError } from '../errors.js';
import { isPlaceholder, placeholder } from '../gpu/buffers.js';
import { lostError, watchDevice } from '../device.js';
import { constantBuffer, encodeDispatches, type Dispatch } from '../gpu/kernel.js';
import { type Epilogue } from '../options.js';
import { geometry, type Geometry, type Layout, type TensorDtype } from '../layout.js';
import { checkClip, checkEpilogue } from '../validate/options.js';
import { checkObject, describe } from '../validate/args.js';
import { type RenormClip } from '../options.js';
import { FinalizeFlags, STEP_BYTES } from '../kernels/statistics.js';
import { EvalFlags } from '../kernels/normalise.js';
import { bufferRange, checkNotModuleState, checkSharing, checkWorkgroupSize, type Range, type TensorArg } from '../validate/buffers.js';
import { checkBoolean, checkEps, checkUnit } from '../validate/args.js';
import {
  backwardDispatches,
  forwardEvalDispatches,
  forwardTrainDispatches,
  planShape,
  workspaceBytes,
  type PlanShape,
} from './sequences.js';
import { DEFAULT_TABLE, type KernelTable } from './table.js';

/**
 * An encodable plan. Its pipelines, uniforms and workspace are fixed when it is made; its tensors
 * are the buffers it was made with, or others of the same size passed to each `encode` (for
 * frameworks that pool and rotate buffers, such as TF.js). A plan keeps the bind groups of the
 * last BIND_GROUP_CACHE_SIZE buffer sets per dispatch, so steady steps create no pipelines and no
 * bind groups.
 */
export interface Plan<T extends object = Record<string, TensorArg>> {
  readonly label: string;
  /** The dispatches one encode records, in order (what `npm run bench -- --profile` times one by one). */
  readonly dispatches: readonly Dispatch[];
  /**
   * Records the plan's compute pass into `encoder`, on the planned buffers or on `tensors`, which
   * may bind any of the plan's tensors elsewhere (checked as when planning). Synchronous; submits
   * nothing.
   */
  encode(encoder: GPUCommandEncoder, tensors?: T): void;
  /** Frees the plan's own buffers (uniforms, its workspace). Call it once no submitted work uses the plan. */
  destroy(): void;
}

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
  /** With weight, dweight and dbias receive the parameter gradients (overwritten, not added). */
  weight?: TensorArg;
  dweight?: TensorArg;
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
  Pick<BackwardParams, 'x' | 'dy' | 'dx' | 'stats' | 'weight' | 'dweight' | 'dbias' | 'y' | 'dz'>
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

/** Bytes of the optional workspace for a tensor of `shape` in `layout`. */
export function workspaceByteLength(
  device: GPUDevice,
  layout: Layout | undefined,
  shape: readonly number[],
  table: KernelTable = DEFAULT_TABLE,
): number {
  checkDevice(device);
  return workspaceBytes(planShape(device, table, geometry(layout, shape)).r);
}

/** A GPUDevice, or an OptionError: every entry point checks this first. */
export function checkDevice(device: unknown): asserts device is GPUDevice {
  if (
    typeof device !== 'object' ||
    device === null ||
    typeof (device as GPUDevice).createBuffer !== 'function' ||
    typeof (device as GPUDevice).limits !== 'object'
  ) {
    throw new OptionError(
      `device must be a GPUDevice (from requestBatchNormDevice() or adapter.requestDevice()); got ${describe(device)}`,
    );
  }
  const lost = watchDevice(device as GPUDevice).lost;
  if (lost) throw lostError(lost);
}

/** A GPUCommandEncoder, or an OptionError. */
export function checkEncoder(encoder: unknown): asserts encoder is GPUCommandEncoder {
  const real =
    typeof GPUCommandEncoder === 'function'
      ? encoder instanceof GPUCommandEncoder
      : typeof (encoder as GPUCommandEncoder)?.beginComputePass === 'function';
  if (typeof encoder !== 'object' || encoder === null || !real) {
    throw new OptionError(
      `encoder must be a GPUCommandEncoder (device.createCommandEncoder()); got ${describe(encoder)}`,
    );
  }
}

/** The geometry of a call's tensors in storage, after checking dtype against the device. */
export function tensorGeometry(device: GPUDevice, layout: unknown, shape: unknown, dtype: unknown): Geometry {
  if (dtype !== undefined && dtype !== 'float32' && dtype !== 'float16')
    throw new OptionError(`dtype must be 'float32' or 'float16'; got ${describe(dtype)}`);
  if (dtype === 'float16' && !device.features.has('shader-f16')) {
    throw new FeatureError(
      "dtype 'float16' needs the device feature 'shader-f16', which this device was not created with; request it (requestBatchNormDevice({ optionalFeatures: ['shader-f16'] })) on an adapter that has it, or use float32",
    );
  }
  return geometry(layout as Layout | undefined, shape as number[], dtype === 'float16' ? 'f16' : 'f32');
}

export const tensorBytes = (g: Geometry): number => (g.dtype === 'f16' ? Math.ceil(g.count / 2) * 4 : g.count * 4);

/** The workspace: the caller's range, or a buffer of the plan's own (checked against the device's limits first). */
export function workspaceRange(
  device: GPUDevice,
  s: PlanShape,
  arg: TensorArg | undefined,
  owned: GPUBuffer[],
  label: string,
): Range {
  const bytes = workspaceBytes(s.r);
  if (arg !== undefined) return bufferRange(device, 'workspace', arg, bytes);
  const { maxBufferSize, maxStorageBufferBindingSize } = device.limits;
  if (bytes > Math.min(maxBufferSize, maxStorageBufferBindingSize)) {
    throw new LimitError(
      `the reductions need a ${bytes}-byte workspace, above this device's maxBufferSize (${maxBufferSize}) or maxStorageBufferBindingSize (${maxStorageBufferBindingSize}); split the batch`,
    );
  }
  // COPY_SRC: a synchronized step copies its reduced partials out of it for the all-reduce.
  const b = device.createBuffer({
    label: `${label}.workspace`,
    size: bytes,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  owned.push(b);
  return { buffer: b, offset: 0, size: bytes };
}

/** gamma and beta, both or neither; placeholders (roles 0, 1) without affine. */
function affineRanges(device: GPUDevice, C: number, weight: unknown, bias: unknown) {
  if ((weight === undefined) !== (bias === undefined))
    throw new OptionError('pass weight and bias together (affine), or neither');
  if (weight === undefined) return { affine: false, gamma: placeholder(device, 0), beta: placeholder(device, 1) };
  return {
    affine: true,
    gamma: bufferRange(device, 'weight', weight as TensorArg, C * 4),
    beta: bufferRange(device, 'bias', bias as TensorArg, C * 4),
  };
}

function checkKeys(what: string, p: object, known: readonly string[]): void {
  for (const k of Object.keys(p))
    if (!known.includes(k)) throw new OptionError(`${what} has unknown parameter '${k}'; it takes ${known.join(', ')}`);
}

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
] as const;

/**
 * The residual binding of a forward: z for 'add_relu' (required), a placeholder otherwise (where
 * z is refused: it would be silently ignored).
 */
export function residualRange(device: GPUDevice, epilogue: Epilogue | null, z: unknown, bytes: number): Range {
  if (epilogue === 'add_relu') return bufferRange(device, 'z', z as TensorArg, bytes);
  if (z !== undefined)
    throw new OptionError(`z is the residual of epilogue 'add_relu'; this call's epilogue is ${epilogue ?? 'none'}`);
  return placeholder(device, 6);
}

/**
 * The epilogue's bindings of a backward: the forward's output y (required with an epilogue) and
 * dz (required with 'add_relu', refused otherwise); placeholders where there is no epilogue.
 */
export function epilogueGradRanges(
  device: GPUDevice,
  epilogue: Epilogue | null,
  y: unknown,
  dz: unknown,
  bytes: number,
): { y: Range; dz: Range } {
  if (!epilogue && y !== undefined)
    throw new OptionError('y (the forward output) is read by backward only with an epilogue, to mask dy');
  if (epilogue !== 'add_relu' && dz !== undefined)
    throw new OptionError(
      `dz is the residual's gradient of epilogue 'add_relu'; this call's epilogue is ${epilogue ?? 'none'}`,
    );
  return {
    y: epilogue ? bufferRange(device, 'y', y as TensorArg, bytes) : placeholder(device, 6),
    dz: epilogue === 'add_relu' ? bufferRange(device, 'dz', dz as TensorArg, bytes) : placeholder(device, 7),
  };
}

/** A plan's one compute pass, and the checks of what can change between encodes. */
export class PassPlan<T extends object = Record<string, TensorArg>> implements Plan<T> {
  private destroyed = false;
  /**
   * `writes` and `reads` are the plan's bindings by parameter name, as validated when it was made
   * (checkSharing's split: a binding the kernels declare read_write is a write). An encode may bind
   * any of them elsewhere but `fixed` ones and placeholders (tensors the plan was made without).
   */
  constructor(
    private readonly device: GPUDevice,
    readonly label: string,
    readonly dispatches: readonly Dispatch[],
    private readonly owned: GPUBuffer[],
    private readonly bindings: { writes: Record<string, Range>; reads: Record<string, Range> },
    private readonly fixed: readonly string[] = [],
  ) {}

  /**
   * Throws unless the plan can be encoded now: device and plan alive, a real encoder. The bound
   * buffers need no second look: they were unmapped when the plan was made, and a STORAGE buffer
   * cannot be mapped again (MAP_READ/MAP_WRITE exclude STORAGE).
   */
  check(encoder: unknown): asserts encoder is GPUCommandEncoder {
    if (this.destroyed) throw new DestroyedError(`plan ${this.label} was destroyed; make a new one`);
    const lost = watchDevice(this.device).lost;
    if (lost) throw lostError(lost);
    checkEncoder(encoder);
  }

  /** The names an encode may bind elsewhere. */
  private rebindable(): string[] {
    const { writes, reads } = this.bindings;
    return Object.entries({ ...writes, ...reads })
      .filter(([name, r]) => !this.fixed.includes(name) && !isPlaceholder(r))
      .map(([name]) => name);
  }

  /**
   * The planned ranges that `tensors` binds elsewhere, each validated as when planning (usage,
   * alignment, size, no write shared with another binding, no module's state written); null when
   * nothing moves.
   */
  private swap(tensors: unknown): Map<Range, Range> | null {
    if (tensors === undefined) return null;
    const t = checkObject<Record<string, TensorArg>>(`${this.label}.encode tensors`, tensors);
    const names = this.rebindable();
    checkKeys(`${this.label}.encode`, t, names);
    const swap = new Map<Range, Range>();
    const bind = (side: Record<string, Range>) =>
      Object.fromEntries(
        Object.entries(side).map(([name, planned]) => {
          if (t[name] === undefined) return [name, planned];
          const r = bufferRange(this.device, name, t[name], planned.size);
          if (r.buffer !== planned.buffer || r.offset !== planned.offset) swap.set(planned, r);
          return [name, r];
        }),
      );
    const writes = bind(this.bindings.writes);
    const reads = bind(this.bindings.reads);
    if (!swap.size) return null;
    // Validated as a whole again: a buffer that moved may now meet another binding.
    checkSharing(writes, reads);
    checkNotModuleState(writes);
    return swap;
  }

  encode(encoder: GPUCommandEncoder, tensors?: T): void {
    this.check(encoder);
    const swap = this.swap(tensors);
    const pass = encoder.beginComputePass({ label: this.label });
    encodeDispatches(pass, this.dispatches, swap);
    pass.end();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.owned) b.destroy();
  }
}

/** A positive virtualBatchSize that divides N, as a ghost count (1 without one). */
function ghostCount(k: unknown, g: Geometry): number {
  if (k === undefined) return 1;
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1)
    throw new OptionError(`virtualBatchSize must be a positive integer; got ${describe(k)}`);
  const N = g.shape[0];
  if (N % k !== 0)
    throw new BatchSizeError(
      `virtualBatchSize ${k} must divide the batch: shape ${JSON.stringify(g.shape)} has N = ${N}; pass N = a multiple of ${k}`,
    );
  return N / k;
}

/** Batch statistics need more than one value per channel (in each ghost batch). */
function checkBatchValues(g: Geometry, ghosts: number, what: string): void {
  const M = g.M / ghosts;
  if (M < 2)
    throw new BatchSizeError(
      `${what} needs more than one value per channel; shape ${JSON.stringify(g.shape)} gives M = ${M}${ghosts > 1 ? ' in each ghost batch' : ''}. Use a larger batch, or inference mode.`,
    );
}

/** Training-mode forward: batch statistics, running update, y = normalised x. */
export function planForwardTrain(
  device: GPUDevice,
  params: ForwardTrainParams,
  table: KernelTable = DEFAULT_TABLE,
): PassPlan<ForwardTrainTensors> {
  checkDevice(device);
  const p = checkObject<ForwardTrainParams>('forward parameters', params);
  checkKeys('encodeForwardTrain', p, [
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
  ]);
  const g = tensorGeometry(device, p.layout, p.shape, p.dtype);
  const ghosts = ghostCount(p.virtualBatchSize, g);
  checkBatchValues(g, ghosts, 'training');
  const eps = checkEps(p.eps ?? 1e-5);
  if (p.momentum === null)
    throw new OptionError(
      'momentum null (a cumulative average) needs the step count: pass momentum 1/n for the n-th step, or use the BatchNorm module, which counts steps',
    );
  const momentum = checkUnit('momentum', p.momentum ?? 0.1, 'the weight of the new batch statistic, as in PyTorch');
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
  const wg = checkWorkgroupSize(device, p.workgroupSize);
  const shape = planShape(device, table, g, wg, epilogue, ghosts);
  const owned: GPUBuffer[] = [];
  const label = 'bn.forward_train';
  const workspace = workspaceRange(device, shape, p.workspace, owned, label);
  // The running statistics are read_write bindings even when only read (out of place).
  const writes = {
    y,
    stats,
    runningMean,
    runningVar: runningSpread,
    runningMeanOut,
    runningVarOut: runningSpreadOut,
    workspace,
  };
  const reads = { x, weight: gamma, bias: beta, ...(epilogue === 'add_relu' ? { z } : {}) };
  checkSharing(writes, reads);
  checkNotModuleState(writes);
  const step = constantBuffer(
    device,
    `${label}.step`,
    new Float32Array([0, momentum, clip?.rmax ?? 1, clip?.dmax ?? 0, clip ? (clip.rmin ?? 1 / clip.rmax) : 1, 0, 0, 0])
      .buffer,
    GPUBufferUsage.UNIFORM,
  );
  owned.push(step);
  const flags =
    (tracked ? FinalizeFlags.UPDATE : 0) |
    (unbiased ? FinalizeFlags.UNBIASED : 0) |
    (clip ? FinalizeFlags.RENORM : 0) |
    (clip && !runningIsStd ? FinalizeFlags.RENORM_VAR : 0) |
    (outOfPlace ? FinalizeFlags.OUT_OF_PLACE : 0) |
    (affine ? FinalizeFlags.AFFINE : 0);
  const dispatches = forwardTrainDispatches(
    device,
    shape,
    {
      x,
      y,
      z,
      stats,
      gamma,
      beta,
      runningMean,
      runningSpread,
      runningMeanOut,
      runningSpreadOut,
      workspace,
      step: { buffer: step, offset: 0, size: STEP_BYTES },
    },
    eps,
    flags,
    owned,
  );
  return new PassPlan(device, label, dispatches, owned, { writes, reads }, ['workspace']);
}

/** Inference-mode forward: y = (x - running_mean)·gamma/sqrt(running_var + eps) + beta. */
export function planForwardEval(
  device: GPUDevice,
  params: ForwardEvalParams,
  table: KernelTable = DEFAULT_TABLE,
): PassPlan<ForwardEvalTensors> {
  checkDevice(device);
  const p = checkObject<ForwardEvalParams>('forward parameters', params);
  checkKeys('encodeForwardEval', p, [...FORWARD_KEYS, 'runningMean', 'runningVar', 'eps', 'runningIsStd']);
  const g = tensorGeometry(device, p.layout, p.shape, p.dtype);
  const eps = checkEps(p.eps ?? 1e-5);
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
  const wg = checkWorkgroupSize(device, p.workgroupSize);
  const writes = { y, stats };
  const reads = {
    x,
    weight: gamma,
    bias: beta,
    runningMean,
    runningVar: runningSpread,
    ...(epilogue === 'add_relu' ? { z } : {}),
  };
  checkSharing(writes, reads);
  checkNotModuleState(writes);
  const owned: GPUBuffer[] = [];
  const flags = (affine ? EvalFlags.AFFINE : 0) | (runningIsStd ? EvalFlags.SPREAD_IS_STD : 0);
  const dispatches = forwardEvalDispatches(
    device,
    planShape(device, table, g, wg, epilogue),
    { x, y, z, stats, gamma, beta, runningMean, runningSpread },
    eps,
    flags,
    owned,
  );
  return new PassPlan(device, 'bn.forward_eval', dispatches, owned, { writes, reads });
}

/** Backward: dx, and dweight/dbias when affine. */
export function planBackward(
  device: GPUDevice,
  params: BackwardParams,
  table: KernelTable = DEFAULT_TABLE,
): PassPlan<BackwardTensors> {
  checkDevice(device);
  const p = checkObject<BackwardParams>('backward parameters', params);
  checkKeys('encodeBackward', p, [
    'layout',
    'shape',
    'x',
    'dy',
    'dx',
    'stats',
    'weight',
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
  ]);
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
  if (!affine && (p.dweight !== undefined || p.dbias !== undefined))
    throw new OptionError("dweight and dbias need weight (the forward pass's gamma); pass all three, or none");
  if (affine && (p.dweight === undefined || p.dbias === undefined))
    throw new OptionError('with weight, pass dweight and dbias to receive the parameter gradients');
  const gamma = affine ? bufferRange(device, 'weight', p.weight, g.C * 4) : placeholder(device, 0);
  const dgamma = affine ? bufferRange(device, 'dweight', p.dweight, g.C * 4) : placeholder(device, 4);
  const dbeta = affine ? bufferRange(device, 'dbias', p.dbias, g.C * 4) : placeholder(device, 5);
  const epilogue = checkEpilogue(p.epilogue);
  const e = epilogueGradRanges(device, epilogue, p.y, p.dz, bytes);
  const wg = checkWorkgroupSize(device, p.workgroupSize);
  const shape = planShape(device, table, g, wg, epilogue, ghosts);
  const owned: GPUBuffer[] = [];
  const workspace = workspaceRange(device, shape, p.workspace, owned, 'bn.backward');
  const writes = { dx, dweight: dgamma, dbias: dbeta, workspace, ...(epilogue === 'add_relu' ? { dz: e.dz } : {}) };
  const reads = { x, dy, stats, weight: gamma, ...(epilogue ? { y: e.y } : {}) };
  checkSharing(writes, reads);
  checkNotModuleState(writes);
  const dispatches = backwardDispatches(
    device,
    shape,
    { x, dy, dx, stats, gamma, dgamma, dbeta, workspace, y: e.y, dz: e.dz },
    batchStats,
    affine,
    owned,
  );
  return new PassPlan(device, 'bn.backward', dispatches, owned, { writes, reads }, ['workspace']);
}
