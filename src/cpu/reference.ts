/**
 * Float64 reference math for every operation the GPU kernels perform. Statistics are two-pass
 * (mean, then sum of squared deviations), so they are exact to float64 rounding at any offset.
 *
 * Out-of-range data has one meaning on both paths: a channel holding a value more than RANGE from
 * its first value (or ±Inf, or NaN) has NaN statistics, so NaN outputs, and keeps its running
 * statistics; a channel whose upstream gradient holds a value beyond RANGE has NaN gradient sums.
 * Below RANGE no f32 sum of squares over 2^31 values can overflow (shaders/prelude.wgsl).
 */
import type { Geometry } from '../layout.js';
import type { RenormClip } from '../options.js';
import type { Epilogue } from '../options.js';

/** Calls f(index, channel) for every element, in memory order. */
export function forEachElement(g: Geometry, f: (i: number, c: number) => void): void {
  let i = 0;
  for (let o = 0; o < g.outer; o++) {
    for (let c = 0; c < g.C; c++) {
      for (let k = 0; k < g.inner; k++) f(i++, c);
    }
  }
}

export interface BatchStats {
  mean: Float64Array;
  /** Biased (population) variance: the one normalisation uses. */
  varBiased: Float64Array;
}

/** 2^47: the largest |x - pivot| and |dy| the statistics and gradient sums take. */
export const RANGE = 2 ** 47;

/** Channels with a value farther than RANGE from `ref(c)` (their first value, or 0), or not a number. */
function outOfRange(v: ArrayLike<number>, g: Geometry, ref: (c: number) => number): Uint8Array {
  const far = new Uint8Array(g.C);
  forEachElement(g, (i, c) => {
    if (!(Math.abs(v[i] - ref(c)) <= RANGE)) far[c] = 1;
  });
  return far;
}

export function batchStats(x: ArrayLike<number>, g: Geometry): BatchStats {
  const far = outOfRange(x, g, (c) => x[c * g.inner]);
  const mean = new Float64Array(g.C);
  const varBiased = new Float64Array(g.C);
  forEachElement(g, (i, c) => {
    mean[c] += x[i];
  });
  for (let c = 0; c < g.C; c++) mean[c] /= g.M;
  forEachElement(g, (i, c) => {
    const d = x[i] - mean[c];
    varBiased[c] += d * d;
  });
  for (let c = 0; c < g.C; c++) {
    varBiased[c] /= g.M;
    if (far[c]) mean[c] = varBiased[c] = NaN;
  }
  return { mean, varBiased };
}

