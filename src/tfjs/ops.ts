/**
 * The layer's step in TF.js ops, for every backend: the options the stock layer lacks (renorm,
 * ghost batches, center/scale false in training, rank 5) where the library's kernels do not run
 * (cpu, webgl, wasm), with the same semantics as the kernels: consecutive ghost batches, r and d
 * clipped and held constant in the gradient, running statistics kept for a channel whose batch
 * statistics are not finite. The gradient is written out (the kernels' formula), not taped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { opArgs, type StepVariables, type TrainSpec } from './gpu.js';

/** The shape that broadcasts a per-channel [C] vector against a tensor of `rank` with channels at `axis`. */
function channelShape(rank: number, axis: number, C: number): number[] {
  const s = new Array<number>(rank).fill(1);
  s[axis] = C;
  return s;
}

const channelAxis = (s: TrainSpec, rank: number) => (s.layout === 'NHWC' || s.layout === 'NC' ? rank - 1 : 1);

/** Inference with the moving statistics: y = (x - mean)·γ/sqrt(var + eps) + β, any rank. */
export function inferWithOps(s: TrainSpec, x: tf.Tensor, v: StepVariables): tf.Tensor {
  return tf.tidy(() => {
    const b = channelShape(x.rank, channelAxis(s, x.rank), s.C);
    let k = tf.rsqrt(tf.add(v.movingVariance, s.eps));
    if (v.gamma) k = tf.mul(k, v.gamma);
    let y = tf.mul(tf.sub(x, tf.reshape(v.movingMean, b)), tf.reshape(k, b));
    if (v.beta) y = tf.add(y, tf.reshape(v.beta, b));
    return y;
  });
}

/** A training step: y, the moving statistics through `v.update`, and the gradient of x, γ and β. */
export function trainWithOps(s: TrainSpec, x: tf.Tensor, v: StepVariables): tf.Tensor {
  const G = s.ghosts;
  // Ghost batches as a leading axis: [G, N/G, ...]; each is normalised over all but its channel axis.
  const gshape = [G, s.shape[0] / G, ...s.shape.slice(1)];
  const rank = gshape.length;
  const caxis = channelAxis(s, s.shape.length) + 1;
  const axes = [...Array(rank).keys()].filter((a) => a !== 0 && a !== caxis);
  const bshape = channelShape(rank, caxis, s.C);
  const perChannel = (t: tf.Tensor) => tf.reshape(t, bshape);
  const inputs = [x, ...(v.gamma ? [v.gamma] : []), ...(v.beta ? [v.beta] : [])];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const { save, xt, gamma, beta } = opArgs(args, v);
    const xg = tf.reshape(xt, gshape);
    const { mean, variance } = tf.moments(xg, axes, true);
    const invstd = tf.rsqrt(tf.add(variance, s.eps));
    const xhat = tf.mul(tf.sub(xg, mean), invstd);
    let r: tf.Tensor | null = null;
    let yhat = xhat;
    if (s.renorm) {
      const { rmax, dmax, rmin } = s.renorm;
      const sigma = perChannel(tf.sqrt(tf.add(v.movingVariance, s.eps)));
      r = tf.clipByValue(tf.div(tf.sqrt(tf.add(variance, s.eps)), sigma), rmin ?? 1 / rmax, rmax);
      const d = tf.clipByValue(tf.div(tf.sub(mean, perChannel(v.movingMean)), sigma), -dmax, dmax);
      yhat = tf.add(tf.mul(xhat, r), d);
    }
    let y = yhat;
    if (gamma) y = tf.mul(y, perChannel(gamma));
    if (beta) y = tf.add(y, perChannel(beta));
    // Moving statistics from the ghosts' means (stock's update form), kept where not finite.
    const batchMean = tf.reshape(tf.mean(mean, 0), [s.C]);
    const batchVar = tf.reshape(tf.mean(variance, 0), [s.C]);
    const finite = tf.logicalAnd(tf.isFinite(batchMean), tf.isFinite(batchVar));
    const moved = (old: tf.Tensor, stat: tf.Tensor) =>
      tf.where(finite, tf.sub(old, tf.mul(tf.sub(old, stat), s.factor)), old);
    v.update(moved(v.movingMean, batchMean), moved(v.movingVariance, batchVar));
    save([xhat, invstd, yhat, ...(r ? [r] : []), ...(gamma ? [gamma] : [])]);
    return {
      value: tf.reshape(y, s.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxhat, sinvstd, syhat, ...more] = saved;
        const sr = s.renorm ? more.shift()! : null;
        const sgamma = v.gamma ? more.shift()! : null;
        const dyg = tf.reshape(dy, gshape);
        // The gradient reaching x̂ (r is a constant), then through the batch mean and variance.
        let g = dyg;
        if (sgamma) g = tf.mul(g, perChannel(sgamma));
        if (sr) g = tf.mul(g, sr);
        const dxg = tf.mul(
          sinvstd,
          tf.sub(tf.sub(g, tf.mean(g, axes, true)), tf.mul(sxhat, tf.mean(tf.mul(g, sxhat), axes, true))),
        );
        const sumAll = (t: tf.Tensor) => tf.reshape(tf.sum(t, [0, ...axes]), [s.C]);
        return [
          tf.reshape(dxg, s.shape),
          ...(v.gamma ? [sumAll(tf.mul(dyg, syhat))] : []),
          ...(v.beta ? [sumAll(dyg)] : []),
        ];
      },
    };
  });
  return op(...inputs);
}
