/**
 * The dispatch sequences of the three operations, built once per plan from validated bindings:
 * forward in training (statistics, merges, finalize, apply), forward in inference (coefficients,
 * apply) and backward (gradient sums, merges, finalize, dx). Nothing here validates: callers pass
 * what validate.ts has checked.
 */
import { placeholder } from '../gpu/buffers.js';
import { gridFor, prepareDispatch, type Dispatch } from '../gpu/kernel.js';
import { type Epilogue } from '../options.js';
import type { Geometry } from '../layout.js';
import { OptionError } from '../errors.js';
import { BackwardFlags, backwardFinalize, backwardFinalizeTree, gradSumsMerge } from '../kernels/gradients.js';
import { evalCoeffs } from '../kernels/normalise.js';
import { forwardFinalize, forwardFinalizeTree, statsMerge } from '../kernels/statistics.js';
import { SCHEDULE_BYTES, STEP_BYTES, stepState } from '../kernels/step.js';
import type { Range } from '../validate/buffers.js';
import {
  deviceTraits,
  finalizeTree,
  MERGE_GROUP,
  type ElementwisePath,
  type KernelTable,
  type ReductionPlan,
} from './table.js';

/** What a sequence is built for: the tensor view, its kernels, the workgroup-size override and the epilogue. */
export interface KernelPlan {
  readonly g: Geometry;
  readonly r: ReductionPlan;
  readonly ew: ElementwisePath;
  readonly wg?: number;
  readonly epilogue: Epilogue | null;
  /** Inference in the apply pass itself (the table's choice). */
  readonly inlineInference: boolean;
}

export function kernelPlan(
  device: GPUDevice,
  table: KernelTable,
  g: Geometry,
  wg?: number,
  epilogue: Epilogue | null = null,
  ghosts = 1,
): KernelPlan {
  const traits = deviceTraits(device);
  const r = table.reduction(g, traits, ghosts);
  const ew = table.elementwise(g, r);
  wg ??= table.workgroupSize?.(g, r, traits);
  // A kernel has the epilogues where its WGSL declares the EPILOGUE constant (build-time reflection).
  if (epilogue && ![r.stage.sums, ew.apply, ew.dx].every((k) => 'EPILOGUE' in k.reflection().constants))
    throw new OptionError(`the ${table.name} kernel table has no fused epilogues; use the default kernels`);
  return { g, r, ew, wg, epilogue, inlineInference: table.inference(traits) === 'inline' };
}

/**
 * The workspace: a vec4 of partials per (slice, channel), and room for the 2·C vec2 coefficients
 * backward writes; with merge levels, a second region (256-byte aligned) for the levels to
 * ping-pong with.
 */
const regionBytes = (slices: number, C: number) => Math.max(2, slices) * C * 16;
const firstRegionBytes = (r: ReductionPlan) =>
  r.levels.length ? Math.ceil(regionBytes(r.slices, r.geom.C) / 256) * 256 : regionBytes(r.slices, r.geom.C);

export function workspaceBytes(r: ReductionPlan): number {
  return firstRegionBytes(r) + (r.levels.length ? regionBytes(r.levels[0], r.geom.C) : 0);
}

/**
 * The first stage of a reduction and its merge levels. Returns the range and count of the partials
 * the finalize pass merges.
 */
function reduce(
  device: GPUDevice,
  l: KernelPlan,
  which: 'stats' | 'sums',
  bindings: Record<string, Range>,
  ws: Range,
  owned: GPUBuffer[],
  out: Dispatch[],
  step: StepInputs | null = null,
): Reduced {
  const { r, g, wg } = l;
  const first = which === 'stats' ? r.stage.stats : r.stage.sums;
  const { params, grid } = r.stage.dispatch(device, r, wg);
  // The gradient sums see the upstream gradient through the epilogue; the statistics do not.
  const variant = { dtype: g.dtype, epilogue: which === 'sums' ? l.epilogue : null, step: step !== null };
  // A statistics kernel without the step in its pass binds placeholders for it.
  const s = step ?? {
    schedule: placeholder(device, 10, SCHEDULE_BYTES),
    state: placeholder(device, 11, STEP_BYTES),
  };
  out.push(prepareDispatch(device, first, params, { ...bindings, ...s, partials: ws }, grid, owned, wg, variant));
  if (!r.levels.length) return { partials: ws, slices: r.slices, ghosts: r.ghosts };
  const merge = which === 'stats' ? statsMerge : gradSumsMerge;
  const unit = which === 'stats' ? 16 : 8;
  let src = 0,
    dst = firstRegionBytes(r),
    n = r.slices;
  for (const groups of r.levels) {
    const grid = gridFor(device, Math.ceil((groups * g.C) / merge.threadsPerWorkgroup(wg)));
    out.push(
      prepareDispatch(
        device,
        merge,
        { C: g.C, slices: n, group: MERGE_GROUP, groups, src: src / unit, dst: dst / unit },
        { parts: ws },
        grid,
        owned,
        wg,
      ),
    );
    [src, dst, n] = [dst, src, groups];
  }
  return { partials: { buffer: ws.buffer, offset: ws.offset + src, size: ws.size - src }, slices: n, ghosts: 1 };
}

