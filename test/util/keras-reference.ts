/**
 * The float64 CPU path of the TF.js bridge's layer (Keras conventions): one training step from the
 * reference primitives of src/cpu/reference.ts. Consecutive ghost batches, renorm towards the moving
 * mean and sqrt(moving_variance + eps) with Keras's [rmin, rmax] and dmax, the biased batch variance
 * in the moving average, moving values kept for a channel whose statistics are not finite.
 */
import { applyCoefficients, backward, batchStats, trainCoefficients, updateRunning } from '../../src/cpu/reference';
import { geometry, type Layout } from '../../src/layout';

export interface KerasStepInput {
  x: ArrayLike<number>;
  dy: ArrayLike<number>;
  shape: number[];
  /** 'NHWC' (channels last, axis -1) or 'NCHW' (axis 1); 'NC' for rank 2. */
  layout: Layout;
  gamma: ArrayLike<number> | null;
  beta: ArrayLike<number> | null;
  movingMean: ArrayLike<number>;
  movingVariance: ArrayLike<number>;
  eps: number;
  momentum: number;
  renorm?: { rmax: number; rmin: number; dmax: number };
  virtualBatchSize?: number;
}

export interface KerasStepOutput {
  y: Float64Array;
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
  movingMean: Float64Array;
  movingVariance: Float64Array;
}

export function kerasStep(p: KerasStepInput): KerasStepOutput {
  const g = geometry(p.layout, p.shape);
  const C = g.C;
  const G = p.virtualBatchSize ? p.shape[0] / p.virtualBatchSize : 1;
  const gg = geometry(p.layout, [p.shape[0] / G, ...p.shape.slice(1)]);
  const n = gg.count;
  const gamma = p.gamma ?? new Float64Array(C).fill(1);
  const beta = p.beta ?? new Float64Array(C);
  const sigma = Float64Array.from(p.movingVariance, (v) => Math.sqrt(v + p.eps));
  const out: KerasStepOutput = {
    y: new Float64Array(g.count),
    dx: new Float64Array(g.count),
    dgamma: new Float64Array(C),
    dbeta: new Float64Array(C),
    movingMean: Float64Array.from(p.movingMean),
    movingVariance: Float64Array.from(p.movingVariance),
  };
  const ghosts = [];
  for (let k = 0; k < G; k++) {
    // Consecutive samples: each ghost batch is one contiguous run in either layout.
    const xs = Array.prototype.slice.call(p.x, k * n, (k + 1) * n) as number[];
    const dys = Array.prototype.slice.call(p.dy, k * n, (k + 1) * n) as number[];
    const s = batchStats(xs, gg);
    ghosts.push(s);
    const coef = trainCoefficients(
      s,
      gamma,
      beta,
      p.eps,
      p.renorm ? { clip: p.renorm, mu: p.movingMean, sigma } : null,
    );
    out.y.set(applyCoefficients(xs, gg, coef), k * n);
    const gr = backward(xs, dys, gg, coef, gamma, true);
    out.dx.set(gr.dx, k * n);
    for (let c = 0; c < C; c++) {
      out.dgamma[c] += gr.dgamma[c];
      out.dbeta[c] += gr.dbeta[c];
    }
  }
  updateRunning(ghosts, gg.M, 1 - p.momentum, false, p.eps, out.movingMean, out.movingVariance, false);
  return out;
}
