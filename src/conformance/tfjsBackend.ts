/**
 * The conformance backends of TF.js layers: the bridge's BatchNormalization ('tfjs') or TF.js's own
 * ('tfjs-stock'), on whichever TF.js backend is active. The TF.js modules come from the caller, so
 * this entry imports no TF.js.
 *
 * A Keras-convention layer expresses the vectors' PyTorch cases this way:
 * - momentum m (weight of the new statistic) is Keras's 1 - m; affine false is center and scale
 *   false; renorm (rmax, dmax) is renormClipping { rmax, rmin: 1/rmax, dmax }; virtual_batch_size
 *   is virtualBatchSize; NCHW is axis 1, NHWC axis -1;
 * - the layer stores the biased batch variance in its moving average (and a variance, not sigma,
 *   under renorm); after a training step the running_var or running_std the vectors expect is
 *   recovered exactly from the old and new moving variance, the step's factor and its count;
 * - not expressible, and skipped with the reason: synchronized shards, per-activation statistics,
 *   fused epilogues, a cumulative momentum, and refusals the vectors expect of the library's API;
 *   a case's steps run up to the first step after a training step that reads the moving variance
 *   (an eval step, or renorm's correction), since Keras's moving variance is not PyTorch's.
 */
import type * as TF from '@tensorflow/tfjs-core';
import type { Layout } from '../layout.js';
import type { StateDictInput } from '../validate/state.js';
import type { BatchNormOptions } from '../options.js';
import { OptionError } from '../errors.js';
import type { GoldenCase } from './golden.js';
import type { ConformanceBackend, ConformanceModule, Grads } from './runner.js';

/** A TF.js layer: what a BatchNormalization built with `args` offers. */
interface TfLayer {
  build(shape: number[]): void;
  apply(x: TF.Tensor, kwargs: { training: boolean }): unknown;
  getWeights(): TF.Tensor[];
  setWeights(w: TF.Tensor[]): void;
  readonly trainableWeights: { read(): TF.Tensor }[];
}

export interface TfjsConformanceEnv {
  tf: typeof TF;
  /** Makes the layer under test from Keras-convention args (the bridge's, or TF.js's own). */
  layer: (args: Record<string, unknown>) => TfLayer;
  name: 'tfjs' | 'tfjs-stock';
  adapter: Record<string, unknown>;
}

/** f32 in TF.js's kernels, and the running statistics recovered through a division by the factor. */
export const TFJS_TOLERANCE = 2e-5;

/** Why a Keras-convention layer cannot express case `c`, or null. */
export function notExpressible(c: GoldenCase): string | null {
  if (c.shards) return 'synchronized batch norm across shards';
  if (c.per_activation) return 'per-activation statistics (a list of axes)';
  if (c.epilogue) return 'a fused epilogue';
  if (c.momentum === null) return 'a cumulative average (momentum null)';
  if (c.expect_error || c.steps.some((s) => s.expect_error)) return "a refusal of the library's own API";
  return null;
}

/**
 * The leading steps of `c` a Keras-convention layer expresses: up to the first step after a
 * training step that reads the moving variance (an eval step, or renorm's correction).
 */
export function expressibleSteps(c: GoldenCase): { steps: number; why: string } {
  const first = c.steps.findIndex((s) => s.training);
  const stop = c.steps.findIndex((s, i) => first >= 0 && i > first && (!s.training || c.op === 'batch_renorm'));
  return stop < 0
    ? { steps: c.steps.length, why: '' }
    : { steps: stop, why: 'later steps read the moving variance, which Keras stores biased and PyTorch unbiased' };
}

