/**
 * `npm run bench -- --plan-report [--shapes resnet50,mlp] [--batch 64] [--fit RUN.json] [--json F]`
 *
 * Times nothing. For every op × layout × shape it builds the dispatch sequences that plans encode
 * (src/plan/sequences.ts, on small stand-in tensors: the geometry, grids and workspace are the
 * shape's own), of version 4 and of version 5 as it runs on a GPU, and reports per op:
 * - `dispatch_count`: the dependent dispatches of one call (one compute pass);
 * - the workgroups of each dispatch;
 * - `serial_steps`: the longest chain of dependent loads one thread makes in a merge or finalize
 *   (the partials it merges in turn);
 * - the DRAM bytes;
 * - the time the cost model below predicts on an H200, for v4 and v5.
 *
 * The model (BENCHMARKS.md, "Kernel version 5: the cost model"): a call's dispatches run one after
 * another, each costing
 *     LAUNCH + max(bytes / BW, chain · RT)
 * with LAUNCH = 1.7 µs (a dependent dispatch on the H200, bench/dispatch_cost.mjs), BW the
 * bandwidth and RT the latency of one dependent round trip to L2; `chain` is the dispatch's serial
 * steps, or for the one-scalar-load-per-thread reductions (stats_thread, grad_sums_thread) the
 * loads each thread makes in turn. BW is taken two ways: "as-run", the copy kernel's rate at that
 * tensor size in the v4 H200 run (bench/results/h200-final: 1.3 TB/s at 17–26 MB, 4.1 TB/s at 205
 * MB, between them interpolated in log size), and "ideal", 4.0 TB/s at every size. RT is fitted by
 * least squares (relative error) to that run's v4 times (`--fit` redoes the fit from any bench
 * JSON and prints how each row fits).
 */
import { readFileSync } from 'node:fs';
import { geometry, type Layout } from '../src/layout';
import { placeholder } from '../src/gpu/buffers';
import type { Dispatch } from '../src/gpu/kernel';
import {
  backwardDispatches,
  forwardEvalDispatches,
  forwardTrainDispatches,
  kernelPlan,
  workspaceBytes,
  type KernelPlan,
} from '../src/plan/sequences';
import { finalizeTree, type KernelTable } from '../src/plan/table';
import { VERSIONS, V5_GPU } from '../dev/kernels/versions';
import { layoutsFor } from './shapes';
import { median } from './timer';

export type PlanOp = 'forward-train' | 'inference' | 'backward';
const PLAN_OPS: PlanOp[] = ['forward-train', 'inference', 'backward'];

export interface PlanDispatch {
  kernel: string;
  workgroups: number;
  /** Partials one thread merges in turn (merges and finalizes; 0 elsewhere). */
  serial: number;
  /** The chain the model charges RT for: `serial`, or the loads of a one-load-in-flight reduction thread. */
  chain: number;
  bytes: number;
}

export interface PlanRow {
  op: PlanOp;
  layout: Layout;
  shape: string;
  version: string;
  dispatch_count: number;
  workgroups: number[];
  serial_steps: number;
  dram_bytes: number;
  dispatches: PlanDispatch[];
  /** The model's ms (as-run bandwidth), and for version 5 at the ideal bandwidth too. */
  predicted_ms?: number;
  predicted_ideal_ms?: number;
}

/** The model's constants. RT_US is the least-squares fit to the v4 H200 run (`--fit bench/results/h200-final/ours.json`). */
export const LAUNCH_US = 1.7;
export const IDEAL_GBPS = 4000;
export const RT_US = 1.16;
/** The copy kernel's rate in the v4 H200 run, by tensor MB (bench/results/h200-final/ours.json: 2·bytes / copy_ms, fastest per size). */
export const AS_RUN_COPY: readonly (readonly [mb: number, gbps: number])[] = [
  [16.8, 1302],
  [25.7, 1308],
  [205.5, 4141],
];

