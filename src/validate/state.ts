/**
 * State-dict checks, shared by the GPU and CPU modules: the keys a module's configuration expects,
 * and every value, checked completely before anything is stored. Nothing is converted here: a
 * renorm module handed running_var converts it to σ itself, on each side.
 */
import { StateDictError } from '../errors.js';
import type { RenormClip, ResolvedOptions } from '../options.js';
import { describe, F32_MAX } from './args.js';

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

/** Validated per-channel state, in float64, as given (a renorm module converts running_var to σ itself). */
export interface ParsedState {
  weight?: Float64Array;
  bias?: Float64Array;
  runningMean?: Float64Array;
  /** The running spread and the key it came under: running_var, or running_std (σ) for Batch Renorm. */
  runningSpread?: { key: 'running_var' | 'running_std'; values: Float64Array };
  numBatchesTracked?: number;
}

/** What the checks need of a module. */
export interface StateSpec {
  numFeatures: number;
  options: ResolvedOptions;
  isRenorm: boolean;
}

/** The keys `stateDict()` writes and `loadStateDict()` expects, in PyTorch's names. */
export function stateKeys(m: StateSpec): string[] {
  const keys: string[] = [];
  if (m.options.affine) keys.push('weight', 'bias');
  if (m.options.trackRunningStats)
    keys.push('running_mean', m.isRenorm ? 'running_std' : 'running_var', 'num_batches_tracked');
  return keys;
}

/** The GPU counts steps in a u32. */
export const MAX_STEPS = 2 ** 32 - 1;

/** Channels a module may have: its per-channel buffers must stay addressable (the GPU's limits are checked too). */
export const MAX_FEATURES = 2 ** 28;

export function parseStateDict(sd: unknown, m: StateSpec): ParsedState {
  if (typeof sd !== 'object' || sd === null || Array.isArray(sd))
    throw new StateDictError(`loadStateDict needs an object of named tensors; got ${describe(sd)}`);
  const dict = sd as Record<string, unknown>;
  const C = m.numFeatures;
  const expected = new Set(stateKeys(m));
  const given = new Set(Object.keys(dict));
  const convertVar = m.isRenorm && given.has('running_var') && !given.has('running_std');
  if (convertVar) {
    expected.delete('running_std');
    expected.add('running_var');
  }
  const optional = new Set(m.isRenorm ? ['renorm_rmax', 'renorm_dmax'] : []);
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
  if (m.options.affine) {
    out.weight = vec('weight');
    out.bias = vec('bias');
  }
  if (m.options.trackRunningStats) {
    out.runningMean = vec('running_mean');
    const key = convertVar ? 'running_var' : m.isRenorm ? 'running_std' : 'running_var';
    out.runningSpread = { key, values: vec(key, true) };
    if (key === 'running_std' && out.runningSpread.values.some((s) => s === 0))
      throw new StateDictError("state dict key 'running_std' must be > 0 (it divides the input)");
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

/**
 * A renorm clip as a state dict carries it (renorm_rmax, renorm_dmax), from the side's own clip of
 * the saved step; a schedule that fails there is left out, so that a module stays saveable.
 */
export function clipSettings(clip: (() => RenormClip) | null): { renorm_rmax?: number; renorm_dmax?: number } {
  if (!clip) return {};
  try {
    const c = clip();
    return { renorm_rmax: c.rmax, renorm_dmax: c.dmax };
  } catch {
    return {};
  }
}
