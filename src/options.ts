/**
 * Module options, their PyTorch defaults, the selectable Keras convention, and the Batch Renorm
 * warm-up schedule. Validation lives here so the GPU and CPU modules refuse the same things.
 */
import { OptionError } from './errors';
import { KERNEL_VERSIONS, type KernelVersion } from './kernels/plan';
import type { TensorDtype } from './layout';

export type Convention = 'pytorch' | 'keras';

/** A kernel version the GPU path has, or an OptionError; undefined means the latest. */
export function checkKernelVersion(v: unknown): KernelVersion {
  if (v === undefined) return KERNEL_VERSIONS[KERNEL_VERSIONS.length - 1];
  if (!KERNEL_VERSIONS.includes(v as KernelVersion)) throw new OptionError(`kernelVersion must be one of ${KERNEL_VERSIONS.join(', ')}; got ${String(v)}`);
  return v as KernelVersion;
}

/** A tensor dtype, or an OptionError; undefined means float32. */
export function checkDtype(v: unknown): TensorDtype {
  if (v === undefined) return 'float32';
  if (v !== 'float32' && v !== 'float16') throw new OptionError(`dtype must be 'float32' or 'float16'; got ${String(v)}`);
  return v;
}

export interface RenormClip {
  /** Upper clip of r = sigmaB/sigma (lower clip is 1/rmax); must be >= 1. */
  rmax: number;
  /** Clip of |d| = |muB - mu|/sigma; must be >= 0. */
  dmax: number;
}

export interface RenormScheduleOptions {
  /** rmax rises linearly from rmaxStart to rmaxEnd over steps [rmaxSteps[0], rmaxSteps[1]]. */
  rmaxStart?: number;
  rmaxEnd?: number;
  rmaxSteps?: [number, number];
  /** dmax rises linearly from dmaxStart to dmaxEnd over steps [dmaxSteps[0], dmaxSteps[1]]. */
  dmaxStart?: number;
  dmaxEnd?: number;
  dmaxSteps?: [number, number];
}

/** Clip values as a function of the training step (0-based count of training batches so far). */
export type RenormSchedule = (step: number) => RenormClip;

export interface RenormOptions {
  /** Fixed clip; default 3 (the paper's final value). Ignored when `schedule` is given. */
  rmax?: number;
  /** Fixed clip; default 5 (the paper's final value). Ignored when `schedule` is given. */
  dmax?: number;
  /** Warm-up schedule, e.g. `renormSchedule()` for the paper's. */
  schedule?: RenormSchedule;
}

export interface BatchNormOptions {
  /** Added to the variance; must be > 0. Default 1e-5 (PyTorch), 1e-3 with convention 'keras'. */
  eps?: number;
  /**
   * PyTorch convention: weight of the NEW batch statistic, default 0.1; `null` gives a cumulative
   * average (factor 1/num_batches_tracked). Keras convention: weight of the OLD value, default 0.99.
   */
  momentum?: number | null;
  /** How `momentum` is read; default 'pytorch'. */
  convention?: Convention;
  /** Variance stored in running_var: 'unbiased' (n/(n-1), PyTorch default) or 'biased' (Keras default). */
  runningVariance?: 'unbiased' | 'biased';
  /** Learnable gamma/beta; default true. */
  affine?: boolean;
  /** Keep running statistics; false uses batch statistics in eval too, as PyTorch does. Default true. */
  trackRunningStats?: boolean;
  /** Batch Renormalization (Ioffe 2017) instead of plain batch norm. */
  renorm?: RenormOptions | boolean;
  /** GPU kernel set (see KernelVersion); default the latest. The CPU path ignores it. */
  kernelVersion?: KernelVersion;
  /**
   * Element type of x, y, dy and dx: 'float32' (default) or 'float16' (GPU: a device with
   * 'shader-f16'; CPU: values rounded to float16 where the GPU stores them). Parameters and running
   * statistics stay float32.
   */
  dtype?: TensorDtype;
}

export interface ResolvedOptions {
  readonly eps: number;
  readonly momentum: number | null;
  readonly convention: Convention;
  readonly unbiased: boolean;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  readonly renorm: RenormSchedule | null;
  readonly kernelVersion: KernelVersion;
  readonly dtype: TensorDtype;
}

function finite(name: string, v: unknown, fix: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new OptionError(`${name} must be a finite number; got ${String(v)}. ${fix}`);
  }
  return v;
}

function checkClip(clip: RenormClip, where: string): RenormClip {
  const rmax = finite('rmax', clip.rmax, `Pass rmax >= 1${where}.`);
  const dmax = finite('dmax', clip.dmax, `Pass dmax >= 0${where}.`);
  if (rmax < 1) throw new OptionError(`rmax must be >= 1 (r is clipped to [1/rmax, rmax]); got ${rmax}${where}. rmax = 1 means r = 1.`);
  if (dmax < 0) throw new OptionError(`dmax must be >= 0 (d is clipped to [-dmax, dmax]); got ${dmax}${where}. dmax = 0 means d = 0.`);
  return { rmax, dmax };
}

