/**
 * Training on TF.js's WebGPU backend with the library's kernels: the forward and backward plans of
 * one layer, encoded into TF.js's own command encoder on the buffers of TF.js's tensors (bound at
 * encode time: TF.js pools and rotates them). No copy of x, y, dy or dx is made and nothing is
 * submitted; the moving statistics are written out of place into new tensors that the layer's
 * variables take over.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Layout } from '../layout.js';
import type { RenormClip } from '../options.js';
import { planBackward, planForwardTrain } from '../plan/plans.js';
import { statsByteLength, type BackwardTensors, type ForwardTrainTensors } from '../plan/params.js';
import { type PassPlan } from '../plan/pass.js';
import { bufferOf, flush, newTensor, recordInto, type WebGpuBackend } from './internals.js';

/** What a training step of the layer computes, resolved from its config and the input's shape. */
export interface TrainSpec {
  shape: number[];
  layout: Layout;
  C: number;
  eps: number;
  /** Weight of the batch statistic in the moving averages: 1 - Keras's momentum. */
  factor: number;
  renorm: RenormClip | null;
  /** Ghost batches (1 without virtualBatchSize). */
  ghosts: number;
  scale: boolean;
  center: boolean;
}

/** The variables one step reads, and how it stores the new moving statistics. */
export interface StepVariables {
  gamma: tf.Tensor | null;
  beta: tf.Tensor | null;
  movingMean: tf.Tensor;
  movingVariance: tf.Tensor;
  /** Hands the new moving statistics to the layer's variables (they take over the tensors). */
  update(mean: tf.Tensor, variance: tf.Tensor): void;
}

/** A customGrad op's arguments: x, then γ and β where the layer has them, then the save function. */
export function opArgs(args: (tf.Tensor | tf.GradSaveFunc)[], v: StepVariables) {
  const save = args[args.length - 1] as tf.GradSaveFunc;
  const [xt, ...rest] = args.slice(0, -1) as tf.Tensor[];
  return { save, xt, gamma: v.gamma ? rest.shift()! : null, beta: v.beta ? rest.shift()! : null };
}

/** Plans kept per layer (one per input shape); the oldest is destroyed past this. */
const PLANS_PER_LAYER = 8;

interface Plans {
  forward: PassPlan<ForwardTrainTensors> | null;
  backward: PassPlan<BackwardTensors> | null;
}

/** One layer's plans and constant buffers on one WebGPU backend. */
export class GpuTrainer {
  private readonly plans = new Map<string, Plans>();
  /** γ = 1 and β = 0 for scale/center false, and where their unused gradients go. */
  private readonly constants = new Map<string, GPUBuffer>();

  constructor(
    readonly be: WebGpuBackend,
    private readonly label: string,
  ) {}

  /** The constant C-float buffer `what` (made on first use). */
  private constant(what: 'ones' | 'zeros' | 'dgamma' | 'dbeta', C: number): GPUBuffer {
    const key = `${what}:${C}`;
    let b = this.constants.get(key);
    if (!b) {
      b = this.be.device.createBuffer({
        label: `${this.label}.${what}`,
        size: C * 4,
        usage: GPUBufferUsage.STORAGE,
        mappedAtCreation: true,
      });
      if (what === 'ones') new Float32Array(b.getMappedRange()).fill(1);
      b.unmap();
      this.constants.set(key, b);
    }
    return b;
  }

  private plansFor(s: TrainSpec): Plans {
    const key = `${s.layout}:${s.shape.join('x')}`;
    let p = this.plans.get(key);
    if (p) this.plans.delete(key);
    else {
      if (this.plans.size >= PLANS_PER_LAYER) {
        const [oldest, q] = this.plans.entries().next().value!;
        this.plans.delete(oldest);
        this.destroyPlans([q]);
      }
      p = { forward: null, backward: null };
    }
    this.plans.set(key, p);
    return p;
  }

  /** Destroys plans, after submitting what TF.js has recorded (it may use them). */
  private destroyPlans(list: Plans[]): void {
    flush(this.be);
    for (const p of list) {
      p.forward?.destroy();
      p.backward?.destroy();
    }
  }

