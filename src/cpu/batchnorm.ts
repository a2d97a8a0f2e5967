/**
 * `CpuBatchNorm`: the module semantics of `BatchNorm` in float64 on the CPU. It is the reference for
 * every GPU test and for the conformance runner, and usable on its own.
 */
import { roundHalf } from './f16';
import { ShapeError } from '../errors';
import type { Geometry, Layout } from '../layout';
import { BatchNormBase, type StateDict, type StepPlan } from '../moduleBase';
import type { BatchNormOptions, RenormClip } from '../options';
import * as ref from './reference';

interface Saved {
  geom: Geometry;
  batchStats: boolean;
  k: ref.Coefficients;
}

export class CpuBatchNorm extends BatchNormBase {
  weight: Float64Array;
  bias: Float64Array;
  runningMean: Float64Array;
  /** running_var, or running_std (sigma) for Batch Renorm. */
  runningSpread: Float64Array;
  private saved: Saved | null = null;

  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super(numFeatures, options);
    const C = numFeatures;
    this.weight = new Float64Array(C).fill(1);
    this.bias = new Float64Array(C);
    this.runningMean = new Float64Array(C);
    this.runningSpread = new Float64Array(C).fill(1);
  }

  private checkLength(name: string, a: ArrayLike<number>, g: Geometry): void {
    if (!a || a.length !== g.count) {
      throw new ShapeError(`${name} has ${a?.length} values but shape ${JSON.stringify(g.shape)} needs ${g.count}`);
    }
  }

  /** With dtype 'float16', tensors pass through float16 where the GPU stores them: inputs and outputs. */
  private storage(a: ArrayLike<number>): ArrayLike<number> {
    return this.options.dtype === 'float16' ? Float64Array.from(a, roundHalf) : a;
  }

  forward(input: ArrayLike<number>, shape: readonly number[], layout: Layout = 'NCHW'): Float64Array {
    const plan: StepPlan = this.plan(layout, shape);
    this.checkLength('x', input, plan.geom);
    const x = this.storage(input);
    const o = this.options;
    let k: ref.Coefficients;
    if (plan.batchStats) {
      const s = ref.batchStats(x, plan.geom);
      const renorm = plan.clip ? { clip: plan.clip, mu: this.runningMean, sigma: this.runningSpread } : null;
      k = ref.trainCoefficients(s, this.weight, this.bias, o.eps, renorm);
      if (plan.updateRunning) {
        ref.updateRunning(s, plan.geom.M, plan.factor, o.unbiased, o.eps, this.runningMean, this.runningSpread, this.isRenorm);
      }
    } else {
      k = ref.evalCoefficients(this.runningMean, this.runningSpread, this.weight, this.bias, o.eps, this.isRenorm);
    }
    this.saved = { geom: plan.geom, batchStats: plan.batchStats, k };
    this.commit(plan);
    const y = ref.applyCoefficients(x, plan.geom, k);
    return this.options.dtype === 'float16' ? y.map(roundHalf) : y;
  }

  /** Gradients of the last forward call; x must be that call's input. */
  backward(x: ArrayLike<number>, dy: ArrayLike<number>): ref.Gradients {
    const s = this.saved;
    if (!s) throw new ShapeError('backward needs a forward call first; call forward(x, shape) on the same input');
    this.checkLength('x', x, s.geom);
    this.checkLength('dy', dy, s.geom);
    const g = ref.backward(this.storage(x), this.storage(dy), s.geom, s.k, this.weight, s.batchStats);
    if (this.options.dtype === 'float16') g.dx = g.dx.map(roundHalf);
    if (!this.options.affine) {
      g.dgamma.fill(0);
      g.dbeta.fill(0);
    }
    return g;
  }

  /** r and d of the last training step of a Batch Renorm module (1 and 0 otherwise). */
  lastCorrection(): { r: Float64Array; d: Float64Array } | null {
    return this.saved ? { r: Float64Array.from(this.saved.k.r), d: Float64Array.from(this.saved.k.d) } : null;
  }

  currentClip(): RenormClip | null {
    const s = this.renormSettings();
    return this.isRenorm ? { rmax: s.renorm_rmax, dmax: s.renorm_dmax } : null;
  }

  stateDict(): Record<string, Float64Array | number> {
    const out: Record<string, Float64Array | number> = {};
    if (this.options.affine) {
      out.weight = Float64Array.from(this.weight);
      out.bias = Float64Array.from(this.bias);
    }
    if (this.options.trackRunningStats) {
      out.running_mean = Float64Array.from(this.runningMean);
      out[this.spreadKey] = Float64Array.from(this.runningSpread);
      out.num_batches_tracked = this.numBatchesTracked;
    }
    return Object.assign(out, this.renormSettings());
  }

  loadStateDict(sd: StateDict): void {
    const p = this.parseStateDict(sd);
    if (p.weight) this.weight = p.weight;
    if (p.bias) this.bias = p.bias;
    if (p.runningMean) this.runningMean = p.runningMean;
    if (p.runningSpread) this.runningSpread = p.runningSpread;
    if (p.numBatchesTracked !== undefined) this.numBatchesTracked = p.numBatchesTracked;
  }
}
