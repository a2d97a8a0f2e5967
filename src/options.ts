/**
 * Module options, their PyTorch defaults, the selectable Keras convention, and Batch Renorm's clip
 * schedules. Validation lives here so the GPU and CPU modules refuse the same things.
 */
import { OptionError } from './errors.js';
import { safeJson, type TensorDtype } from './layout.js';
import { checkBoolean, checkEps, checkUnit } from './validate.js';
import type { Epilogue } from './gpu/kernel.js';

export type Convention = 'pytorch' | 'keras';

export interface RenormClip {
  /** Upper clip of r = sigmaB/sigma (lower clip is 1/rmax); must be >= 1. */
  rmax: number;
  /** Clip of |d| = |muB - mu|/sigma; must be >= 0. */
  dmax: number;
  /**
   * Lower clip of r, in [0, rmax] (Keras's `rmin`); default 1/rmax. Taken by the functional
   * `renorm` parameter only: a module's schedules clip r to [1/rmax, rmax].
   */
  rmin?: number;
}

/** (step, value) breakpoints: the first value up to the first step, linear between, the last value after. */
export type Breakpoints = readonly (readonly [number, number])[];

/**
 * A clip schedule the GPU evaluates itself, so plans can encode many steps into one command
 * buffer: rmax and dmax each piecewise linear in the step, with 1 to 8 breakpoints.
 */
export interface PiecewiseSchedule {
  rmax: Breakpoints;
  dmax: Breakpoints;
}

/**
 * A clip schedule as a function of the training step (the 0-based count of training batches so
 * far). `renormSchedule()` returns one that also carries its breakpoints, which the GPU evaluates;
 * any other function runs on the host before each awaited step (and cannot be used with plans).
 */
export type RenormSchedule = ((step: number) => RenormClip) & { readonly points?: PiecewiseSchedule };

export interface RenormScheduleOptions {
  /** rmax rises linearly from rmaxStart to rmaxEnd over steps [rmaxSteps[0], rmaxSteps[1]]. */
  rmaxStart?: number;
  rmaxEnd?: number;
  rmaxSteps?: readonly [number, number];
  /** dmax rises linearly from dmaxStart to dmaxEnd over steps [dmaxSteps[0], dmaxSteps[1]]. */
  dmaxStart?: number;
  dmaxEnd?: number;
  dmaxSteps?: readonly [number, number];
}

export interface RenormOptions {
  /** Fixed clip; default 3 (the paper's final value). Not allowed with `schedule`. */
  rmax?: number;
  /** Fixed clip; default 5 (the paper's final value). Not allowed with `schedule`. */
  dmax?: number;
  /** A schedule: `renormSchedule({...})`, breakpoints `{ rmax: [[step, v], ...], dmax: [...] }`, or a function. */
  schedule?: RenormSchedule | PiecewiseSchedule;
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
  /**
   * Element type of x, y, dy and dx: 'float32' (default) or 'float16' (GPU: a device with
   * 'shader-f16'; CPU: values rounded to float16 where the GPU stores them). Parameters and running
   * statistics stay float32.
   */
  dtype?: TensorDtype;
  /**
   * Statistics per activation over the batch (the "usual" batch norm of Ioffe & Szegedy §3) instead
   * of per channel: each sample is a vector of numFeatures = C·spatial activations, indexed by their
   * offset within one sample in the tensors' layout ((c, h, w) for NCHW, (h, w, c) for NHWC), as
   * PyTorch's BatchNorm1d on x.flatten(1) and Keras's BatchNormalization(axis=[1, 2, 3]) keep them.
   * Default false.
   */
  perActivation?: boolean;
  /**
   * A fused epilogue (cuDNN's BN_ACTIVATION / BN_ADD_ACTIVATION): 'relu' gives y = relu(bn(x)),
   * 'add_relu' y = relu(bn(x) + z) with z passed to forward, and backward returns dz. Backward
   * takes the relu's mask from y. Default none.
   */
  epilogue?: Epilogue;
  /**
   * Ghost batch norm (Keras's virtual_batch_size): each group of this many consecutive samples
   * along N is normalised with its own batch statistics. N must be a multiple of it. The running
   * statistics update once per call, from the mean of the ghosts' means and of their variances
   * (each stored as the convention stores it); num_batches_tracked advances by one. Default none.
   */
  virtualBatchSize?: number;
}

