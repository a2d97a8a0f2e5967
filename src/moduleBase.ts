/**
 * Module semantics shared by the GPU `BatchNorm` and the float64 `CpuBatchNorm`: options, train/eval
 * mode, num_batches_tracked, which statistics a step uses, and state-dict validation. Keeping it in
 * one place is what makes the CPU path a faithful reference for the GPU one.
 */
import { BatchSizeError, OptionError, ShapeError, StateDictError } from './errors';
import { geometry, type Geometry, type Layout } from './layout';
import { newStatWeight, renormClip, resolveOptions, type BatchNormOptions, type RenormClip, type ResolvedOptions } from './options';

/** What one forward step does, decided before any state is touched. */
export interface StepPlan {
  readonly geom: Geometry;
  /** Normalise with batch statistics (training, or trackRunningStats false). */
  readonly batchStats: boolean;
  /** Update running statistics (training with trackRunningStats). */
  readonly updateRunning: boolean;
  /** Weight of the new batch statistic in the running update. */
  readonly factor: number;
  /** Batch Renorm clip for this step; null for plain batch norm or when running stats are used. */
  readonly clip: RenormClip | null;
}

export type StateValue = ArrayLike<number> | number | bigint;
export type StateDict = Record<string, StateValue>;

/** Validated per-channel state, in float64, ready to be stored by a backend. */
export interface ParsedState {
  weight?: Float64Array;
  bias?: Float64Array;
  runningMean?: Float64Array;
  /** running_var for batch norm, running_std (sigma) for Batch Renorm. */
  runningSpread?: Float64Array;
  numBatchesTracked?: number;
}

export abstract class BatchNormBase {
  readonly numFeatures: number;
  readonly options: ResolvedOptions;
  training = true;
  numBatchesTracked = 0;

  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    if (!Number.isSafeInteger(numFeatures) || numFeatures < 1) {
      throw new ShapeError(`numFeatures must be a positive integer (the channel count C); got ${numFeatures}`);
    }
    this.numFeatures = numFeatures;
    this.options = resolveOptions(options);
    if (this.options.renorm && !this.options.trackRunningStats) {
      throw new OptionError('Batch Renorm corrects towards running statistics, so it needs trackRunningStats: true.');
    }
  }

  get isRenorm(): boolean {
    return this.options.renorm !== null;
  }

  /** Name of the running-spread state key: running_var, or running_std for Batch Renorm. */
  get spreadKey(): 'running_var' | 'running_std' {
    return this.isRenorm ? 'running_std' : 'running_var';
  }

  train(mode = true): this {
    this.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Validates a forward call and decides what it does. Throws before anything changes. */
  protected plan(layout: Layout, shape: readonly number[]): StepPlan {
    const geom = geometry(layout, shape);
    if (geom.C !== this.numFeatures) {
      throw new ShapeError(`input has C = ${geom.C} channels (shape ${JSON.stringify(shape)}, layout ${layout}) but the module was built for ${this.numFeatures}; pass a tensor with ${this.numFeatures} channels or build the module with numFeatures = ${geom.C}`);
    }
    const o = this.options;
    const batchStats = this.training || !o.trackRunningStats;
    if (batchStats && geom.M < 2) {
      throw new BatchSizeError(`training needs more than one value per channel; shape ${JSON.stringify(shape)} gives M = ${geom.M} per channel. Use a larger batch, or eval() mode.`);
    }
    const updateRunning = this.training && o.trackRunningStats;
    const factor = updateRunning ? newStatWeight(o, this.numBatchesTracked + 1) : 0;
    const clip = batchStats && o.renorm ? renormClip(o, this.numBatchesTracked) : null;
    return { geom, batchStats, updateRunning, factor, clip };
  }

  /** Records a completed step; called only after the step succeeded. */
  protected commit(plan: StepPlan): void {
    if (plan.updateRunning) this.numBatchesTracked += 1;
  }

  /** The keys `stateDict()` writes and `loadStateDict()` expects, in PyTorch's names. */
  stateKeys(): string[] {
    const keys: string[] = [];
    if (this.options.affine) keys.push('weight', 'bias');
    if (this.options.trackRunningStats) keys.push('running_mean', this.spreadKey, 'num_batches_tracked');
    return keys;
  }

  /** Current renorm clip, carried in the state dict as the module's renorm settings. */
  protected renormSettings(): Record<string, number> {
    if (!this.options.renorm) return {};
    const clip = renormClip(this.options, this.numBatchesTracked)!;
    return { renorm_rmax: clip.rmax, renorm_dmax: clip.dmax };
  }

  /**
   * Validates a checkpoint completely before anything is stored. A plain batch-norm checkpoint
   * (running_var) loads into a renorm module as sigma = sqrt(running_var + eps).
   */
  protected parseStateDict(sd: StateDict): ParsedState {
    if (sd === null || typeof sd !== 'object') throw new StateDictError('loadStateDict needs an object of named tensors');
    const C = this.numFeatures;
    const expected = new Set(this.stateKeys());
    const given = new Set(Object.keys(sd));
    const convertVar = this.isRenorm && given.has('running_var') && !given.has('running_std');
    if (convertVar) {
      expected.delete('running_std');
      expected.add('running_var');
    }
    const optional = new Set(this.isRenorm ? ['renorm_rmax', 'renorm_dmax'] : []);
    for (const k of expected) {
      if (!given.has(k)) throw new StateDictError(`state dict is missing key '${k}'; expected keys ${[...expected].join(', ')}`);
    }
    for (const k of given) {
      if (!expected.has(k) && !optional.has(k)) throw new StateDictError(`state dict has unexpected key '${k}'; this module takes ${[...expected].join(', ')}`);
    }
    const vec = (k: string, nonNegative = false): Float64Array => {
      const v = sd[k];
      if (typeof v !== 'object' || v === null || typeof (v as ArrayLike<number>).length !== 'number') {
        throw new StateDictError(`state dict key '${k}' must be an array of ${C} numbers`);
      }
      const a = Float64Array.from(v as ArrayLike<number>, Number);
      if (a.length !== C) throw new StateDictError(`state dict key '${k}' has length ${a.length}; this module has ${C} channels`);
      const bad = a.findIndex((x) => !Number.isFinite(x) || (nonNegative && x < 0));
      if (bad >= 0) throw new StateDictError(`state dict key '${k}' has ${nonNegative ? 'a negative or non-finite' : 'a non-finite'} value ${a[bad]} at index ${bad}`);
      return a;
    };
    for (const k of optional) {
      if (given.has(k) && !Number.isFinite(Number(sd[k]))) throw new StateDictError(`state dict key '${k}' must be a finite number`);
    }
    const out: ParsedState = {};
    if (this.options.affine) {
      out.weight = vec('weight');
      out.bias = vec('bias');
    }
    if (this.options.trackRunningStats) {
      out.runningMean = vec('running_mean');
      if (convertVar) {
        const eps = this.options.eps;
        out.runningSpread = vec('running_var', true).map((v) => Math.sqrt(v + eps));
      } else {
        out.runningSpread = vec(this.spreadKey, true);
        if (this.isRenorm && out.runningSpread.some((s) => s === 0)) {
          throw new StateDictError("state dict key 'running_std' must be > 0 (it divides the input)");
        }
      }
      const n = Number(sd.num_batches_tracked as number | bigint);
      if (!Number.isSafeInteger(n) || n < 0) throw new StateDictError(`state dict key 'num_batches_tracked' must be a non-negative integer; got ${String(sd.num_batches_tracked)}`);
      out.numBatchesTracked = n;
    }
    return out;
  }
}