/** The as-run bandwidth at a tensor of `mb` MB: the copy's rate, interpolated in log size, clamped at the ends. */
export function asRunGbps(mb: number, c: readonly (readonly [number, number])[] = AS_RUN_COPY): number {
  if (mb <= c[0][0]) return c[0][1];
  for (let i = 1; i < c.length; i++) {
    if (mb <= c[i][0]) {
      const f = Math.log(mb / c[i - 1][0]) / Math.log(c[i][0] / c[i - 1][0]);
      return c[i - 1][1] + f * (c[i][1] - c[i - 1][1]);
    }
  }
  return c[c.length - 1][1];
}

/** Predicted ms of a row: `gbps` the bandwidth, `rt` µs per dependent round trip. */
export function predictMs(row: PlanRow, gbps: number, rt = RT_US): number {
  let us = 0;
  for (const d of row.dispatches) us += LAUNCH_US + Math.max(d.bytes / (gbps * 1e3), d.chain * rt);
  return us / 1000;
}

const tensorMB = (shape: string) => (shape.split('x').reduce((a, b) => a * Number(b), 1) * 4) / 1e6;

/**
 * What each dispatch of a sequence does, by kernel: its serial steps, model chain and bytes. `N`
 * tensor bytes; the reduction plan gives the partials each merge and finalize reads.
 */
function annotate(l: KernelPlan, d: readonly Dispatch[]): PlanDispatch[] {
  const { r, g } = l;
  const N = g.count * 4;
  const C = g.C;
  // Partials per channel before each merge level, and after the last.
  const counts = [r.slices, ...r.levels];
  let level = 0;
  return d.map((x) => {
    const kernel = x.label.replace(/^bn\./, '');
    const workgroups = x.grid[0] * x.grid[1] * x.grid[2];
    const unit = kernel.startsWith('grad_sums') || kernel.startsWith('backward') ? 8 : 16;
    const last = counts[counts.length - 1];
    let serial = 0,
      chain = 0,
      bytes = 0;
    if (kernel === 'stats_merge' || kernel === 'grad_sums_merge') {
      serial = Math.ceil(counts[level] / counts[level + 1]);
      bytes = (counts[level] + counts[level + 1]) * C * unit;
      level++;
    } else if (kernel.endsWith('finalize') || kernel.endsWith('finalize_tree')) {
      const w = finalizeTree(r, last, r.ghosts);
      serial = w === null ? (r.ghosts > 1 ? r.spg : last) : Math.ceil(last / w);
      bytes = last * C * unit + C * 48;
    } else if (kernel.startsWith('stats_')) {
      bytes = N + r.slices * C * unit;
      if (kernel === 'stats_thread') chain = r.chunk;
    } else if (kernel.startsWith('grad_sums_')) {
      bytes = 2 * N + r.slices * C * unit;
      if (kernel === 'grad_sums_thread') chain = r.chunk;
    } else if (kernel.startsWith('apply_')) bytes = 2 * N;
    else if (kernel.startsWith('dx_')) bytes = 3 * N;
    else bytes = C * 48; // eval_coeffs, step_state
    return { kernel, workgroups, serial, chain: Math.max(chain, serial), bytes };
  });
}

/** Stand-in buffers for building a shape's dispatches: bind groups need buffers, not the tensor's size. */
function standIns(device: GPUDevice, l: KernelPlan) {
  const made: GPUBuffer[] = [];
  const buf = (label: string, size: number, usage = GPUBufferUsage.STORAGE) => {
    const b = device.createBuffer({ label: `bench.plan-report.${label}`, size, usage });
    made.push(b);
    return { buffer: b, offset: 0, size };
  };
  const t = () => buf('tensor', 64);
  const c = () => buf('channel', Math.ceil((l.g.C * 4) / 16) * 16);
  const common = {
    x: t(),
    y: t(),
    z: placeholder(device, 7),
    stats: buf('stats', l.g.C * 32),
    gamma: c(),
    beta: c(),
    runningMean: c(),
    runningSpread: c(),
  };
  const workspace = buf('workspace', workspaceBytes(l.r));
  const train = {
    ...common,
    runningMeanOut: placeholder(device, 8),
    runningSpreadOut: placeholder(device, 9),
    step: buf('step', 32, GPUBufferUsage.UNIFORM),
    workspace,
  };
  const grads = {
    x: common.x,
    dy: t(),
    dx: t(),
    y: placeholder(device, 6),
    dz: placeholder(device, 7),
    stats: common.stats,
    gamma: common.gamma,
    dgamma: c(),
    dbeta: c(),
    workspace,
  };
  return { common, train, grads, made };
}