export interface ForwardTrainBindings {
  x: Range;
  y: Range;
  /** The residual of the add_relu epilogue (a placeholder otherwise). */
  z: Range;
  stats: Range;
  gamma: Range;
  beta: Range;
  runningMean: Range;
  runningSpread: Range;
  /** Where the updated running statistics go with flag OUT_OF_PLACE (placeholders otherwise). */
  runningMeanOut: Range;
  runningSpreadOut: Range;
  /** The step's (count, factor, rmax, dmax, rmin): constants for a functional plan, the module's state otherwise. */
  step: Range;
  workspace: Range;
}

/** A module's step: its schedule, and the state that advancing it rewrites. */
export interface StepInputs {
  schedule: Range;
  state: Range;
}

/** A module's step_state dispatch, which advances its step and computes the step's values. */
export function stepDispatch(device: GPUDevice, step: StepInputs, owned: GPUBuffer[]): Dispatch {
  return prepareDispatch(device, stepState, {}, step, [1], owned);
}

/** Whether the statistics kernel of a plan advances a module's step in its own pass (its STEP variant). */
const stepInPass = (l: KernelPlan) => 'STEP' in l.r.stage.stats.reflection().constants;

/** Where a reduction left its partials, and how many per channel. */
export interface Reduced {
  readonly partials: Range;
  readonly slices: number;
  /** Ghost batches the slices are grouped into (1 without virtualBatchSize, and for merged shards). */
  readonly ghosts: number;
}

/**
 * The statistics reduction of a training forward: first stage and merge levels; with `step`, a
 * module's step advanced before the finalize reads it.
 */
export function statisticsDispatches(
  device: GPUDevice,
  l: KernelPlan,
  x: Range,
  workspace: Range,
  owned: GPUBuffer[],
  step: StepInputs | null = null,
): { dispatches: Dispatch[]; reduced: Reduced } {
  // With `step`, the module's step advances first: in the reduction's pass, or in one of its own.
  const inPass = step !== null && stepInPass(l);
  const dispatches: Dispatch[] = step && !inPass ? [stepDispatch(device, step, owned)] : [];
  const reduced = reduce(device, l, 'stats', { x }, workspace, owned, dispatches, inPass ? step : null);
  return { dispatches, reduced };
}

/**
 * The rest of a training forward, from reduced statistics: finalize (coefficients, running
 * update) and apply. `M` is the count the statistics are over: the tensor's, or the whole batch's
 * for synchronized batch norm, whose merged statistics arrive as one partial per channel.
 */
export function normaliseDispatches(
  device: GPUDevice,
  l: KernelPlan,
  b: Omit<ForwardTrainBindings, 'workspace'>,
  reduced: Reduced,
  M: number,
  eps: number,
  flags: number,
  owned: GPUBuffer[],
): Dispatch[] {
  const { g, ew, wg } = l;
  // Version 5 merges one batch's slices as a tree, a workgroup per channel.
  const tree = finalizeTree(l.r, reduced.slices, reduced.ghosts);
  return [
    prepareDispatch(
      device,
      tree ? forwardFinalizeTree : forwardFinalize,
      { C: g.C, slices: reduced.slices, M, eps, flags, ghosts: reduced.ghosts },
      {
        partials: reduced.partials,
        gamma: b.gamma,
        beta: b.beta,
        running_mean: b.runningMean,
        running_spread: b.runningSpread,
        stats: b.stats,
        step: b.step,
        running_mean_out: b.runningMeanOut,
        running_spread_out: b.runningSpreadOut,
      },
      tree ? gridFor(device, g.C) : [Math.ceil(g.C / forwardFinalize.threadsPerWorkgroup())],
      owned,
      tree ?? undefined,
    ),
    apply(device, l, ew, { stats: b.stats, x: b.x, y: b.y, z: b.z }, owned, wg, reduced.ghosts),
  ];
}

export function forwardTrainDispatches(
  device: GPUDevice,
  l: KernelPlan,
  b: ForwardTrainBindings,
  eps: number,
  flags: number,
  owned: GPUBuffer[],
): Dispatch[] {
  const s = statisticsDispatches(device, l, b.x, b.workspace, owned);
  return [...s.dispatches, ...normaliseDispatches(device, l, b, s.reduced, l.g.M / l.r.ghosts, eps, flags, owned)];
}

/** What an apply pass that infers in the pass reads (version 5's one-dispatch inference). */
interface InferInputs {
  gamma: Range;
  beta: Range;
  runningMean: Range;
  runningSpread: Range;
  eps: number;
  flags: number;
}