/** How a module's renorm clip is obtained each step. */
export type ClipSource =
  { kind: 'points'; points: PiecewiseSchedule } | { kind: 'function'; fn: (step: number) => RenormClip };

export interface ResolvedOptions {
  readonly eps: number;
  readonly momentum: number | null;
  readonly convention: Convention;
  readonly unbiased: boolean;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  readonly renorm: ClipSource | null;
  readonly dtype: TensorDtype;
  readonly perActivation: boolean;
  readonly epilogue: Epilogue | null;
  readonly virtualBatchSize: number | null;
}

/** Largest float32: values bound for the GPU must stay below it to stay finite. */
export const F32_MAX = 3.4028234663852886e38;

/** A plain object (or undefined), never an array, function or primitive. */
export function checkObject<T extends object>(name: string, v: unknown): Partial<T> {
  if (v === undefined) return {};
  if (
    typeof v !== 'object' ||
    v === null ||
    Array.isArray(v) ||
    (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null)
  ) {
    throw new OptionError(`${name} must be a plain object ({ ... }) or left out; got ${describe(v)}`);
  }
  return v as Partial<T>;
}

/** A short description of a value for a message. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${safeJson(v)}`;
}

function finite(name: string, v: unknown, fix: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > F32_MAX) {
    throw new OptionError(`${name} must be a finite number that float32 can hold; got ${describe(v)}. ${fix}`);
  }
  return v;
}

/** A clip, checked: rmax >= 1, dmax >= 0, both finite in f32; with `withRmin`, rmin in [0, rmax] too. */
export function checkClip(clip: unknown, where: string, withRmin = false): RenormClip {
  if (typeof clip !== 'object' || clip === null)
    throw new OptionError(`a renorm clip must be { rmax, dmax }; got ${describe(clip)}${where}`);
  const c = clip as Partial<RenormClip>;
  const rmax = finite('rmax', c.rmax, `Pass rmax >= 1${where}.`);
  const dmax = finite('dmax', c.dmax, `Pass dmax >= 0${where}.`);
  if (rmax < 1)
    throw new OptionError(
      `rmax must be >= 1 (r is clipped to [1/rmax, rmax]); got ${rmax}${where}. rmax = 1 means r = 1.`,
    );
  if (dmax < 0)
    throw new OptionError(
      `dmax must be >= 0 (d is clipped to [-dmax, dmax]); got ${dmax}${where}. dmax = 0 means d = 0.`,
    );
  if (!withRmin || c.rmin === undefined) return { rmax, dmax };
  const rmin = finite('rmin', c.rmin, `Pass rmin in [0, rmax]${where}, or leave it out for 1/rmax.`);
  if (rmin < 0 || rmin > rmax)
    throw new OptionError(`rmin must be in [0, rmax] (r is clipped to [rmin, rmax]); got ${rmin}${where}`);
  return { rmax, dmax, rmin };
}

const MAX_POINTS = 8;

function checkBreakpoints(name: 'rmax' | 'dmax', v: unknown): Breakpoints {
  if (!Array.isArray(v) || v.length < 1 || v.length > MAX_POINTS) {
    throw new OptionError(
      `schedule.${name} must be an array of 1 to ${MAX_POINTS} [step, value] pairs; got ${describe(v)}`,
    );
  }
  let last = -1;
  return v.map((p, i) => {
    if (!Array.isArray(p) || p.length !== 2)
      throw new OptionError(`schedule.${name}[${i}] must be a [step, value] pair; got ${describe(p)}`);
    const [step, value] = p as unknown[];
    if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0 || step < last) {
      throw new OptionError(
        `schedule.${name}[${i}]: steps must be non-decreasing integers >= 0; got ${describe(step)} after ${last}`,
      );
    }
    last = step;
    const clip =
      name === 'rmax'
        ? checkClip({ rmax: value, dmax: 0 }, ` (schedule.rmax[${i}])`).rmax
        : checkClip({ rmax: 1, dmax: value }, ` (schedule.dmax[${i}])`).dmax;
    return [step, clip] as const;
  });
}