/**
 * The paper's warm-up (Ioffe 2017, §4): rmax = 1 and dmax = 0 at first, then rmax rises linearly
 * to 3 between steps 5000 and 40000 and dmax to 5 between steps 5000 and 25000.
 */
export function renormSchedule(o: RenormScheduleOptions = {}): RenormSchedule {
  const rs = o.rmaxStart ?? 1, re = o.rmaxEnd ?? 3;
  const ds = o.dmaxStart ?? 0, de = o.dmaxEnd ?? 5;
  const [r0, r1] = o.rmaxSteps ?? [5000, 40000];
  const [d0, d1] = o.dmaxSteps ?? [5000, 25000];
  checkClip({ rmax: rs, dmax: ds }, ' at the start of the schedule');
  checkClip({ rmax: re, dmax: de }, ' at the end of the schedule');
  for (const [name, a, b] of [['rmaxSteps', r0, r1], ['dmaxSteps', d0, d1]] as const) {
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || a < 0 || b < a) {
      throw new OptionError(`${name} must be [start, end] with 0 <= start <= end integers; got [${a}, ${b}]. Swap a reversed range.`);
    }
  }
  const ramp = (step: number, a: number, b: number, v0: number, v1: number) =>
    step <= a ? v0 : step >= b ? v1 : v0 + ((v1 - v0) * (step - a)) / (b - a);
  return (step) => ({ rmax: ramp(step, r0, r1, rs, re), dmax: ramp(step, d0, d1, ds, de) });
}

export function resolveOptions(o: BatchNormOptions = {}): ResolvedOptions {
  const convention = o.convention ?? 'pytorch';
  if (convention !== 'pytorch' && convention !== 'keras') {
    throw new OptionError(`convention must be 'pytorch' or 'keras'; got ${JSON.stringify(convention)}`);
  }
  const keras = convention === 'keras';
  const eps = finite('eps', o.eps ?? (keras ? 1e-3 : 1e-5), 'Pass a small positive value such as 1e-5.');
  if (eps <= 0) throw new OptionError(`eps must be > 0 (it keeps 1/sqrt(var + eps) finite); got ${eps}. Pass e.g. 1e-5.`);
  let momentum: number | null = o.momentum === undefined ? (keras ? 0.99 : 0.1) : o.momentum;
  if (momentum === null) {
    if (keras) throw new OptionError('momentum null (cumulative average) exists only in the pytorch convention; pass a number in [0, 1] for keras.');
  } else {
    finite('momentum', momentum, 'Pass a number in [0, 1], or null for a cumulative average.');
    if (momentum < 0 || momentum > 1) {
      throw new OptionError(`momentum must lie in [0, 1]; got ${momentum}. In the ${convention} convention it is the weight of the ${keras ? 'old running value' : 'new batch statistic'}.`);
    }
  }
  const rv = o.runningVariance ?? (keras ? 'biased' : 'unbiased');
  if (rv !== 'unbiased' && rv !== 'biased') {
    throw new OptionError(`runningVariance must be 'unbiased' or 'biased'; got ${JSON.stringify(rv)}`);
  }
  let renorm: RenormSchedule | null = null;
  if (o.renorm) {
    const r: RenormOptions = o.renorm === true ? {} : o.renorm;
    if (r.schedule !== undefined) {
      if (typeof r.schedule !== 'function') throw new OptionError('renorm.schedule must be a function of the step; build it with renormSchedule({...}).');
      renorm = r.schedule;
    } else {
      const clip = checkClip({ rmax: r.rmax ?? 3, dmax: r.dmax ?? 5 }, '');
      renorm = () => clip;
    }
  }
  return {
    kernelVersion: checkKernelVersion(o.kernelVersion),
    dtype: checkDtype(o.dtype),
    eps,
    momentum,
    convention,
    unbiased: rv === 'unbiased',
    affine: o.affine ?? true,
    trackRunningStats: o.trackRunningStats ?? true,
    renorm,
  };
}

/** Weight of the new batch statistic for the `step`-th training batch (1-based, after increment). */
export function newStatWeight(opts: ResolvedOptions, numBatchesTracked: number): number {
  if (opts.momentum === null) return 1 / numBatchesTracked;
  return opts.convention === 'keras' ? 1 - opts.momentum : opts.momentum;
}

/** The clip for the step about to run, validated (a schedule may return anything). */
export function renormClip(opts: ResolvedOptions, step: number): RenormClip | null {
  return opts.renorm ? checkClip(opts.renorm(step), ` (from renorm.schedule at step ${step})`) : null;
}
