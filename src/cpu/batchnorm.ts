/**
 * `CpuBatchNorm`: the module semantics of `BatchNorm` in float64 on the CPU. It is the reference for
 * every GPU test and for the conformance runner, and usable on its own.
 */
import { roundHalf } from './f16.js';
import { BufferError, CallOrderError, OptionError, ShapeError } from '../errors.js';
import { geometry, type Geometry, type Layout } from '../layout.js';
import { BatchNormBase, type StateDict, type StateDictInput } from '../moduleBase.js';
import { describe, type BatchNormOptions, type RenormClip } from '../options.js';
import * as ref from './reference.js';

interface Saved {
  /** The view of one ghost batch (the whole tensor without ghosts), and of the whole tensor. */
  geom: Geometry;
  whole: Geometry;
  batchStats: boolean;
  /** Coefficients per ghost batch, in order. */
  k: ref.Coefficients[];
  /** The output, kept under an epilogue for the relu's mask. */
  y: Float64Array | null;
}

/** Consecutive blocks of `a`, one per ghost batch. */
const blocks = (a: ArrayLike<number>, n: number): ArrayLike<number>[] =>
  Array.from({ length: n }, (_, i) => Array.prototype.slice.call(a, (i * a.length) / n, ((i + 1) * a.length) / n));

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

  private checkLength(name: string, a: unknown, g: Geometry): ArrayLike<number> {
    const ok = Array.isArray(a) || (ArrayBuffer.isView(a) && !(a instanceof DataView));
    if (!ok) throw new ShapeError(`${name} must be an array or typed array of ${g.count} numbers; got ${describe(a)}`);
    const v = a as ArrayLike<number>;
    if (v.length !== g.count)
      throw new ShapeError(`${name} has ${v.length} values but shape ${JSON.stringify(g.shape)} needs ${g.count}`);
    return v;
  }

  /** With dtype 'float16', tensors pass through float16 where the GPU stores them: inputs and outputs. */
  private storage(a: ArrayLike<number>): ArrayLike<number> {
    return this.options.dtype === 'float16' ? Float64Array.from(a, roundHalf) : a;
  }

  /**
   * Normalises `input`; `layout` is required for rank 3 to 5, as on the GPU; `z` is the residual
   * of epilogue 'add_relu'.
   */
  forward(input: ArrayLike<number>, shape: readonly number[], layout?: Layout, z?: ArrayLike<number>): Float64Array {
    const plan = this.stepPlan(layout, shape);
    const x = this.storage(this.checkLength('x', input, plan.geom));
    const o = this.options;
    if (o.epilogue === 'add_relu' && z === undefined)
      throw new BufferError('E_BUFFER_MISSING', "z is required: epilogue 'add_relu' adds it before the relu");
    if (o.epilogue !== 'add_relu' && z !== undefined)
      throw new OptionError(
        `z is the residual of epilogue 'add_relu'; this module's epilogue is ${o.epilogue ?? 'none'}`,
      );
    const zs = z === undefined ? null : this.storage(this.checkLength('z', z, plan.geom));
    const G = plan.ghosts;
    // One ghost batch's view: N / G samples of the same layout (the whole tensor when G = 1).
    const geom = G > 1 ? geometry(plan.geom.layout, [plan.geom.shape[0] / G, ...plan.geom.shape.slice(1)]) : plan.geom;
    const xs = blocks(x, G);
    let k: ref.Coefficients[];
    if (plan.batchStats) {
      const clip = plan.updateRunning ? this.stepClip() : null;
      const s = xs.map((xg) => ref.batchStats(xg, geom));
      const renorm = clip ? { clip, mu: this.runningMean, sigma: this.runningSpread } : null;
      k = s.map((sg) => ref.trainCoefficients(sg, this.weight, this.bias, o.eps, renorm));
      if (plan.updateRunning) {
        ref.updateRunning(
          s,
          geom.M,
          this.stepFactor(),
          o.unbiased,
          o.eps,
          this.runningMean,
          this.runningSpread,
          this.isRenorm,
        );
        this.steps += 1;
      }
    } else {
      k = [ref.evalCoefficients(this.runningMean, this.runningSpread, this.weight, this.bias, o.eps, this.isRenorm)];
    }
    const bn = new Float64Array(plan.geom.count);
    xs.forEach((xg, i) => bn.set(ref.applyCoefficients(xg, geom, k[i]), i * geom.count));
    const y = o.epilogue ? ref.applyEpilogue(bn, o.epilogue, zs) : bn;
    const stored = o.dtype === 'float16' ? y.map(roundHalf) : y;
    this.saved = { geom, whole: plan.geom, batchStats: plan.batchStats, k, y: o.epilogue ? stored : null };
    return stored;
  }

  /**
   * Gradients of the last forward call; x must be that call's input. Under an epilogue dy passes
   * where that call's output was positive, and 'add_relu' also returns dz.
   */
  backward(x: ArrayLike<number>, dy: ArrayLike<number>): ref.Gradients & { dz?: Float64Array } {
    const s = this.saved;
    if (!s)
      throw new CallOrderError(
        'E_NO_FORWARD',
        'backward needs a forward call first; call forward(x, shape) on the same input',
      );
    const whole = s.whole;
    const dys = this.storage(this.checkLength('dy', dy, whole));
    const up = s.y ? ref.reluGradient(dys, s.y) : dys;
    const xs = blocks(this.storage(this.checkLength('x', x, whole)), s.k.length);
    const ups = blocks(up, s.k.length);
    const C = this.numFeatures;
    const g: ref.Gradients & { dz?: Float64Array } = {
      dx: new Float64Array(whole.count),
      dgamma: new Float64Array(C),
      dbeta: new Float64Array(C),
    };
    s.k.forEach((k, i) => {
      const gi = ref.backward(xs[i], ups[i], s.geom, k, this.weight, s.batchStats);
      g.dx.set(gi.dx, i * s.geom.count);
      for (let c = 0; c < C; c++) {
        g.dgamma[c] += gi.dgamma[c];
        g.dbeta[c] += gi.dbeta[c];
      }
    });
    if (this.options.epilogue === 'add_relu') g.dz = Float64Array.from(up);
    if (this.options.dtype === 'float16') {
      g.dx = g.dx.map(roundHalf);
      if (g.dz) g.dz = g.dz.map(roundHalf);
    }
    if (!this.options.affine) {
      g.dgamma.fill(0);
      g.dbeta.fill(0);
    }
    return g;
  }

  /** r and d of the last training step of a Batch Renorm module (1 and 0 otherwise). */
  lastCorrection(): { r: Float64Array; d: Float64Array } | null {
    if (!this.saved) return null;
    const { k } = this.saved;
    return {
      r: Float64Array.from(k.flatMap((g) => Array.from(g.r))),
      d: Float64Array.from(k.flatMap((g) => Array.from(g.d))),
    };
  }

  /** The renorm clip of the next training step (null for plain batch norm). */
  currentClip(): RenormClip | null {
    return this.stepClip();
  }

  stateDict(): StateDict<Float64Array> {
    const out: StateDict<Float64Array> = {};
    if (this.options.affine) {
      out.weight = Float64Array.from(this.weight);
      out.bias = Float64Array.from(this.bias);
    }
    if (this.options.trackRunningStats) {
      out.running_mean = Float64Array.from(this.runningMean);
      out[this.spreadKey] = Float64Array.from(this.runningSpread);
      out.num_batches_tracked = this.numBatchesTracked;
    }
    return Object.assign(out, this.renormSettings(this.steps));
  }

  loadStateDict(sd: StateDictInput): void {
    const p = this.parseStateDict(sd);
    if (p.weight) this.weight = p.weight;
    if (p.bias) this.bias = p.bias;
    if (p.runningMean) this.runningMean = p.runningMean;
    if (p.runningSpread) this.runningSpread = p.runningSpread;
    if (p.numBatchesTracked !== undefined) this.steps = p.numBatchesTracked;
  }
}
