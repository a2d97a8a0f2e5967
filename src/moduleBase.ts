/**
 * Module semantics shared by the GPU `BatchNorm` and the float64 `CpuBatchNorm`: options, train/eval
 * mode, num_batches_tracked, which statistics a step uses, and state-dict validation. Keeping it in
 * one place is what makes the CPU path a faithful reference for the GPU one.
 */
import { BatchSizeError, OptionError, ShapeError, StateDictError } from './errors.js';
import type { ShardGradSums, ShardStats } from './sync.js';
import { geometry, type Geometry, type Layout, type StorageType } from './layout.js';
import { checkObject, describe, F32_MAX } from './validate/args.js';
import { clipAt, newStatWeight } from './module/rules.js';
import { resolveOptions } from './validate/options.js';
import { type BatchNormOptions, type RenormClip, type ResolvedOptions } from './options.js';

/** What one forward step does, decided before any state is touched. */
export interface StepPlan {
  readonly geom: Geometry;
  /** Ghost batches the batch statistics are taken over (1 without virtualBatchSize or in inference). */
  readonly ghosts: number;
  /** Normalise with batch statistics (training, or trackRunningStats false). */
  readonly batchStats: boolean;
  /** Update running statistics (training with trackRunningStats). */
  readonly updateRunning: boolean;
}

/** Per-channel tensors of a state dict: the module's parameters and running statistics. */
export type StateTensorKey = 'weight' | 'bias' | 'running_mean' | 'running_var' | 'running_std';

/**
 * A module's state under PyTorch's keys: `weight` and `bias` with affine; `running_mean`,
 * `running_var` (or `running_std` for Batch Renorm) and `num_batches_tracked` with running
 * statistics; `renorm_rmax` and `renorm_dmax`, the clip at the saved step, for Batch Renorm.
 */
export type StateDict<T = Float32Array> = { [K in StateTensorKey]?: T } & {
  num_batches_tracked?: number;
  renorm_rmax?: number;
  renorm_dmax?: number;
};

/** What `loadStateDict` takes: number arrays or typed arrays; num_batches_tracked as a number or a bigint. */
export type StateDictInput = { [K in StateTensorKey]?: ArrayLike<number> } & {
  num_batches_tracked?: number | bigint;
  renorm_rmax?: number;
  renorm_dmax?: number;
};

/** Validated per-channel state, in float64, ready to be stored by a backend. */
export interface ParsedState {
  weight?: Float64Array;
  bias?: Float64Array;
  runningMean?: Float64Array;
  /** running_var for batch norm, running_std (sigma) for Batch Renorm. */
  runningSpread?: Float64Array;
  numBatchesTracked?: number;
}

/** The GPU counts steps in a u32. */
export const MAX_STEPS = 2 ** 32 - 1;

/** Channels a module may have: its per-channel buffers must stay addressable (the GPU's limits are checked too). */
export const MAX_FEATURES = 2 ** 28;

