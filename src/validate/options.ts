/**
 * Module options: their PyTorch defaults, the selectable Keras convention, renorm clips and schedules,
 * checked once, so the GPU and CPU modules refuse the same things.
 */
import { OptionError } from '../errors.js';
import type {
  BatchNormOptions,
  Breakpoints,
  ClipSource,
  Epilogue,
  PiecewiseSchedule,
  RenormClip,
  RenormOptions,
  ResolvedOptions,
} from '../options.js';
import {
  checkBoolean,
  checkEps,
  checkKeys,
  checkObject,
  checkPositiveInteger,
  checkUnit,
  describe,
  finite,
} from './args.js';

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

export function checkSchedulePoints(v: unknown): PiecewiseSchedule {
  const o = checkObject<PiecewiseSchedule>('renorm.schedule', v);
  checkKeys('renorm.schedule', o, ['rmax', 'dmax']);
  return { rmax: checkBreakpoints('rmax', o.rmax), dmax: checkBreakpoints('dmax', o.dmax) };
}

/** The renorm option as a clip source, validated (a function is called at step 0 to check it). */
function resolveRenorm(v: unknown): ClipSource | null {
  if (v === undefined || v === false) return null;
  if (v !== true && (typeof v !== 'object' || v === null))
    throw new OptionError(`renorm must be true, false or { rmax, dmax } / { schedule }; got ${describe(v)}`);
  const r = v === true ? {} : checkObject<RenormOptions>('renorm', v);
  checkKeys('renorm', r, ['rmax', 'dmax', 'schedule']);
  if (r.schedule === undefined) {
    const clip = checkClip({ rmax: r.rmax === undefined ? 3 : r.rmax, dmax: r.dmax === undefined ? 5 : r.dmax }, '');
    return { kind: 'points', points: { rmax: [[0, clip.rmax]], dmax: [[0, clip.dmax]] } };
  }
  if (r.rmax !== undefined || r.dmax !== undefined)
    throw new OptionError('renorm takes either a fixed clip (rmax, dmax) or a schedule, not both');
  const s = r.schedule;
  if (typeof s === 'function') {
    if (s.points !== undefined) return { kind: 'points', points: checkSchedulePoints(s.points) };
    const fn = s as (step: number) => RenormClip;
    checkClipAt(fn, 0);
    return { kind: 'function', fn };
  }
  return { kind: 'points', points: checkSchedulePoints(s) };
}

/** A renorm clip a schedule function returned at `step`, validated: a function may return anything. */
export function checkClipAt(fn: (step: number) => RenormClip, step: number): RenormClip {
  let clip: unknown;
  try {
    clip = fn(step);
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
  checkKeys('options', o, known, 'option');
  // A default stands in only for a missing option: null is a value, and refused where it is not one.
  const convention = o.convention === undefined ? 'pytorch' : o.convention;
  if (convention !== 'pytorch' && convention !== 'keras') {
    throw new OptionError(`convention must be 'pytorch' or 'keras'; got ${describe(convention)}`);
  }
  const keras = convention === 'keras';
  const eps = checkEps(o.eps === undefined ? (keras ? 1e-3 : 1e-5) : o.eps);
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
  const rv = o.runningVariance === undefined ? (keras ? 'biased' : 'unbiased') : o.runningVariance;
  if (rv !== 'unbiased' && rv !== 'biased') {
    throw new OptionError(`runningVariance must be 'unbiased' or 'biased'; got ${describe(rv)}`);
  }
  const dtype = o.dtype === undefined ? 'float32' : o.dtype;
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

/** A validated epilogue (null for none). */
export function checkEpilogue(e: unknown): Epilogue | null {
  if (e === undefined || e === null) return null;
  if (e !== 'relu' && e !== 'add_relu')
    throw new OptionError(`epilogue must be 'relu' or 'add_relu' (or left out); got ${describe(e)}`);
  return e;
}

function checkVirtualBatchSize(k: unknown): number | null {
  return k === undefined ? null : checkPositiveInteger('virtualBatchSize', k, 'samples per ghost batch');
}