/** The plan rows of one table over `shapes` (B×H×W×C in NHWC and NCHW, N×C). */
export function planRows(device: GPUDevice, table: KernelTable, version: string, shapes: string[]): PlanRow[] {
  const rows: PlanRow[] = [];
  for (const shape of shapes) {
    for (const [layout, dims] of layoutsFor(shape)) {
      const l = kernelPlan(device, table, geometry(layout, dims));
      const s = standIns(device, l);
      const owned: GPUBuffer[] = [];
      const seqs: Record<PlanOp, Dispatch[]> = {
        'forward-train': forwardTrainDispatches(device, l, s.train, 1e-5, 0, owned),
        inference: forwardEvalDispatches(device, l, s.common, 1e-5, 0, owned),
        backward: backwardDispatches(device, l, s.grads, true, false, owned),
      };
      for (const op of PLAN_OPS) {
        const dispatches = annotate(l, seqs[op]);
        rows.push({
          op,
          layout,
          shape,
          version,
          dispatch_count: dispatches.length,
          workgroups: dispatches.map((d) => d.workgroups),
          serial_steps: Math.max(0, ...dispatches.map((d) => d.serial)),
          dram_bytes: dispatches.reduce((a, d) => a + d.bytes, 0),
          dispatches,
        });
      }
      for (const b of [...owned, ...s.made]) b.destroy();
    }
  }
  return rows;
}

interface Measured {
  op: string;
  layout: string;
  shape: string;
  dtype: string;
  version: number;
  ours_ms: number;
  copy_ms: number;
}

/** A run's copy rates by tensor MB (the fastest per size), as AS_RUN_COPY holds the v4 H200 run's. */
function copyRates(rows: Measured[]): [number, number][] {
  const best = new Map<number, number>();
  for (const r of rows) {
    const mb = tensorMB(r.shape);
    best.set(mb, Math.max(best.get(mb) ?? 0, (2 * mb) / r.copy_ms));
  }
  return [...best].sort((a, b) => a[0] - b[0]);
}

const key = (r: { op: string; layout: string; shape: string }) => `${r.op} ${r.layout} ${r.shape}`;

/** RT (µs) that minimises the squared relative error of the as-run prediction over `pairs`, by a 0.01 µs grid. */
export function fitRt(
  pairs: { row: PlanRow; ms: number }[],
  copy: readonly (readonly [number, number])[] = AS_RUN_COPY,
): number {
  let best = 0,
    bestErr = Infinity;
  for (let rt = 0; rt <= 5; rt += 0.01) {
    let e = 0;
    for (const p of pairs) e += ((predictMs(p.row, asRunGbps(tensorMB(p.row.shape), copy), rt) - p.ms) / p.ms) ** 2;
    if (e < bestErr) [best, bestErr] = [rt, e];
  }
  return Math.round(best * 100) / 100;
}

export const PLAN_HEADER =
  'plan op            layout shape            disp v4/v5  serial v4/v5    MB   v4 pred  v5 pred  v5 ideal  workgroups v5';

