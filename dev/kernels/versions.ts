/**
 * Every kernel version this project has shipped, each a dispatch table runnable against the float64
 * CPU path (test/browser/gpu-vs-cpu.test.ts) and timed by `npm run bench -- --versions 1,2,3,4`.
 * The library ships only the newest (src/plan/table.ts: DEFAULT_TABLE, which is version 5); the
 * kernels that only older versions use live here, in dev/kernels/.
 *
 * 1: one workgroup per (channel, slice), tree merge in workgroup memory; scalar elementwise passes.
 * 2: channels-last with C % 4 == 0: vec4 lanes across channels, rows across threads; version 1
 *    elsewhere; vec4 elementwise passes where groups of four share a channel or span four.
 * 3: one thread per (channel, slice) in every layout, no workgroup memory or barriers; version 2's
 *    elementwise passes.
 * 4: 16-byte reductions across rows or along runs, version 3's elsewhere, merge levels; the
 *    channels-last elementwise passes keep four channels' coefficients per thread.
 * 5: version 4's first stages without merge levels, merged by a tree finalize (at most 8 partials
 *    per thread; on a fallback adapter at most 8 slices and the serial finalize), so training
 *    forward and backward are three dependent passes; inference in one pass.
 */
import statsWorkgroupWgsl from './stats_workgroup.wgsl?kernel';
import statsWorkgroupVec4Wgsl from './stats_workgroup_vec4.wgsl?kernel';
import gradSumsWorkgroupWgsl from './grad_sums_workgroup.wgsl?kernel';
import gradSumsWorkgroupVec4Wgsl from './grad_sums_workgroup_vec4.wgsl?kernel';
import { defineKernel } from '../../src/gpu/kernel.js';
import {
  DEFAULT_TABLE,
  ghostReduction,
  ROWS,
  ROWS_ELEMENTWISE,
  RUNS,
  SCALAR_ELEMENTWISE,
  THREAD,
  VEC4_ELEMENTWISE,
  threadSlices,
  withSlices,
  type ElementwisePath,
  type KernelTable,
  type ReductionPlan,
  type ReductionStage,
} from '../../src/plan/table.js';
import type { Geometry } from '../../src/layout.js';

const WORKGROUP_PARAMS = ['C', 'inner', 'M', 'chunk', 'cFold'] as const;
const VEC4_PARAMS = ['C4', 'M', 'chunk'] as const;
export const statsWorkgroup = defineKernel(
  'dev.stats_workgroup',
  statsWorkgroupWgsl,
  ['params', 'x', 'partials'] as const,
  WORKGROUP_PARAMS,
);
export const statsWorkgroupVec4 = defineKernel(
  'dev.stats_workgroup_vec4',
  statsWorkgroupVec4Wgsl,
  ['params', 'x', 'partials'] as const,
  VEC4_PARAMS,
);
export const gradSumsWorkgroup = defineKernel(
  'dev.grad_sums_workgroup',
  gradSumsWorkgroupWgsl,
  ['params', 'stats', 'x', 'dy', 'partials'] as const,
  WORKGROUP_PARAMS,
);
export const gradSumsWorkgroupVec4 = defineKernel(
  'dev.grad_sums_workgroup_vec4',
  gradSumsWorkgroupVec4Wgsl,
  ['params', 'stats', 'x', 'dy', 'partials'] as const,
  VEC4_PARAMS,
);

/** The dev kernels, for the reflection test. */
export const DEV_KERNELS = [statsWorkgroup, statsWorkgroupVec4, gradSumsWorkgroup, gradSumsWorkgroupVec4] as const;

/** Workgroups the workgroup reductions aim for in all: enough to fill a large GPU, few enough for a CPU. */
const TARGET_WORKGROUPS = 2048;

/** Slices for `threads` threads per workgroup over `channelsPerGroup` channels: at least 4 values per thread. */
function workgroupSlices(M: number, C: number, threads: number, channelsPerGroup: number, max: number): number {
  const groups = Math.ceil(C / channelsPerGroup);
  return Math.min(Math.ceil(M / (threads * 4)), Math.max(1, Math.floor(TARGET_WORKGROUPS / groups)), max);
}

const WORKGROUP: ReductionStage = {
  kind: 'workgroup',
  stats: statsWorkgroup,
  sums: gradSumsWorkgroup,
  threadsPerSlice: (g) => g.C * statsWorkgroup.threadsPerWorkgroup(),
  loadsPerChannel: (g) => g.M,
  dispatch(device, p) {
    const { C, inner, M } = p.geom;
    // Channels per dispatch row: x holds at most the device's workgroups per dimension.
    const cFold = Math.min(C, device.limits.maxComputeWorkgroupsPerDimension);
    return {
      params: { C, inner, M, chunk: p.chunk, cFold },
      grid: [Math.min(C, cFold), p.slices, Math.ceil(C / cFold)],
    };
  },
};

