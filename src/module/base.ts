/**
 * What the GPU `BatchNorm` and the float64 `CpuBatchNorm` share: the checks of their arguments and
 * state dicts (validate/), train/eval mode and the step count. Every numeric and step rule (the
 * statistics, M, σ, the renorm clip, the ghost split, the eval coefficients, the fold) each side
 * computes on its own: module/rules.ts and the kernels for the GPU, cpu/ for the reference.
 */
import { OptionError, ShapeError } from '../errors.js';
import type { Geometry } from '../layout.js';
import type { BatchNormOptions, ResolvedOptions } from '../options.js';
import { describe } from '../validate/args.js';
import { resolveOptions } from '../validate/options.js';
import { MAX_FEATURES, parseStateDict, stateKeys, type ParsedState } from '../validate/state.js';

export abstract class ModuleBase {
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

  /** The keys `stateDict()` writes and `loadStateDict()` expects, in PyTorch's names. */
  stateKeys(): string[] {
    return stateKeys(this);
  }

  /** Validates a checkpoint completely before anything is stored (nothing is converted). */
  protected parseStateDict(sd: unknown): ParsedState {
    return parseStateDict(sd, this);
  }

  /**
   * Refuses a tensor whose channels (or, per activation, C·spatial features) are not the module's
   * numFeatures.
   */
  checkFeatures(g: Geometry): void {
    if (this.options.perActivation) {
      const F = g.count / g.shape[0];
      if (F !== this.numFeatures)
        throw new ShapeError(
          `input has ${F} activations per sample (shape ${JSON.stringify(g.shape)}) but this per-activation module was built for ${this.numFeatures}; build it with numFeatures = ${F} (C·spatial)`,
        );
    } else if (g.C !== this.numFeatures) {
      throw new ShapeError(
        `input has C = ${g.C} channels (shape ${JSON.stringify(g.shape)}, layout ${g.layout}) but the module was built for ${this.numFeatures}; pass a tensor with ${this.numFeatures} channels or build the module with numFeatures = ${g.C}`,
      );
    }
  }
}
