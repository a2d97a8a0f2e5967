/**
 * The float64 path's own step rules, written apart from the GPU side's (module/rules.ts and
 * step_state.wgsl) so that the GPU-vs-CPU checks judge them instead of sharing them: the new
 * statistic's weight, the renorm clip of a step, the ghost split, the per-activation view, a
 * synchronized batch's count, and σ from a running_var checkpoint.
 */
import { BatchSizeError } from '../errors.js';
import { geometry, type Geometry } from '../layout.js';
import type { Breakpoints, ClipSource, RenormClip, ResolvedOptions } from '../options.js';
import { checkClipAt } from '../validate/options.js';
import { clipSettings } from '../validate/state.js';

/** The weight of the new batch statistic in the n-th training step (n counted from 1). */
export function stepFactor(o: ResolvedOptions, n: number): number {
  if (o.momentum === null) return 1 / n; // cumulative average
  return o.convention === 'keras' ? 1 - o.momentum : o.momentum;
}

/** A breakpoint schedule at `step`: the first value before the first step, linear between, the last after. */
function atStep(points: Breakpoints, step: number): number {
  const i = points.findIndex(([s]) => step <= s);
  if (i === 0) return points[0][1];
  if (i < 0) return points[points.length - 1][1];
  const [s0, v0] = points[i - 1];
  const [s1, v1] = points[i];
  return v0 + ((v1 - v0) * (step - s0)) / (s1 - s0);
}

/** The renorm clip after `step` training steps. */
export function clipOf(source: ClipSource, step: number): RenormClip {
  if (source.kind === 'function') return checkClipAt(source.fn, step);
  return { rmax: atStep(source.points.rmax, step), dmax: atStep(source.points.dmax, step) };
}

/** The clip at `step` as a state dict carries it. */
export const renormSettings = (source: ClipSource | null, step: number) =>
  clipSettings(source && (() => clipOf(source, step)));

/** Ghost batches of a training step: N / virtualBatchSize, refused unless N is a multiple of it. */
export function ghostSplit(g: Geometry, k: number | null): number {
  if (k === null) return 1;
  const N = g.shape[0];
  if (N % k !== 0)
    throw new BatchSizeError(
      `virtualBatchSize ${k} must divide the batch: shape ${JSON.stringify(g.shape)} has N = ${N}; pass N = a multiple of ${k}`,
    );
  return N / k;
}

/** A per-activation module's [N, C·spatial] view of `g` (`g` itself otherwise). */
export function featureView(g: Geometry, perActivation: boolean): Geometry {
  if (!perActivation) return g;
  const N = g.shape[0];
  return geometry('NC', [N, g.count / N], g.dtype);
}

/** Values per channel over a synchronized batch of `batch` samples. */
export const syncCount = (batch: number, g: Geometry): number => (batch * g.M) / g.shape[0];

/** Running σ of a plain checkpoint's running_var. */
export const sigmaOf = (v: Float64Array, eps: number): Float64Array => Float64Array.from(v, (x) => Math.sqrt(x + eps));
