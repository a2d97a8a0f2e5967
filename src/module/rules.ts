/**
 * The GPU module's step rules on the host: the new statistic's weight and the renorm clip of a
 * step (what step_state.wgsl computes on the GPU for plans, needed here for function schedules and
 * for the state dict), the per-activation view, the ghost count, and the running σ of a checkpoint
 * that stores running_var. The float64 CPU path computes each of these on its own (src/cpu/rules.ts),
 * so that a mistake here cannot hide from the GPU-vs-CPU checks.
 */
import { geometry, type Geometry } from '../layout.js';
import { piecewise, type ClipSource, type RenormClip, type ResolvedOptions } from '../options.js';
import { checkClipAt } from '../validate/options.js';
import { clipSettings } from '../validate/state.js';

/** Weight of the new batch statistic for the `n`-th training batch (1-based, after increment). */
export function newStatWeight(opts: ResolvedOptions, n: number): number {
  if (opts.momentum === null) return 1 / n;
  return opts.convention === 'keras' ? 1 - opts.momentum : opts.momentum;
}

/** The clip of step `step` (0-based training steps so far), validated where a function gives it. */
export function clipAt(source: ClipSource, step: number): RenormClip {
  if (source.kind === 'points')
    return { rmax: piecewise(source.points.rmax, step), dmax: piecewise(source.points.dmax, step) };
  return checkClipAt(source.fn, step);
}

/** The view the kernels run on: `g`, or a per-activation module's [N, C·spatial]. */
export function kernelView(g: Geometry, perActivation: boolean): Geometry {
  return perActivation ? geometry('NC', [g.shape[0], g.count / g.shape[0]], g.dtype) : g;
}

/** Running σ from a checkpoint's running_var: sqrt(var + eps). */
export const sigmaFromVariance = (v: Float64Array, eps: number): Float64Array => v.map((x) => Math.sqrt(x + eps));

/** The clip at `step` as a state dict carries it. */
export const renormSettings = (source: ClipSource | null, step: number) =>
  clipSettings(source && (() => clipAt(source, step)));