export async function planReport(
  device: GPUDevice,
  shapes: string[],
  fitFile: string | undefined,
  log: (s: string) => void,
): Promise<{ rows: PlanRow[]; fit: unknown }> {
  const v4 = planRows(device, VERSIONS[4], '4', shapes);
  const v5 = planRows(device, V5_GPU, '5', shapes);
  let rt = RT_US;
  let copy: readonly (readonly [number, number])[] = AS_RUN_COPY;
  let fit: unknown = null;
  if (fitFile) {
    const all = (JSON.parse(readFileSync(fitFile, 'utf8')) as { rows: Measured[] }).rows.filter(
      (m) => m.dtype === 'f32',
    );
    const measured = all.filter((m) => m.version === 4);
    const byKey = new Map(v4.map((r) => [key(r), r]));
    const pairs = measured.flatMap((m) => {
      const row = byKey.get(key(m));
      return row ? [{ row, ms: m.ours_ms }] : [];
    });
    if (!pairs.length) throw new Error(`${fitFile} has no v4 f32 rows of these shapes; give --shapes that it measured`);
    // The file's own copy rates are its as-run bandwidths.
    copy = copyRates(all);
    log(`fit: as-run copy GB/s by tensor MB: ${copy.map(([mb, g]) => `${mb.toFixed(1)}: ${g.toFixed(0)}`).join(', ')}`);
    rt = fitRt(pairs, copy);
    log(`fit: RT = ${rt} µs over ${pairs.length} v4 rows of ${fitFile} (file constant RT_US = ${RT_US})`);
    const ratios = pairs.map((p) => {
      const pred = predictMs(p.row, asRunGbps(tensorMB(p.row.shape), copy), rt);
      log(
        `fit ${key(p.row).padEnd(38)} measured ${p.ms.toFixed(3)}  predicted ${pred.toFixed(3)}  ratio ${(pred / p.ms).toFixed(2)}`,
      );
      return { row: key(p.row), measured: p.ms, predicted: pred };
    });
    for (const op of PLAN_OPS) {
      const r = ratios.filter((x) => x.row.startsWith(`${op} `)).map((x) => x.predicted / x.measured);
      if (r.length)
        log(
          `fit ${op}: predicted/measured median ${median(r).toFixed(2)}, range ${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)} over ${r.length} rows`,
        );
    }
    // The model's v5 predictions (with the fitted RT) against v5 rows, where the file has them.
    const v5ByKey = new Map(v5.map((r) => [key(r), r]));
    const checks = all.flatMap((m) => {
      const row = m.version === 5 ? v5ByKey.get(key(m)) : undefined;
      if (!row) return [];
      const pred = predictMs(row, asRunGbps(tensorMB(row.shape), copy), rt);
      log(
        `check v5 ${key(row).padEnd(38)} measured ${m.ours_ms.toFixed(3)}  predicted ${pred.toFixed(3)}  ratio ${(pred / m.ours_ms).toFixed(2)}`,
      );
      return [{ row: key(row), measured: m.ours_ms, predicted: pred }];
    });
    fit = { rt_us: rt, rows: ratios, v5: checks };
  }
  log(PLAN_HEADER);
  const rows: PlanRow[] = [];
  v5.forEach((r5, i) => {
    const r4 = v4[i];
    const mb = tensorMB(r5.shape);
    const p4 = predictMs(r4, asRunGbps(mb, copy), rt);
    const p5 = predictMs(r5, asRunGbps(mb, copy), rt);
    const ideal = predictMs(r5, IDEAL_GBPS, rt);
    log(
      `plan ${r5.op.padEnd(13)} ${r5.layout.padEnd(6)} ${r5.shape.padEnd(16)} ${`${r4.dispatch_count}/${r5.dispatch_count}`.padStart(10)} ${`${r4.serial_steps}/${r5.serial_steps}`.padStart(13)} ${mb.toFixed(1).padStart(5)} ${p4.toFixed(3).padStart(9)} ${p5.toFixed(3).padStart(8)} ${ideal.toFixed(3).padStart(9)}  ${r5.workgroups.join('·')}`,
    );
    rows.push({ ...r4, predicted_ms: p4 }, { ...r5, predicted_ms: p5, predicted_ideal_ms: ideal });
  });
  return { rows, fit };
}