export abstract class BatchNormBase {
  readonly numFeatures: number;
  readonly options: ResolvedOptions;
  protected mode = true;
  protected steps = 0;

  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    if (
      typeof numFeatures !== 'number' ||
      !Number.isSafeInteger(numFeatures) ||
      numFeatures < 1 ||
      numFeatures > MAX_FEATURES
    ) {
      throw new ShapeError(
        `numFeatures must be an integer in [1, ${MAX_FEATURES}] (the channel count C); got ${describe(numFeatures)}`,
      );
    }
    this.numFeatures = numFeatures;
    this.options = resolveOptions(options);
  }

  /** Training mode (batch statistics, running updates) or eval mode (running statistics). */
  get training(): boolean {
    return this.mode;
  }

  /** Training steps counted so far (PyTorch's num_batches_tracked). */
  get numBatchesTracked(): number {
    return this.steps;
  }

  get isRenorm(): boolean {
    return this.options.renorm !== null;
  }

  /** Name of the running-spread state key: running_var, or running_std for Batch Renorm. */
  get spreadKey(): 'running_var' | 'running_std' {
    return this.isRenorm ? 'running_std' : 'running_var';
  }

  train(mode = true): this {
    if (typeof mode !== 'boolean') throw new OptionError(`train(mode) takes true or false; got ${describe(mode)}`);
    this.mode = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Validates a forward call's shape and decides what it does. Throws before anything changes. */
  protected stepPlan(
    layout: Layout | undefined,
    shape: readonly number[],
    dtype: StorageType = 'f32',
    syncM?: number,
  ): StepPlan {
    const geom = this.features(geometry(layout, shape, dtype));
    const o = this.options;
    const batchStats = this.mode || !o.trackRunningStats;
    // Inference normalises with running statistics: no ghosts, any N.
    const ghosts = batchStats ? this.ghosts(geom) : 1;
    // A synchronized shard's statistics are over the whole batch's syncM values.
    if (batchStats && (syncM ?? geom.M / ghosts) < 2) {
      throw new BatchSizeError(
        `training needs more than one value per channel; shape ${JSON.stringify(shape)} gives M = ${syncM ?? geom.M / ghosts} per channel${syncM ? ' over the whole batch' : ghosts > 1 ? ' in each ghost batch' : ''}. Use a larger batch${ghosts > 1 ? ' or virtualBatchSize' : ''}, or eval() mode.`,
      );
    }
    return { geom, ghosts, batchStats, updateRunning: this.mode && o.trackRunningStats };
  }

  /** The ghost batches of a tensor (N / virtualBatchSize), refused unless N is a multiple. */
  protected ghosts(g: Geometry): number {
    const k = this.options.virtualBatchSize;
    if (k === null) return 1;
    const N = g.shape[0];
    if (N % k !== 0)
      throw new BatchSizeError(
        `virtualBatchSize ${k} must divide the batch: shape ${JSON.stringify(g.shape)} has N = ${N}; pass N = a multiple of ${k}`,
      );
    return N / k;
  }

  /**
   * The view the kernels run on: `g` itself, or for a per-activation module its [N, C·spatial] view
   * (statistics per activation over the batch); refused when the feature count is not the module's.
   */
  protected features(g: Geometry): Geometry {
    if (this.options.perActivation) {
      const F = g.count / g.shape[0];
      if (F !== this.numFeatures) {
        throw new ShapeError(
          `input has ${F} activations per sample (shape ${JSON.stringify(g.shape)}) but this per-activation module was built for ${this.numFeatures}; build it with numFeatures = ${F} (C·spatial)`,
        );
      }
      return geometry('NC', [g.shape[0], F], g.dtype);
    }
    if (g.C !== this.numFeatures) {
      throw new ShapeError(
        `input has C = ${g.C} channels (shape ${JSON.stringify(g.shape)}, layout ${g.layout}) but the module was built for ${this.numFeatures}; pass a tensor with ${this.numFeatures} channels or build the module with numFeatures = ${g.C}`,
      );
    }
    return g;
  }

  /** The new statistic's weight for the next training step. */
  protected stepFactor(): number {
    return newStatWeight(this.options, this.steps + 1);
  }

  /** The renorm clip of the next training step (null for plain batch norm), validated. */
  protected stepClip(): RenormClip | null {
    return this.options.renorm ? clipAt(this.options.renorm, this.steps) : null;
  }

  /** The keys `stateDict()` writes and `loadStateDict()` expects, in PyTorch's names. */
  stateKeys(): string[] {
    const keys: string[] = [];
    if (this.options.affine) keys.push('weight', 'bias');
    if (this.options.trackRunningStats) keys.push('running_mean', this.spreadKey, 'num_batches_tracked');
    return keys;
  }

  /**
   * The clip at step `steps`, as the state dict carries it. A schedule that fails there leaves it
   * out rather than fail the checkpoint: a module must stay saveable.
   */
  protected renormSettings(steps: number): { renorm_rmax?: number; renorm_dmax?: number } {
    if (!this.options.renorm) return {};
    try {
      const clip = clipAt(this.options.renorm, steps);
      return { renorm_rmax: clip.rmax, renorm_dmax: clip.dmax };
    } catch {
      return {};
    }
  }

  /**
   * Validates a checkpoint completely before anything is stored. A plain batch-norm checkpoint
   * (running_var) loads into a renorm module as sigma = sqrt(running_var + eps).
   */
  protected parseStateDict(sd: unknown): ParsedState {
    if (typeof sd !== 'object' || sd === null || Array.isArray(sd))
      throw new StateDictError(`loadStateDict needs an object of named tensors; got ${describe(sd)}`);
    const dict = sd as Record<string, unknown>;
    const C = this.numFeatures;
    const expected = new Set(this.stateKeys());
    const given = new Set(Object.keys(dict));
    const convertVar = this.isRenorm && given.has('running_var') && !given.has('running_std');
    if (convertVar) {
      expected.delete('running_std');
      expected.add('running_var');
    }
    const optional = new Set(this.isRenorm ? ['renorm_rmax', 'renorm_dmax'] : []);
    for (const k of expected) {
      if (!given.has(k))
        throw new StateDictError(`state dict is missing key '${k}'; expected keys ${[...expected].join(', ')}`);
    }
    for (const k of given) {
      if (!expected.has(k) && !optional.has(k))
        throw new StateDictError(`state dict has unexpected key '${k}'; this module takes ${[...expected].join(', ')}`);
    }
    const vec = (k: string, nonNegative = false): Float64Array => {
      const v = dict[k];
      const typed = ArrayBuffer.isView(v) && !(v instanceof DataView);
      if (!Array.isArray(v) && !typed)
        throw new StateDictError(
          `state dict key '${k}' must be an array or typed array of ${C} numbers; got ${describe(v)}`,
        );
      const a = v as ArrayLike<unknown>;
      if (a.length !== C)
        throw new StateDictError(`state dict key '${k}' has length ${a.length}; this module has ${C} channels`);
      const out = new Float64Array(C);
      for (let i = 0; i < C; i++) {
        const x = a[i];
        const n = typeof x === 'bigint' && typed ? Number(x) : x;
        if (typeof n !== 'number')
          throw new StateDictError(`state dict key '${k}' holds ${describe(x)} at index ${i}; it must hold numbers`);
        if (!Number.isFinite(n) || Math.abs(n) > F32_MAX || (nonNegative && n < 0)) {
          throw new StateDictError(
            `state dict key '${k}' has ${nonNegative && n < 0 ? 'a negative' : Number.isFinite(n) ? 'an out-of-float32-range' : 'a non-finite'} value ${n} at index ${i}`,
          );
        }
        out[i] = n;
      }
      return out;
    };
    for (const k of optional) {
      if (!given.has(k)) continue;
      const v = dict[k];
      const low = k === 'renorm_rmax' ? 1 : 0;
      if (typeof v !== 'number' || !(v >= low && v <= F32_MAX)) {
        throw new StateDictError(
          `state dict key '${k}' must be a finite number >= ${low} (a valid clip); got ${describe(v)}`,
        );
      }
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
      const t = dict.num_batches_tracked;
      const n = typeof t === 'bigint' ? Number(t) : t;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > MAX_STEPS) {
        throw new StateDictError(
          `state dict key 'num_batches_tracked' must be an integer in [0, ${MAX_STEPS}] (a number or bigint); got ${describe(t)}`,
        );
      }
      out.numBatchesTracked = n;
    }
    return out;
  }
}