/** Per-channel affine map y = (x - center)·scale + shift, and what backward needs. */
export interface Coefficients {
  center: Float64Array;
  scale: Float64Array;
  shift: Float64Array;
  invstd: Float64Array;
  /** Batch Renorm corrections (1 and 0 for plain batch norm). */
  r: Float64Array;
  d: Float64Array;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

/**
 * Coefficients from batch statistics. With `renorm`, r and d correct towards the running mean and
 * running sigma (Ioffe 2017, Alg. 1), both treated as constants by backward.
 */
export function trainCoefficients(
  s: BatchStats,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  eps: number,
  renorm: { clip: RenormClip; mu: ArrayLike<number>; sigma: ArrayLike<number> } | null,
): Coefficients {
  const C = s.mean.length;
  const k: Coefficients = {
    center: Float64Array.from(s.mean),
    scale: new Float64Array(C),
    shift: new Float64Array(C),
    invstd: new Float64Array(C),
    r: new Float64Array(C).fill(1),
    d: new Float64Array(C),
  };
  for (let c = 0; c < C; c++) {
    const sigmaB = Math.sqrt(s.varBiased[c] + eps);
    k.invstd[c] = 1 / sigmaB;
    if (renorm) {
      const { rmax, dmax, rmin } = renorm.clip;
      k.r[c] = clamp(sigmaB / renorm.sigma[c], rmin ?? 1 / rmax, rmax);
      k.d[c] = clamp((s.mean[c] - renorm.mu[c]) / renorm.sigma[c], -dmax, dmax);
    }
    k.scale[c] = gamma[c] * k.invstd[c] * k.r[c];
    k.shift[c] = gamma[c] * k.d[c] + beta[c];
  }
  return k;
}

/** Coefficients from running statistics; `spread` is running_var, or running sigma for renorm. */
export function evalCoefficients(
  mu: ArrayLike<number>,
  spread: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  eps: number,
  spreadIsStd: boolean,
): Coefficients {
  const C = mu.length;
  const invstd = Float64Array.from({ length: C }, (_, c) =>
    spreadIsStd ? 1 / spread[c] : 1 / Math.sqrt(spread[c] + eps),
  );
  return {
    center: Float64Array.from(mu),
    invstd,
    scale: Float64Array.from({ length: C }, (_, c) => gamma[c] * invstd[c]),
    shift: Float64Array.from(beta),
    r: new Float64Array(C).fill(1),
    d: new Float64Array(C),
  };
}

export function applyCoefficients(x: ArrayLike<number>, g: Geometry, k: Coefficients): Float64Array {
  const y = new Float64Array(g.count);
  forEachElement(g, (i, c) => {
    y[i] = (x[i] - k.center[c]) * k.scale[c] + k.shift[c];
  });
  return y;
}

/**
 * Running-statistics update from the batch's statistics, or from its ghost batches' (each over M
 * values): the mean of their means and of their stored spreads (unbiased or biased variance, or
 * sigma for renorm). A channel whose statistics are not finite in some ghost keeps its running
 * values (one NaN in a batch must not poison the model), the others update.
 */
export function updateRunning(
  ghosts: readonly BatchStats[],
  M: number,
  factor: number,
  unbiased: boolean,
  eps: number,
  runningMean: Float64Array,
  runningSpread: Float64Array,
  spreadIsStd: boolean,
): void {
  for (let c = 0; c < runningMean.length; c++) {
    let mean = 0,
      stat = 0;
    for (const s of ghosts) {
      const v = s.varBiased[c];
      mean += s.mean[c];
      stat += spreadIsStd ? Math.sqrt(v + eps) : unbiased ? (v * M) / (M - 1) : v;
    }
    if (!Number.isFinite(mean) || !Number.isFinite(stat)) continue;
    runningMean[c] = (1 - factor) * runningMean[c] + factor * (mean / ghosts.length);
    runningSpread[c] = (1 - factor) * runningSpread[c] + factor * (stat / ghosts.length);
  }
}

export interface Gradients {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

/** Σdy and Σdy·(x - center) per channel: what backward reduces (and what synchronized shards all-reduce). */
export function gradSums(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  g: Geometry,
  k: Coefficients,
): { sumDy: Float64Array; sumDyXmu: Float64Array } {
  const sumDy = new Float64Array(g.C),
    sumDyXmu = new Float64Array(g.C);
  forEachElement(g, (i, c) => {
    sumDy[c] += dy[i];
    sumDyXmu[c] += dy[i] * (x[i] - k.center[c]);
  });
  const far = outOfRange(dy, g, () => 0);
  for (let c = 0; c < g.C; c++) if (far[c]) sumDy[c] = sumDyXmu[c] = NaN;
  return { sumDy, sumDyXmu };
}

/**
 * Backward of y = (x - center)·scale + shift from the gradient sums over M values (the tensor's,
 * or a synchronized batch's). With batch statistics the gradient flows through mean and variance
 * (r and d are constants); with running statistics they are constants.
 */
export function gradInput(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  g: Geometry,
  k: Coefficients,
  gamma: ArrayLike<number>,
  batchStats: boolean,
  sums: { sumDy: ArrayLike<number>; sumDyXmu: ArrayLike<number> },
  M: number,
): Gradients {
  const C = g.C;
  const A = new Float64Array(C),
    B = new Float64Array(C),
    D = new Float64Array(C);
  const dgamma = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    A[c] = gamma[c] * k.invstd[c] * k.r[c];
    if (batchStats) {
      B[c] = (-A[c] * k.invstd[c] * k.invstd[c] * sums.sumDyXmu[c]) / M;
      D[c] = (-A[c] * sums.sumDy[c]) / M;
    }
    dgamma[c] = k.invstd[c] * k.r[c] * sums.sumDyXmu[c] + k.d[c] * sums.sumDy[c];
  }
  const dx = new Float64Array(g.count);
  forEachElement(g, (i, c) => {
    dx[i] = A[c] * dy[i] + B[c] * (x[i] - k.center[c]) + D[c];
  });
  return { dx, dgamma, dbeta: Float64Array.from(sums.sumDy) };
}

/** Backward over the tensor's own statistics: gradSums, then gradInput over its M values. */
export function backward(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  g: Geometry,
  k: Coefficients,
  gamma: ArrayLike<number>,
  batchStats: boolean,
): Gradients {
  return gradInput(x, dy, g, k, gamma, batchStats, gradSums(x, dy, g, k), g.M);
}

/** The fused epilogue on bn's output, in place: relu(y), or relu(y + z) for add_relu (relu keeps NaN). */
export function applyEpilogue(y: Float64Array, epilogue: Epilogue, z: ArrayLike<number> | null): Float64Array {
  for (let i = 0; i < y.length; i++) {
    const v = epilogue === 'add_relu' ? y[i] + z![i] : y[i];
    y[i] = v < 0 ? 0 : v;
  }
  return y;
}

/** The upstream gradient of bn's output under a relu epilogue: dy where the output y > 0, else 0. */
export function reluGradient(dy: ArrayLike<number>, y: ArrayLike<number>): Float64Array {
  return Float64Array.from(dy, (g, i) => (y[i] > 0 ? g : 0));
}
