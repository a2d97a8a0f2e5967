/**
 * The dispatch table: which kernels a shape runs, and with what geometry. Every plan takes its
 * kernels from a KernelTable; the library ships DEFAULT_TABLE, and dev/kernels keeps the earlier
 * numbered tables runnable against the same tests and benchmarks.
 *
 * A reduction (statistics, gradient sums) runs in two or more stages: a first stage that leaves
 * `slices` partials per channel, merge levels that divide them by MERGE_GROUP, and a finalize pass
 * that merges the rest. The elementwise passes (apply, dx) run once over the tensor.
 */
import { gridFor, type AnyKernel, type Grid, type ParamsOf } from '../gpu/kernel.js';
import type { Geometry } from '../layout.js';
import { applyRows, applyScalar, applyVec4 } from '../kernels/normalise.js';
import {
  dxRows,
  dxScalar,
  dxVec4,
  gradSumsBlocks,
  gradSumsRows,
  gradSumsRuns,
  gradSumsThread,
} from '../kernels/gradients.js';
import { statsBlocks, statsRows, statsRuns, statsThread } from '../kernels/statistics.js';

/** The first stage of a reduction: a statistics kernel and its gradient-sums twin with the same geometry. */
export interface ReductionStage {
  readonly kind: string;
  readonly stats: AnyKernel;
  readonly sums: AnyKernel;
  /**
   * Threads one slice of the tensor takes (channels, or vec4s of channels), and the loads all the
   * slices of one such thread make together.
   */
  threadsPerSlice(g: Geometry): number;
  loadsPerChannel(g: Geometry): number;
  /** Values of a channel that one slice takes whole (its slices are whole samples: inner); 1 if absent. */
  sliceUnit?(g: Geometry): number;
  /** Uniform values and grid of the first stage on plan `p`. */
  dispatch(device: GPUDevice, p: ReductionPlan, wg?: number): { params: Record<string, number>; grid: Grid };
}

export interface ReductionPlan {
  readonly stage: ReductionStage;
  readonly geom: Geometry;
  /** Values (or rows, or vec4s) of one channel per slice. */
  readonly chunk: number;
  /** Partials per channel that the first stage writes. */
  readonly slices: number;
  /** Partials per channel after each merge level (empty: the finalize pass merges all slices). */
  readonly levels: number[];
  /** Ghost batches (virtualBatchSize): consecutive runs of M / ghosts values with their own statistics. */
  readonly ghosts: number;
  /** Slices per ghost (all of them with one ghost); no slice straddles two ghosts. */
  readonly spg: number;
  /**
   * The finalize passes may merge the slices as a tree in workgroup memory, a workgroup per channel
   * (version 5; one ghost; see finalizeTree), instead of one thread per channel merging them in turn.
   */
  readonly tree: boolean;
}

/** What a table reads of the device. */
export interface DeviceTraits {
  /** Workgroups per grid dimension (limits.maxComputeWorkgroupsPerDimension). */
  readonly maxPerDimension: number;
  /**
   * A fallback adapter (adapterInfo.isFallbackAdapter: SwiftShader, WARP, llvmpipe): a CPU, whose
   * threads are SIMD lanes on a few cores and which runs a kernel with barriers as coroutines, so
   * wide reductions and workgroup trees cost it far more than they save.
   */
  readonly fallback: boolean;
}

