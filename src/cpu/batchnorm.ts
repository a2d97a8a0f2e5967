/**
 * `CpuBatchNorm`: the module semantics of `BatchNorm` in float64 on the CPU. It is the reference for
 * every GPU test and for the conformance runner, and usable on its own.
 */
import { roundHalf } from '../f16.js';
import { BatchSizeError, BufferError, CallOrderError, OptionError, ShapeError } from '../errors.js';
import { geometry, type Geometry, type Layout, type StorageType } from '../layout.js';
import { ModuleBase } from '../module/base.js';
import type { BatchNormOptions, RenormClip } from '../options.js';
import { mergeGradSums, mergeStats, type ShardGradSums, type ShardStats } from '../sync.js';
import { checkObject, describe } from '../validate/args.js';
import type { StateDict, StateDictInput } from '../validate/state.js';
import { checkMerged, checkSyncBatch } from '../validate/sync.js';
import * as ref from './reference.js';
import { clipOf, featureView, ghostSplit, renormSettings, sigmaOf, stepFactor, syncCount } from './rules.js';

/** What one forward step does, decided before any state is touched. */
interface StepPlan {
  readonly geom: Geometry;
  /** Ghost batches the batch statistics are taken over (1 without virtualBatchSize or in inference). */
  readonly ghosts: number;
  /** Normalise with batch statistics (training, or trackRunningStats false). */
  readonly batchStats: boolean;
  /** Update running statistics (training with trackRunningStats). */
  readonly updateRunning: boolean;
}

interface Saved {
  /** The view of one ghost batch (the whole tensor without ghosts), and of the whole tensor. */
  geom: Geometry;
  whole: Geometry;
  batchStats: boolean;
  /** Coefficients per ghost batch, in order. */
  k: ref.Coefficients[];
  /** The output, kept under an epilogue for the relu's mask. */
  y: Float64Array | null;
  /** A synchronized forward's whole-batch value count per channel (null otherwise). */
  syncM: number | null;
}

/**
 * What backward returns: dx, dγ and dβ as weightGrad and biasGrad (the names of the GPU module's
 * buffers and the functional parameters), and dz under epilogue 'add_relu'.
 */
export interface CpuGradients {
  dx: Float64Array;
  weightGrad: Float64Array;
  biasGrad: Float64Array;
  dz?: Float64Array;
  /** @deprecated The same array as weightGrad. */
  dgamma: Float64Array;
  /** @deprecated The same array as biasGrad. */
  dbeta: Float64Array;
}

/** Consecutive blocks of `a`, one per ghost batch. */
const blocks = (a: ArrayLike<number>, n: number): ArrayLike<number>[] =>
  Array.from({ length: n }, (_, i) => Array.prototype.slice.call(a, (i * a.length) / n, ((i + 1) * a.length) / n));

export class CpuBatchNorm extends ModuleBase {
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

  /** The view a step's statistics are taken on, checked against the module's features. */
  private features(g: Geometry): Geometry {
    this.checkFeatures(g);
    return featureView(g, this.options.perActivation);
  }

  /** Validates a forward call's shape and decides what it does; throws before anything changes. */
  private stepPlan(
    layout: Layout | undefined,
    shape: readonly number[],
    dtype: StorageType = 'f32',
    syncM?: number,
  ): StepPlan {
    const geom = this.features(geometry(layout, shape, dtype));
    const o = this.options;
    const batchStats = this.mode || !o.trackRunningStats;
    // Inference normalises with running statistics: no ghosts, any N.
    const ghosts = batchStats ? ghostSplit(geom, o.virtualBatchSize) : 1;
    const M = syncM ?? geom.M / ghosts;
    if (batchStats && M < 2)
      throw new BatchSizeError(
        `training needs more than one value per channel; shape ${JSON.stringify(shape)} gives M = ${M} per channel${syncM ? ' over the whole batch' : ghosts > 1 ? ' in each ghost batch' : ''}. Use a larger batch${ghosts > 1 ? ' or virtualBatchSize' : ''}, or eval() mode.`,
      );
    return { geom, ghosts, batchStats, updateRunning: this.mode && o.trackRunningStats };
  }

  /** The renorm clip of the next training step (null for plain batch norm). */
  private stepClip(): RenormClip | null {
    return this.options.renorm ? clipOf(this.options.renorm, this.steps) : null;
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
    const zs = this.residual(z, plan.geom);
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
          stepFactor(this.options, this.steps + 1),
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
    return this.finish(x, geom, plan.geom, k, plan.batchStats, zs, null);
  }