function apply(
  device: GPUDevice,
  l: KernelPlan,
  ew: ElementwisePath,
  b: { stats: Range; x: Range; y: Range; z: Range },
  owned: GPUBuffer[],
  wg?: number,
  ghosts = 1,
  infer: InferInputs | null = null,
): Dispatch {
  const { params, grid } = ew.dispatch(device, l.g, l.r, ew.apply, wg, ghosts);
  // Without inference in the pass the running statistics are not read: placeholders stand in.
  const e = infer ?? {
    gamma: placeholder(device, 0),
    beta: placeholder(device, 1),
    runningMean: placeholder(device, 2),
    runningSpread: placeholder(device, 3),
    eps: 0,
    flags: 0,
  };
  return prepareDispatch(
    device,
    ew.apply,
    { ...params, eps: e.eps, flags: e.flags },
    { ...b, gamma: e.gamma, beta: e.beta, running_mean: e.runningMean, running_spread: e.runningSpread },
    grid,
    owned,
    wg,
    { dtype: l.g.dtype, epilogue: l.epilogue, infer: infer !== null },
  );
}

export type ForwardEvalBindings = Omit<
  ForwardTrainBindings,
  'runningMeanOut' | 'runningSpreadOut' | 'step' | 'workspace'
>;

export function forwardEvalDispatches(
  device: GPUDevice,
  l: KernelPlan,
  b: ForwardEvalBindings,
  eps: number,
  flags: number,
  owned: GPUBuffer[],
): Dispatch[] {
  const { g, ew, wg } = l;
  const io = { stats: b.stats, x: b.x, y: b.y, z: b.z };
  if (l.inlineInference) return [apply(device, l, ew, io, owned, wg, 1, { ...b, eps, flags })];
  return [
    prepareDispatch(
      device,
      evalCoeffs,
      { C: g.C, eps, flags },
      { gamma: b.gamma, beta: b.beta, running_mean: b.runningMean, running_spread: b.runningSpread, stats: b.stats },
      [Math.ceil(g.C / evalCoeffs.threadsPerWorkgroup())],
      owned,
    ),
    apply(device, l, ew, io, owned, wg),
  ];
}

export interface BackwardBindings {
  x: Range;
  dy: Range;
  dx: Range;
  /** With an epilogue: the forward's output, whose sign masks dy (a placeholder otherwise). */
  y: Range;
  /** The residual's gradient of the add_relu epilogue (a placeholder otherwise). */
  dz: Range;
  stats: Range;
  gamma: Range;
  dgamma: Range;
  dbeta: Range;
  workspace: Range;
}

/** The gradient-sums reduction of a backward: first stage and merge levels. */
export function gradSumsDispatches(
  device: GPUDevice,
  l: KernelPlan,
  b: Pick<BackwardBindings, 'stats' | 'x' | 'dy' | 'y' | 'workspace'>,
  owned: GPUBuffer[],
): { dispatches: Dispatch[]; reduced: Reduced } {
  const dispatches: Dispatch[] = [];
  const reduced = reduce(
    device,
    l,
    'sums',
    { stats: b.stats, x: b.x, dy: b.dy, y: b.y },
    b.workspace,
    owned,
    dispatches,
  );
  return { dispatches, reduced };
}

/**
 * The rest of a backward, from reduced gradient sums: finalize (coefficients, dγ, dβ; it writes
 * the coefficients over the partials) and dx. `M` as in normaliseDispatches.
 */
export function gradInputDispatches(
  device: GPUDevice,
  l: KernelPlan,
  b: BackwardBindings,
  reduced: Reduced,
  M: number,
  batchStats: boolean,
  affine: boolean,
  owned: GPUBuffer[],
): Dispatch[] {
  const { g, ew, wg } = l;
  const flags = (batchStats ? BackwardFlags.BATCH_STATS : 0) | (affine ? BackwardFlags.AFFINE : 0);
  const { ghosts, slices } = reduced;
  const tree = finalizeTree(l.r, slices, ghosts);
  const { params, grid } = ew.dispatch(device, g, l.r, ew.dx, wg, ghosts);
  return [
    prepareDispatch(
      device,
      tree ? backwardFinalizeTree : backwardFinalize,
      { C: g.C, slices, M, flags, ghosts, coef_base: ghosts > 1 ? slices * g.C : 0 },
      { partials: reduced.partials, stats: b.stats, gamma: b.gamma, dgamma: b.dgamma, dbeta: b.dbeta },
      tree ? gridFor(device, g.C) : [Math.ceil(g.C / backwardFinalize.threadsPerWorkgroup())],
      owned,
      tree ?? undefined,
    ),
    prepareDispatch(
      device,
      ew.dx,
      params,
      { stats: b.stats, coef: reduced.partials, x: b.x, dy: b.dy, dx: b.dx, y: b.y, dz: b.dz },
      grid,
      owned,
      wg,
      { dtype: g.dtype, epilogue: l.epilogue },
    ),
  ];
}

/** Backward through batch statistics (`batchStats`) or through constants (after an inference forward). */
export function backwardDispatches(
  device: GPUDevice,
  l: KernelPlan,
  b: BackwardBindings,
  batchStats: boolean,
  affine: boolean,
  owned: GPUBuffer[],
): Dispatch[] {
  const s = gradSumsDispatches(device, l, b, owned);
  return [
    ...s.dispatches,
    ...gradInputDispatches(device, l, b, s.reduced, l.g.M / l.r.ghosts, batchStats, affine, owned),
  ];
}