export function deviceTraits(device: GPUDevice): DeviceTraits {
  return {
    maxPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
    // adapterInfo is missing on older implementations; they are taken for GPUs.
    fallback: (device.adapterInfo as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter === true,
  };
}

/** The elementwise passes of a shape: normalisation and input gradient. */
export interface ElementwisePath {
  readonly kind: string;
  readonly apply: AnyKernel;
  readonly dx: AnyKernel;
  /** Uniforms and grid; `ghosts` is the count of ghost batches whose coefficients it reads (1 in inference). */
  dispatch(
    device: GPUDevice,
    g: Geometry,
    r: ReductionPlan,
    kernel: AnyKernel,
    wg?: number,
    ghosts?: number,
  ): { params: Record<string, number>; grid: Grid };
}

export interface KernelTable {
  readonly name: string;
  /**
   * Inference on a device: 'inline', the apply pass computes its coefficients from the running
   * statistics (one dispatch, version 5); 'coefficients', a pass writes them first (eval_coeffs.wgsl).
   */
  inference(device: DeviceTraits): 'inline' | 'coefficients';
  /** The reduction plan of a shape on a device, with batch statistics over `ghosts` ghost batches (1: the whole batch). */
  reduction(g: Geometry, device: DeviceTraits, ghosts: number): ReductionPlan;
  /** The elementwise passes of a shape, given its reduction plan. */
  elementwise(g: Geometry, r: ReductionPlan): ElementwisePath;
  /**
   * The workgroup size of the first stage and the elementwise passes where the caller sets none
   * (undefined: each kernel's own, 256).
   */
  workgroupSize?(g: Geometry, r: ReductionPlan, device: DeviceTraits): number | undefined;
}

/**
 * An options key that sets a module's kernel table, for the dev versions' tests and benchmarks (a
 * symbol, so option validation, which reads string keys, never sees it).
 */
export const KERNEL_TABLE: unique symbol = Symbol('webgpu-batchnorm.kernelTable');

/** Partials merged per thread and level. */
export const MERGE_GROUP = 32;

/** Slice counts after each merge level, starting from `slices`. */
export function mergeLevels(slices: number): number[] {
  const levels: number[] = [];
  for (let s = slices; s > MERGE_GROUP;) levels.push((s = Math.ceil(s / MERGE_GROUP)));
  return levels;
}

/** `want` slices (at least one), each non-empty and a whole number of the stage's slice units. */
export function withSlices(geom: Geometry, stage: ReductionStage, want: number, merge: boolean): ReductionPlan {
  const unit = stage.sliceUnit?.(geom) ?? 1;
  const units = geom.M / unit;
  const chunk = Math.ceil(units / Math.min(units, Math.max(1, want))) * unit;
  const slices = Math.ceil(geom.M / chunk);
  return {
    stage,
    geom,
    chunk,
    slices,
    levels: merge ? mergeLevels(slices) : [],
    ghosts: 1,
    spg: slices,
    tree: false,
  };
}

/**
 * The reduction of ghost batch norm: `ghosts` runs of M / ghosts values per channel, each cut into
 * the same number of slices (2 to MERGE_GROUP, at least MIN_PER_THREAD values each where there
 * are enough) for the thread stage, with no merge levels: the finalize passes merge each ghost's
 * slices. Two slices at least, so the workspace has room for backward's per-ghost coefficients
 * past the partials.
 */
export function ghostReduction(geom: Geometry, ghosts: number): ReductionPlan {
  const Mg = geom.M / ghosts;
  const chunk = Math.max(1, Math.ceil(Mg / Math.min(MERGE_GROUP, Math.max(2, Math.ceil(Mg / MIN_PER_THREAD)))));
  const spg = Math.max(2, Math.ceil(Mg / chunk));
  return {
    stage: THREAD,
    geom,
    chunk,
    slices: ghosts * spg,
    levels: [],
    ghosts,
    spg,
    tree: false,
  };
}

/** Threads the barrier-free reductions aim for: enough to fill a large GPU. */
const TARGET_THREADS = 65536;
/** Fewest loads one barrier-free thread makes, so the merges have little to do. */
const MIN_PER_THREAD = 16;

const threads = (device: GPUDevice, k: AnyKernel, n: number, wg?: number) =>
  gridFor(device, Math.ceil(n / k.threadsPerWorkgroup(wg)));

/** One thread per (channel, slice), any layout: stats_thread.wgsl, grad_sums_thread.wgsl. */
export const THREAD: ReductionStage = {
  kind: 'thread',
  stats: statsThread,
  sums: gradSumsThread,
  threadsPerSlice: (g) => g.C,
  loadsPerChannel: (g) => g.M,
  dispatch(device, p, wg) {
    const { C, inner, M } = p.geom;
    return {
      params: { C, inner, M, chunk: p.chunk, slices: p.slices, spg: p.spg, Mg: M / p.ghosts } satisfies ParamsOf<
        typeof statsThread
      >,
      grid: threads(device, statsThread, p.slices * C, wg),
    };
  },
};

/** One thread per (slice, 4 channels) across rows: channels-last with C % 4 == 0. */
export const ROWS: ReductionStage = {
  kind: 'rows',
  stats: statsRows,
  sums: gradSumsRows,
  threadsPerSlice: (g) => g.C / 4,
  loadsPerChannel: (g) => g.M,
  dispatch(device, p, wg) {
    const { C, M } = p.geom;
    return {
      params: { C4: C / 4, M, chunk: p.chunk, slices: p.slices } satisfies ParamsOf<typeof statsRows>,
      grid: threads(device, statsRows, (p.slices * C) / 4, wg),
    };
  },
};

/** One thread per (channel, slice) along contiguous runs: channels-first with inner % 4 == 0. */
export const RUNS: ReductionStage = {
  kind: 'runs',
  stats: statsRuns,
  sums: gradSumsRuns,
  threadsPerSlice: (g) => g.C,
  loadsPerChannel: (g) => g.M / 4,
  dispatch(device, p, wg) {
    const { C, inner, M } = p.geom;
    return {
      params: { C, inner4: inner / 4, M4: M / 4, slices: p.slices } satisfies ParamsOf<typeof statsRuns>,
      grid: threads(device, statsRuns, p.slices * C, wg),
    };
  },
};

/**
 * One thread per (slice, block of four channels) over whole samples: channels-first with
 * inner % 4 != 0 and C % 4 == 0, whose four channels of a sample are `inner` aligned vec4s
 * (version 5).
 */
export const BLOCKS: ReductionStage = {
  kind: 'blocks',
  stats: statsBlocks,
  sums: gradSumsBlocks,
  threadsPerSlice: (g) => g.C / 4,
  // A thread reads its four channels' values as vec4s: M of them per block column.
  loadsPerChannel: (g) => g.M,
  sliceUnit: (g) => g.inner,
  dispatch(device, p, wg) {
    const { C, inner, M } = p.geom;
    return {
      params: { C4: C / 4, inner, outer: M / inner, chunk: p.chunk / inner, slices: p.slices } satisfies ParamsOf<
        typeof statsBlocks
      >,
      grid: threads(device, statsBlocks, (p.slices * C) / 4, wg),
    };
  },
};

/**
 * Slices for the barrier-free stages: enough threads to fill a large GPU, each with at least
 * MIN_PER_THREAD loads (values, or vec4s for rows and runs).
 */
export function threadSlices(g: Geometry, stage: ReductionStage): number {
  return Math.min(
    Math.ceil(TARGET_THREADS / stage.threadsPerSlice(g)),
    Math.ceil(stage.loadsPerChannel(g) / MIN_PER_THREAD),
  );
}

/**
 * The vec4 elementwise passes take a tensor of a multiple of four values whose groups of four span
 * at most two channels, or are four consecutive ones (lib/lanes.wgsl): any inner ≥ 2, or inner 1
 * with C % 4 == 0 (version 5; earlier versions took only inner % 4 == 0 of the first).
 */
export function vec4Elementwise(g: Geometry): boolean {
  return g.count % 4 === 0 && (g.inner >= 2 || g.C % 4 === 0);
}

/** An elementwise kernel's uniforms but the call's own (the apply kernels' eps and flags). */
type GeometryParams<K> = Omit<ParamsOf<K>, 'eps' | 'flags'>;

export const SCALAR_ELEMENTWISE: ElementwisePath = {
  kind: 'scalar',
  apply: applyScalar,
  dx: dxScalar,
  dispatch(device, g, r, kernel, wg, ghosts = 1) {
    const params = { C: g.C, inner: g.inner, count: g.count, block: g.count / ghosts } satisfies GeometryParams<
      typeof applyScalar
    >;
    return {
      params:
        kernel === dxScalar
          ? ({
              ...params,
              // backward_finalize puts a ghost plan's coefficients past its partials.
              coef_base: ghosts > 1 ? r.slices * g.C : 0,
              CG: ghosts * g.C,
            } satisfies ParamsOf<typeof dxScalar>)
          : params,
      grid: threads(device, kernel, g.count, wg),
    };
  },
};

export const VEC4_ELEMENTWISE: ElementwisePath = {
  kind: 'vec4',
  apply: applyVec4,
  dx: dxVec4,
  dispatch(device, g, _r, kernel, wg) {
    const params = { C: g.C, inner: g.inner, count4: g.count / 4 } satisfies ParamsOf<typeof applyVec4 | typeof dxVec4>;
    return { params, grid: threads(device, kernel, g.count / 4, wg) };
  },
};

/** Channels-last with C % 4 == 0: the threads of the ROWS reduction, coefficients kept per thread. */
export const ROWS_ELEMENTWISE: ElementwisePath = {
  kind: 'rows',
  apply: applyRows,
  dx: dxRows,
  dispatch(device, g, r, kernel, wg) {
    return {
      params: { C4: g.C / 4, M: g.M, chunk: r.chunk, slices: r.slices } satisfies GeometryParams<typeof applyRows>,
      grid: threads(device, kernel, (r.slices * g.C) / 4, wg),
    };
  },
};

/** Partials per thread in a version 5 finalize, and threads per channel in its tree. */
export const PER_THREAD = 8;
export const TREE_WIDTH = 256;
/** Partials per channel a tree finalize merges at most. */
export const TREE_SLICES = PER_THREAD * TREE_WIDTH;

/**
 * The workgroup width of a version 5 finalize over `slices` partials per channel: null for the
 * serial finalize (a thread per channel; at most PER_THREAD partials, so still at most PER_THREAD
 * dependent loads), else the fewest threads (a power of two) that take PER_THREAD partials each.
 */
export function finalizeTree(r: ReductionPlan, slices: number, ghosts: number): number | null {
  if (!r.tree || ghosts > 1 || slices <= PER_THREAD) return null;
  return Math.min(TREE_WIDTH, 2 ** Math.ceil(Math.log2(Math.ceil(slices / PER_THREAD))));
}

/**
 * What the library runs (kernel version 5): 16-byte reductions, across rows for channels-last with
 * C % 4 == 0, along contiguous runs for channels-first with H·W % 4 == 0, by blocks of four
 * channels for channels-first with H·W % 4 != 0 and C % 4 == 0 (one thread per (channel, slice)
 * elsewhere), with no merge levels, so that a training forward and a
 * backward are three dependent passes: on a GPU, as many slices as fill it up to TREE_SLICES,
 * merged by a tree finalize; on a fallback adapter (a CPU), at most PER_THREAD slices, merged by
 * the serial finalize without barriers. No thread merges more than PER_THREAD partials in turn.
 * The matching elementwise passes, which also infer in one pass on a GPU. Ghost batches take the
 * layout-generic passes and the serial finalize.
 */
/**
 * Workgroups a GPU pass should have at least: two per core of the largest GPU the tables are
 * designed for (an H200's 132 SMs), so that no core idles through a pass that carries real work.
 */
export const MIN_WORKGROUPS = 264;

export const DEFAULT_TABLE: KernelTable = {
  name: 'v5',
  // On a CPU a dispatch costs little and the apply pass's per-vec4 gathers of four arrays are
  // real work; on a GPU they hide under the loads and the dependent dispatch does not.
  inference: (device) => (device.fallback ? 'coefficients' : 'inline'),
  reduction(g, device, ghosts) {
    if (ghosts > 1) return ghostReduction(g, ghosts);
    const stage = reductionStage(g);
    const most = device.fallback ? PER_THREAD : TREE_SLICES;
    return { ...withSlices(g, stage, Math.min(threadSlices(g, stage), most), false), tree: true };
  },
  elementwise,
  // On a GPU, smaller workgroups where 256-thread ones would leave cores idle (the first stage of
  // the small shapes has as few as 25,000 threads); a CPU runs workgroups as loops either way.
  workgroupSize(g, r, device) {
    if (device.fallback || r.ghosts > 1) return undefined;
    const threads = r.slices * r.stage.threadsPerSlice(g);
    return threads >= 256 * MIN_WORKGROUPS ? undefined : threads >= 128 * MIN_WORKGROUPS ? 128 : 64;
  },
};

/** The first stage a shape takes: rows, runs, blocks, or one thread per (channel, slice). */
export function reductionStage(g: Geometry): ReductionStage {
  if (g.inner === 1) return g.C % 4 === 0 ? ROWS : THREAD;
  if (g.inner % 4 === 0) return RUNS;
  return g.C % 4 === 0 ? BLOCKS : THREAD;
}

/** The elementwise passes of a reduction plan. */
export function elementwise(g: Geometry, r: ReductionPlan): ElementwisePath {
  // Ghost batches take the layout-generic passes, whose indices know about them.
  if (r.ghosts > 1) return SCALAR_ELEMENTWISE;
  if (r.stage === ROWS) return ROWS_ELEMENTWISE;
  return vec4Elementwise(g) ? VEC4_ELEMENTWISE : SCALAR_ELEMENTWISE;
}