/** The piecewise-linear function of `points` at `step`, as step_state.wgsl evaluates it. */
export function piecewise(points: Breakpoints, step: number): number {
  for (let i = 0; i < points.length; i++) {
    const [s, v] = points[i];
    if (step <= s) {
      if (i === 0) return v;
      const [a, va] = points[i - 1];
      return va + (v - va) * ((step - a) / (s - a));
    }
  }
  return points[points.length - 1][1];
}

/**
 * The paper's warm-up (Ioffe 2017, §4): rmax = 1 and dmax = 0 at first, then rmax rises linearly
 * to 3 between steps 5000 and 40000 and dmax to 5 between steps 5000 and 25000.
 */
export function renormSchedule(options: RenormScheduleOptions = {}): RenormSchedule {
  const o = checkObject<RenormScheduleOptions>('renormSchedule options', options);
  const steps = (name: string, v: unknown, fallback: [number, number]): [number, number] => {
    if (v === undefined) return fallback;
    const [a, b] = Array.isArray(v) && v.length === 2 ? v : [NaN, NaN];
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || a < 0 || b < a) {
      throw new OptionError(
        `${name} must be [start, end] with 0 <= start <= end integers; got ${describe(v)}. Swap a reversed range.`,
      );
    }
    return [a, b];
  };
  const [r0, r1] = steps('rmaxSteps', o.rmaxSteps, [5000, 40000]);
  const [d0, d1] = steps('dmaxSteps', o.dmaxSteps, [5000, 25000]);
  const points = checkSchedulePoints({
    rmax: [
      [r0, o.rmaxStart ?? 1],
      [r1, o.rmaxEnd ?? 3],
    ],
    dmax: [
      [d0, o.dmaxStart ?? 0],
      [d1, o.dmaxEnd ?? 5],
    ],
  });
  const fn = (step: number) => ({ rmax: piecewise(points.rmax, step), dmax: piecewise(points.dmax, step) });
  return Object.assign(fn, { points });
}

function checkSchedulePoints(v: unknown): PiecewiseSchedule {
  const o = checkObject<PiecewiseSchedule>('renorm.schedule', v);
  for (const k of Object.keys(o))
    if (k !== 'rmax' && k !== 'dmax')
      throw new OptionError(`renorm.schedule has unknown key '${k}'; it takes rmax and dmax breakpoints`);
  return { rmax: checkBreakpoints('rmax', o.rmax), dmax: checkBreakpoints('dmax', o.dmax) };
}

/** The renorm option as a clip source, validated (a function is called at step 0 to check it). */
function resolveRenorm(v: unknown): ClipSource | null {
  if (v === undefined || v === false) return null;
  if (v !== true && (typeof v !== 'object' || v === null))
    throw new OptionError(`renorm must be true, false or { rmax, dmax } / { schedule }; got ${describe(v)}`);
  const r = v === true ? {} : checkObject<RenormOptions>('renorm', v);
  for (const k of Object.keys(r))
    if (!['rmax', 'dmax', 'schedule'].includes(k))
      throw new OptionError(`renorm has unknown key '${k}'; it takes rmax, dmax or schedule`);
  if (r.schedule === undefined) {
    const clip = checkClip({ rmax: r.rmax ?? 3, dmax: r.dmax ?? 5 }, '');
    return { kind: 'points', points: { rmax: [[0, clip.rmax]], dmax: [[0, clip.dmax]] } };
  }
  if (r.rmax !== undefined || r.dmax !== undefined)
    throw new OptionError('renorm takes either a fixed clip (rmax, dmax) or a schedule, not both');
  const s = r.schedule;
  if (typeof s === 'function') {
    if (s.points !== undefined) return { kind: 'points', points: checkSchedulePoints(s.points) };
    const fn = s as (step: number) => RenormClip;
    clipAt({ kind: 'function', fn }, 0);
    return { kind: 'function', fn };
  }
  return { kind: 'points', points: checkSchedulePoints(s) };
}

