/**
 * Module options and Batch Renorm's clip schedules: their types, and `renormSchedule`, the paper's
 * warm-up. The checks live in validate/options.ts, shared by the GPU and CPU modules.
 */
import { OptionError } from './errors.js';
import type { TensorDtype } from './layout.js';
import { checkObject, describe } from './validate/args.js';
import { checkSchedulePoints } from './validate/options.js';

/**
 * A fused epilogue of the apply and backward kernels (cuDNN's BN_ACTIVATION and
 * BN_ADD_ACTIVATION): y = relu(bn(x)), or y = relu(bn(x) + z).
 */
export type Epilogue = 'relu' | 'add_relu';

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