  /** The residual z of epilogue 'add_relu' (required there, refused elsewhere), as stored. */
  private residual(z: ArrayLike<number> | undefined, g: Geometry): ArrayLike<number> | null {
    const e = this.options.epilogue;
    if (e === 'add_relu' && z === undefined)
      throw new BufferError('E_BUFFER_MISSING', "z is required: epilogue 'add_relu' adds it before the relu");
    if (e !== 'add_relu' && z !== undefined)
      throw new OptionError(`z is the residual of epilogue 'add_relu'; this module's epilogue is ${e ?? 'none'}`);
    return z === undefined ? null : this.storage(this.checkLength('z', z, g));
  }

  /**
   * y from x with each ghost's coefficients (`geom` is one ghost's view of `whole`), through the
   * epilogue and the storage type; saves what backward needs.
   */
  private finish(
    x: ArrayLike<number>,
    geom: Geometry,
    whole: Geometry,
    k: ref.Coefficients[],
    batchStats: boolean,
    zs: ArrayLike<number> | null,
    syncM: number | null,
  ): Float64Array {
    const o = this.options;
    const bn = new Float64Array(whole.count);
    blocks(x, k.length).forEach((xg, i) => bn.set(ref.applyCoefficients(xg, geom, k[i]), i * geom.count));
    const y = o.epilogue ? ref.applyEpilogue(bn, o.epilogue, zs) : bn;
    const stored = o.dtype === 'float16' ? y.map(roundHalf) : y;
    this.saved = { geom, whole, batchStats, k, y: o.epilogue ? stored : null, syncM };
    return stored;
  }

  /** The upstream gradient of bn's output: dy as stored, through the relu mask under an epilogue. */
  private upstream(dy: ArrayLike<number>, s: Saved): ArrayLike<number> {
    const dys = this.storage(this.checkLength('dy', dy, s.whole));
    return s.y ? ref.reluGradient(dys, s.y) : dys;
  }

  /** The gradients as the module returns them: dz for add_relu, the storage type, no dγ/dβ without affine. */
  private gradients(g: ref.Gradients & { dz?: Float64Array }, up: ArrayLike<number>): CpuGradients {
    if (this.options.epilogue === 'add_relu') g.dz = Float64Array.from(up);
    if (this.options.dtype === 'float16') {
      g.dx = g.dx.map(roundHalf);
      if (g.dz) g.dz = g.dz.map(roundHalf);
    }
    if (!this.options.affine) {
      g.dgamma.fill(0);
      g.dbeta.fill(0);
    }
    return { ...g, weightGrad: g.dgamma, biasGrad: g.dbeta };
  }

  /**
   * Gradients of the last forward call; x must be that call's input. Under an epilogue dy passes
   * where that call's output was positive, and 'add_relu' also returns dz.
   */
  backward(x: ArrayLike<number>, dy: ArrayLike<number>): CpuGradients {
    const s = this.saved;
    if (!s)
      throw new CallOrderError(
        'E_NO_FORWARD',
        'backward needs a forward call first; call forward(x, shape) on the same input',
      );
    if (s.syncM !== null)
      throw new CallOrderError(
        'E_INPUT_MISMATCH',
        'the last forward was synchronized (forwardSync): differentiate it with backwardSync',
      );
    const whole = s.whole;
    const up = this.upstream(dy, s);
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
    return this.gradients(g, up);
  }