const WORKGROUP_VEC4: ReductionStage = {
  kind: 'workgroup-vec4',
  stats: statsWorkgroupVec4,
  sums: gradSumsWorkgroupVec4,
  threadsPerSlice: (g) => g.C / 4,
  loadsPerChannel: (g) => g.M,
  dispatch(_device, p) {
    const C4 = p.geom.C / 4;
    const lanes = statsWorkgroupVec4.reflection().workgroupSize[0];
    return { params: { C4, M: p.geom.M, chunk: p.chunk }, grid: [Math.ceil(C4 / lanes), p.slices] };
  },
};

/** Versions 2–4's vec4 elementwise shapes: groups of four that share a channel, or are four consecutive ones. */
const vec4Elementwise = (g: Geometry) => g.count % 4 === 0 && (g.inner % 4 === 0 || (g.inner === 1 && g.C % 4 === 0));
const VEC4_OR_SCALAR = (g: Geometry) => (vec4Elementwise(g) ? VEC4_ELEMENTWISE : SCALAR_ELEMENTWISE);
/** Version 4's first stages and elementwise passes: rows, runs, or one thread per (channel, slice). */
const v4Stage = (g: Geometry) => (g.inner === 1 && g.C % 4 === 0 ? ROWS : g.inner % 4 === 0 ? RUNS : THREAD);
const v4Elementwise = (g: Geometry, r: ReductionPlan): ElementwisePath =>
  r.stage === ROWS ? ROWS_ELEMENTWISE : VEC4_OR_SCALAR(g);

export type KernelVersion = 1 | 2 | 3 | 4 | 5;
export const KERNEL_VERSIONS: readonly KernelVersion[] = [1, 2, 3, 4, 5];

/** A dev table that runs ghost batches as the default table does (they have no kernels of their own). */
const ghostAware = (t: Omit<KernelTable, 'inference'>): KernelTable => ({
  name: t.name,
  inference: () => 'coefficients',
  reduction: (g, d, ghosts) => (ghosts > 1 ? ghostReduction(g, ghosts) : t.reduction(g, d, 1)),
  elementwise: (g, r) => (r.ghosts > 1 ? SCALAR_ELEMENTWISE : t.elementwise(g, r)),
});

export const VERSIONS: Record<KernelVersion, KernelTable> = {
  1: ghostAware({
    name: 'v1',
    reduction(g, d) {
      return withSlices(
        g,
        WORKGROUP,
        workgroupSlices(g.M, g.C, statsWorkgroup.threadsPerWorkgroup(), 1, d.maxPerDimension),
        false,
      );
    },
    elementwise: () => SCALAR_ELEMENTWISE,
  }),
  2: ghostAware({
    name: 'v2',
    reduction(g, d) {
      if (g.inner === 1 && g.C % 4 === 0) {
        const [lanes, rows] = statsWorkgroupVec4.reflection().workgroupSize;
        return withSlices(g, WORKGROUP_VEC4, workgroupSlices(g.M, g.C, rows, 4 * lanes, d.maxPerDimension), false);
      }
      return VERSIONS[1].reduction(g, d, 1);
    },
    elementwise: VEC4_OR_SCALAR,
  }),
  3: ghostAware({
    name: 'v3',
    reduction: (g) => withSlices(g, THREAD, threadSlices(g, THREAD), false),
    elementwise: VEC4_OR_SCALAR,
  }),
  // Version 4: as many slices as fill a large GPU, merge levels of 32, a serial finalize.
  4: ghostAware({
    name: 'v4',
    reduction(g) {
      const stage = v4Stage(g);
      return withSlices(g, stage, threadSlices(g, stage), true);
    },
    elementwise: v4Elementwise,
  }),
  5: DEFAULT_TABLE,
};

/**
 * Version 5's GPU plan on any device (as if it were not a fallback adapter): for the tests and
 * benchmarks that exercise the tree finalize on SwiftShader.
 */
export const V5_GPU: KernelTable = {
  name: 'v5-gpu',
  inference: (d) => DEFAULT_TABLE.inference({ ...d, fallback: false }),
  reduction: (g, d, ghosts) => DEFAULT_TABLE.reduction(g, { ...d, fallback: false }, ghosts),
  elementwise: DEFAULT_TABLE.elementwise,
  workgroupSize: (g, r, d) => DEFAULT_TABLE.workgroupSize!(g, r, { ...d, fallback: false }),
};