/** A validated `sync` (plan() or forwardSync): the whole batch, at least this shard's, and its count per channel. */
export function syncBatch(sync: unknown, g: Geometry): { batch: number; M: number } {
  const o = checkObject<{ batch: number }>('sync', sync);
  for (const k of Object.keys(o))
    if (k !== 'batch') throw new OptionError(`sync has unknown key '${k}'; it takes batch (the whole batch's N)`);
  const N = g.shape[0];
  if (typeof o.batch !== 'number' || !Number.isSafeInteger(o.batch) || o.batch < N)
    throw new OptionError(
      `sync.batch must be the whole batch's sample count, an integer >= this shard's N = ${N}; got ${describe(o.batch)}`,
    );
  const M = o.batch * (g.M / N);
  if (!Number.isSafeInteger(M) || M > 2 ** 32 - 1)
    throw new ShapeError(`sync.batch ${o.batch} gives more values per channel than a GPU index can count`);
  return { batch: o.batch, M };
}

/**
 * Merged shard statistics (or gradient sums) for a step of C channels over the whole batch's M
 * values per channel: what the all-reduce returned, checked before it reaches the GPU.
 */
export function checkMerged<T extends ShardStats | ShardGradSums>(
  merged: T | undefined,
  C: number,
  M: number,
  from: string,
  keys: readonly string[],
): T {
  if (typeof merged !== 'object' || merged === null)
    throw new OptionError(
      `a synchronized step in training needs the whole batch's merged values (${from} of every shard's export); got ${describe(merged)}`,
    );
  const r = merged as unknown as Record<string, unknown>;
  for (const k of keys) {
    const a = r[k];
    if (!(a instanceof Float64Array || a instanceof Float32Array || Array.isArray(a)) || a.length !== C)
      throw new ShapeError(`merged ${k} must hold ${C} numbers (one per channel); got ${describe(a)}`);
  }
  if (r.count !== M)
    throw new ShapeError(
      `merged values count ${describe(r.count)} values per channel, but the step was planned for a whole batch of ${M} (sync.batch × spatial); merge every shard once`,
    );
  return merged;
}