/** The clip of step `step` (0-based training steps so far), validated: a function may return anything. */
export function clipAt(source: ClipSource, step: number): RenormClip {
  if (source.kind === 'points')
    return { rmax: piecewise(source.points.rmax, step), dmax: piecewise(source.points.dmax, step) };
  let clip: unknown;
  try {
    clip = source.fn(step);
  } catch (e) {
    throw new OptionError(`renorm.schedule threw at step ${step}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return checkClip(clip, ` (from renorm.schedule at step ${step})`);
}

export function resolveOptions(options: BatchNormOptions = {}): ResolvedOptions {
  const o = checkObject<BatchNormOptions>('options', options);
  const known = [
    'eps',
    'momentum',
    'convention',
    'runningVariance',
    'affine',
    'trackRunningStats',
    'renorm',
    'dtype',
    'perActivation',
    'epilogue',
    'virtualBatchSize',
  ];
  for (const k of Object.keys(o))
    if (!known.includes(k)) throw new OptionError(`unknown option '${k}'; the options are ${known.join(', ')}`);
  const convention = o.convention ?? 'pytorch';
  if (convention !== 'pytorch' && convention !== 'keras') {
    throw new OptionError(`convention must be 'pytorch' or 'keras'; got ${describe(convention)}`);
  }
  const keras = convention === 'keras';
  const eps = checkEps(o.eps ?? (keras ? 1e-3 : 1e-5));
  const momentum: number | null = o.momentum === undefined ? (keras ? 0.99 : 0.1) : o.momentum;
  if (momentum === null) {
    if (keras)
      throw new OptionError(
        'momentum null (cumulative average) exists only in the pytorch convention; pass a number in [0, 1] for keras.',
      );
  } else {
    checkUnit(
      'momentum',
      momentum,
      `in the ${convention} convention, the weight of the ${keras ? 'old running value' : 'new batch statistic'}; null for a cumulative average`,
    );
  }
  const rv = o.runningVariance ?? (keras ? 'biased' : 'unbiased');
  if (rv !== 'unbiased' && rv !== 'biased') {
    throw new OptionError(`runningVariance must be 'unbiased' or 'biased'; got ${describe(rv)}`);
  }
  const dtype = o.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float16')
    throw new OptionError(`dtype must be 'float32' or 'float16'; got ${describe(dtype)}`);
  const trackRunningStats = checkBoolean('trackRunningStats', o.trackRunningStats, true);
  const renorm = resolveRenorm(o.renorm);
  if (renorm && !trackRunningStats)
    throw new OptionError('Batch Renorm corrects towards running statistics, so it needs trackRunningStats: true.');
  return {
    dtype,
    eps,
    momentum,
    convention,
    unbiased: rv === 'unbiased',
    affine: checkBoolean('affine', o.affine, true),
    trackRunningStats,
    renorm,
    perActivation: checkBoolean('perActivation', o.perActivation, false),
    epilogue: checkEpilogue(o.epilogue),
    virtualBatchSize: checkVirtualBatchSize(o.virtualBatchSize),
  };
}

/** Weight of the new batch statistic for the `n`-th training batch (1-based, after increment). */
export function newStatWeight(opts: ResolvedOptions, n: number): number {
  if (opts.momentum === null) return 1 / n;
  return opts.convention === 'keras' ? 1 - opts.momentum : opts.momentum;
}

/** A validated epilogue (null for none). */
export function checkEpilogue(e: unknown): Epilogue | null {
  if (e === undefined || e === null) return null;
  if (e !== 'relu' && e !== 'add_relu')
    throw new OptionError(`epilogue must be 'relu' or 'add_relu' (or left out); got ${describe(e)}`);
  return e;
}

function checkVirtualBatchSize(k: unknown): number | null {
  if (k === undefined || k === null) return null;
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1)
    throw new OptionError(`virtualBatchSize must be a positive integer (samples per ghost batch); got ${describe(k)}`);
  return k;
}