  /**
   * The layer's training forward of x as a TF.js op whose gradient runs the library's backward:
   * returns y, and hands the new moving statistics to `v.update`.
   */
  train(s: TrainSpec, x: tf.Tensor, v: StepVariables): tf.Tensor {
    const be = this.be;
    const plans = this.plansFor(s);
    const params = s.scale || s.center;
    const inputs = [x, ...(v.gamma ? [v.gamma] : []), ...(v.beta ? [v.beta] : [])];
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const { save, xt, gamma, beta } = opArgs(args, v);
      const y = newTensor(be, s.shape);
      const stats = newTensor(be, [(statsByteLength(s.C) / 4) * s.ghosts]);
      const mean = newTensor(be, [s.C]);
      const variance = newTensor(be, [s.C]);
      const read = [xt, gamma, beta, v.movingMean, v.movingVariance].map((t) => t && this.buffer(t));
      const [xb, gb, bb, mb, vb] = read;
      const tensors = {
        x: xb!,
        y: y.buffer,
        stats: stats.buffer,
        runningMean: mb!,
        runningVar: vb!,
        runningMeanOut: mean.buffer,
        runningVarOut: variance.buffer,
        ...(params ? { weight: gb ?? this.constant('ones', s.C), bias: bb ?? this.constant('zeros', s.C) } : {}),
      } satisfies ForwardTrainTensors;
      plans.forward ??= planForwardTrain(be.device, {
        shape: s.shape,
        layout: s.layout,
        ...tensors,
        eps: s.eps,
        momentum: s.factor,
        unbiased: false,
        ...(s.renorm ? { renorm: s.renorm, runningIsStd: false } : {}),
        ...(s.ghosts > 1 ? { virtualBatchSize: s.shape[0] / s.ghosts } : {}),
      });
      const f = plans.forward;
      const used = [xt, y.tensor, stats.tensor, mean.tensor, variance.tensor, v.movingMean, v.movingVariance];
      recordInto(be, [...used, ...[gamma, beta].filter((t) => t !== null)], (enc) => f.encode(enc, tensors));
      v.update(mean.tensor, variance.tensor);
      save([xt, stats.tensor, ...(gamma ? [gamma] : [])]);
      return {
        value: y.tensor,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, st, gs] = saved;
          const dx = newTensor(be, s.shape);
          const dgamma = v.gamma ? newTensor(be, [s.C]) : null;
          const dbeta = v.beta ? newTensor(be, [s.C]) : null;
          const bt = {
            x: this.buffer(xs),
            dy: this.buffer(dy),
            dx: dx.buffer,
            stats: this.buffer(st),
            ...(params
              ? {
                  weight: gs ? this.buffer(gs) : this.constant('ones', s.C),
                  weightGrad: dgamma?.buffer ?? this.constant('dgamma', s.C),
                  biasGrad: dbeta?.buffer ?? this.constant('dbeta', s.C),
                }
              : {}),
          } satisfies BackwardTensors;
          plans.backward ??= planBackward(be.device, {
            shape: s.shape,
            layout: s.layout,
            ...bt,
            ...(s.ghosts > 1 ? { virtualBatchSize: s.shape[0] / s.ghosts } : {}),
          });
          const b = plans.backward;
          const outs = [dx, dgamma, dbeta].filter((o) => o !== null).map((o) => o.tensor);
          recordInto(be, [xs, dy, st, ...(gs ? [gs] : []), ...outs], (enc) => b.encode(enc, bt));
          return outs;
        },
      };
    });
    return op(...inputs);
  }

  private buffer(t: tf.Tensor): GPUBuffer {
    const b = bufferOf(this.be, t);
    if (!b) throw new Error(`${this.label}: a tensor of this step is not on the webgpu backend`);
    return b;
  }

  /** Frees the plans and constants (after submitting TF.js's pending work, which may use them). */
  destroy(): void {
    this.destroyPlans([...this.plans.values()]);
    this.plans.clear();
    for (const b of this.constants.values()) b.destroy();
    this.constants.clear();
  }
}