  /**
   * Synchronized forward of this shard of a batch of `sync.batch` samples, as BatchNorm.forwardSync:
   * in training, this shard's statistics (count, mean, M2) go to `sync.allReduce`, which resolves to
   * every shard's in shard order; their merge (mergeStats) normalises x and updates the running
   * statistics. In eval mode allReduce is not called.
   */
  async forwardSync(
    input: ArrayLike<number>,
    shape: readonly number[],
    layout: Layout | undefined,
    sync: {
      batch: number;
      allReduce: (local: ShardStats) => Promise<readonly ShardStats[]> | readonly ShardStats[];
      z?: ArrayLike<number>;
    },
  ): Promise<Float64Array> {
    const o = checkObject<typeof sync>('sync', sync);
    if (typeof o.allReduce !== 'function')
      throw new OptionError(
        `sync.allReduce must be a function (local stats) => every shard's; got ${describe(o.allReduce)}`,
      );
    if (this.options.virtualBatchSize !== null)
      throw new OptionError(
        'ghost batches (virtualBatchSize) are per device: a synchronized step normalises the whole batch; use one or the other',
      );
    const whole = this.features(geometry(layout, shape));
    const M = syncCount(checkSyncBatch({ batch: o.batch }, whole.shape[0], whole.M / whole.shape[0]), whole);
    const plan = this.stepPlan(layout, shape, 'f32', M);
    if (!plan.batchStats) {
      // Running statistics need no all-reduce; backwardSync still merges dγ and dβ.
      const y = this.forward(input, shape, layout, o.z);
      this.saved!.syncM = M;
      return y;
    }
    const geom = plan.geom;
    const x = this.storage(this.checkLength('x', input, geom));
    const zs = this.residual(o.z, geom);
    const local = ref.batchStats(x, geom);
    const merged = checkMerged(
      mergeStats(await o.allReduce({ count: geom.M, mean: local.mean, m2: local.varBiased.map((v) => v * geom.M) })),
      this.numFeatures,
      M,
      'mergeStats',
      ['mean', 'm2'],
    );
    // A channel whose merged statistics are not finite is NaN throughout, as on the GPU.
    const stats: ref.BatchStats = { mean: Float64Array.from(merged.mean), varBiased: merged.m2.map((q) => q / M) };
    for (let c = 0; c < stats.mean.length; c++)
      if (!Number.isFinite(stats.mean[c]) || !Number.isFinite(stats.varBiased[c]))
        stats.mean[c] = stats.varBiased[c] = NaN;
    const clip = plan.updateRunning ? this.stepClip() : null;
    const renorm = clip ? { clip, mu: this.runningMean, sigma: this.runningSpread } : null;
    const k = ref.trainCoefficients(stats, this.weight, this.bias, this.options.eps, renorm);
    if (plan.updateRunning) {
      const { unbiased, eps } = this.options;
      ref.updateRunning(
        [stats],
        M,
        stepFactor(this.options, this.steps + 1),
        unbiased,
        eps,
        this.runningMean,
        this.runningSpread,
        this.isRenorm,
      );
      this.steps += 1;
    }
    return this.finish(x, geom, geom, [k], plan.batchStats, zs, M);
  }

  /**
   * Backward of a forwardSync, as BatchNorm.backwardSync: this shard's gradient sums go to
   * `sync.allReduce`; dx is exact for the whole batch, dgamma and dbeta are the whole batch's.
   */
  async backwardSync(
    x: ArrayLike<number>,
    dy: ArrayLike<number>,
    sync: { allReduce: (local: ShardGradSums) => Promise<readonly ShardGradSums[]> | readonly ShardGradSums[] },
  ): Promise<CpuGradients> {
    const o = checkObject<typeof sync>('sync', sync);
    if (typeof o.allReduce !== 'function')
      throw new OptionError(
        `sync.allReduce must be a function (local gradient sums) => every shard's; got ${describe(o.allReduce)}`,
      );
    const s = this.saved;
    if (!s) throw new CallOrderError('E_NO_FORWARD', 'backwardSync needs a forwardSync first, on the same input');
    if (s.syncM === null)
      throw new CallOrderError(
        'E_INPUT_MISMATCH',
        'the last forward was not synchronized: differentiate it with backward',
      );
    const xs = this.storage(this.checkLength('x', x, s.geom));
    const up = this.upstream(dy, s);
    const local = ref.gradSums(xs, up, s.geom, s.k[0]);
    const merged = checkMerged(
      mergeGradSums(await o.allReduce({ count: s.geom.M, ...local })),
      this.numFeatures,
      s.syncM,
      'mergeGradSums',
      ['sumDy', 'sumDyXmu'],
    );
    const g: ref.Gradients & { dz?: Float64Array } = ref.gradInput(
      xs,
      up,
      s.geom,
      s.k[0],
      this.weight,
      s.batchStats,
      merged,
      s.syncM,
    );
    return this.gradients(g, up);
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
    return Object.assign(out, renormSettings(this.options.renorm, this.steps));
  }

  loadStateDict(sd: StateDictInput): void {
    const p = this.parseStateDict(sd);
    if (p.weight) this.weight = p.weight;
    if (p.bias) this.bias = p.bias;
    if (p.runningMean) this.runningMean = p.runningMean;
    if (p.runningSpread) {
      const { key, values } = p.runningSpread;
      this.runningSpread = this.isRenorm && key === 'running_var' ? sigmaOf(values, this.options.eps) : values;
    }
    if (p.numBatchesTracked !== undefined) this.steps = p.numBatchesTracked;
  }
}