export function tfjsBackend(env: TfjsConformanceEnv): ConformanceBackend {
  const { tf } = env;
  return {
    name: env.name,
    adapter: env.adapter,
    tolerance: TFJS_TOLERANCE,
    notExpressible,
    expressibleSteps,
    unobservable: ['r', 'd'],
    async createModule(C: number, o: BatchNormOptions) {
      if (o.renorm && (typeof o.renorm !== 'object' || o.renorm.schedule !== undefined))
        throw new OptionError('a renorm schedule has no Keras counterpart');
      const renorm = typeof o.renorm === 'object' ? { rmax: o.renorm.rmax ?? 3, dmax: o.renorm.dmax ?? 5 } : null;
      const factor = o.momentum ?? 0.1;
      const affine = o.affine ?? true;
      const eps = o.eps ?? 1e-3;
      const state = {
        gamma: new Float64Array(C).fill(1),
        beta: new Float64Array(C),
        mean: new Float64Array(C),
        /** What the layer stores: a moving variance, also under renorm. */
        variance: new Float64Array(C).fill(1),
        /** running_var or running_std as PyTorch's convention has it after the last step. */
        spread: new Float64Array(C).fill(1),
      };
      let training = true;
      let layer: TfLayer | null = null;
      let last: { x: TF.Tensor; shape: number[]; before: typeof state } | null = null;
      const vec = (a: Float64Array) => tf.tensor1d(Float32Array.from(a));
      const load = (l: TfLayer, s: typeof state) =>
        l.setWeights([...(affine ? [vec(s.gamma), vec(s.beta)] : []), vec(s.mean), vec(s.variance)]);
      const make = (layout: Layout, shape: number[]) => {
        const l = env.layer({
          axis: layout === 'NCHW' ? 1 : -1,
          momentum: 1 - factor,
          epsilon: eps,
          center: affine,
          scale: affine,
          ...(renorm
            ? { renorm: true, renormClipping: { rmax: renorm.rmax, rmin: 1 / renorm.rmax, dmax: renorm.dmax } }
            : {}),
          ...(o.virtualBatchSize ? { virtualBatchSize: o.virtualBatchSize } : {}),
        });
        l.build(shape);
        return l;
      };
      const copy = (s: typeof state) =>
        Object.fromEntries(Object.entries(s).map(([k, v]) => [k, Float64Array.from(v)])) as typeof state;
      const m: ConformanceModule = {
        train: (mode) => {
          training = mode;
        },
        loadStateDict: async (sd: StateDictInput) => {
          const f = (a: ArrayLike<number> | undefined, into: Float64Array) => a && into.set(Array.from(a));
          f(sd.weight, state.gamma);
          f(sd.bias, state.beta);
          f(sd.running_mean, state.mean);
          if (sd.running_std) {
            f(sd.running_std, state.spread);
            state.variance.set(state.spread.map((s) => s * s - eps));
          } else {
            f(sd.running_var, state.spread);
            state.variance.set(state.spread);
          }
        },
        forward: async (x, shape, layout) => {
          layer ??= make(layout, shape);
          load(layer, state);
          const before = copy(state);
          const xt = tf.tensor(Float32Array.from(x), shape);
          const y = tf.tidy(() => layer!.apply(xt, { training }) as TF.Tensor);
          const out = Float64Array.from(await y.data());
          y.dispose();
          if (training) {
            const w = layer.getWeights();
            state.mean.set(await w[w.length - 2].data());
            state.variance.set(await w[w.length - 1].data());
            // The PyTorch-convention spread from the layer's update v' = (1 - f)·v + f·b.
            const G = o.virtualBatchSize ? shape[0] / o.virtualBatchSize : 1;
            const Mg = x.length / C / G;
            for (let c = 0; c < C; c++) {
              // A channel whose batch statistics were not finite kept its moving values.
              if (state.variance[c] === before.variance[c] && state.mean[c] === before.mean[c]) continue;
              const b = (state.variance[c] - (1 - factor) * before.variance[c]) / factor;
              const stat = renorm ? Math.sqrt(b + eps) : (b * Mg) / (Mg - 1);
              state.spread[c] = (1 - factor) * before.spread[c] + factor * stat;
            }
          }
          last?.x.dispose();
          last = { x: xt, shape, before };
          return out;
        },
        // Re-runs the last forward from the state before it, under the tape, seeded with dy.
        backward: async (_x, dy): Promise<Grads> => {
          if (!last || !layer) throw new OptionError('backward needs a forward first');
          const l = layer;
          const after = copy(state);
          load(l, last.before);
          const vars = affine ? l.trainableWeights.map((w) => w.read()) : [];
          const dyt = tf.tensor(Float32Array.from(dy), last.shape);
          const g = tf.grads((a: TF.Tensor) => l.apply(a, { training }) as TF.Tensor)([last.x, ...vars], dyt);
          const [dx, dgamma, dbeta] = await Promise.all(g.map((t) => t.data()));
          tf.dispose([...g, dyt]);
          Object.assign(state, after);
          return {
            dx: Float64Array.from(dx),
            dgamma: affine ? Float64Array.from(dgamma) : new Float64Array(C),
            dbeta: affine ? Float64Array.from(dbeta) : new Float64Array(C),
          };
        },
        forwardSync: () => Promise.reject(new OptionError('synchronized batch norm is not expressible in TF.js')),
        backwardSync: () => Promise.reject(new OptionError('synchronized batch norm is not expressible in TF.js')),
        runningStats: async () => ({
          running_mean: Float64Array.from(state.mean),
          [renorm ? 'running_std' : 'running_var']: Float64Array.from(state.spread),
        }),
        correction: async () => null,
        stateDict: async () => ({}),
        destroy: () => last?.x.dispose(),
      };
      return m;
    },
  };
}
