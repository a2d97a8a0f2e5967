/**
 * The benchmark itself, runtime-neutral: it runs in a Chromium page (with TF.js beside it) or in
 * Node through Dawn. Every op is validated against the float64 CPU path before it is timed, through
 * plans made before timing starts (so timing sees only encoding and the GPU's work).
 *
 * Yardstick: each op's bytes per second (the bytes it must move: forward-train 3N, inference 2N,
 * backward 5N) over the best bandwidth a vec4 copy of the same tensor size reached anywhere in the
 * run (a copy is timed before every op; the best is the steady one: a single copy measured 0.099 or
 * 0.25 ms on an H200 depending on the clocks).
 */
import type * as TF from '@tensorflow/tfjs-core';
import { CpuBatchNorm } from '../src/cpu/batchnorm';
import { scaledError } from '../src/conformance/golden';
import { planBackward, planForwardEval, planForwardTrain, workspaceByteLength } from '../src/plan/plans';
import { statsByteLength, tensorByteLength } from '../src/plan/params';
import { type Plan } from '../src/plan/pass';
import { readFloats, readHalfs } from '../src/gpu/buffers';
import { toHalfArray } from '../src/f16';
import { F16_OUTPUT_TOLERANCE } from '../src/conformance/f16';
import type { Layout } from '../src/layout';
import type { KernelTable } from '../src/plan/table';
import { VERSIONS, type KernelVersion } from '../dev/kernels/versions';
import { copyEncoder } from './copy';
import { layoutsFor, resnetLayers } from './shapes';
import { Timer } from './timer';
import { formatTrainStep, quickStack, resnet50Stack, trainStep, type TrainStepRow } from './train-step';
import { benchEpilogues, formatEpilogue, type EpilogueRow } from './epilogue';

export type Op = 'forward-train' | 'inference' | 'backward' | 'renorm-forward' | 'train-step' | 'epilogues';
export const OPS: Op[] = ['forward-train', 'inference', 'backward', 'renorm-forward', 'train-step', 'epilogues'];
type TensorOp = Exclude<Op, 'train-step' | 'epilogues'>;

/** Bytes each op must move, in units of the tensor's size (the floors in BENCHMARKS.md). */
const TRAFFIC: Record<TensorOp, number> = { 'forward-train': 3, inference: 2, backward: 5, 'renorm-forward': 3 };

export interface BenchConfig {
  ops: Op[];
  shapes: string[];
  versions: KernelVersion[];
  /** Tensor element types; f16 runs where the adapter has shader-f16. */
  dtypes: ('f32' | 'f16')[];
  iters: number;
  reps: number;
  runtime: 'browser' | 'node';
  /** Time each dispatch of each op on its own. */
  profile: boolean;
  /** Milliseconds of continuous heater work before a timed batch after the GPU may have idled (bench/timer.ts). */
  warmMs: number;
  /** Train-step networks: 'resnet50' at `batch`, or the scaled-down stack. */
  trainStep: { network: 'resnet50' | 'quick'; batch: number };
  /** PyTorch's timings from the same run (bench/torch_bn_bench.py --json). */
  torch: TorchReport | null;
}

export interface TorchRow {
  shape: string;
  dtype: string;
  fmt: string;
  fwd_ms: number;
  bwd_ms: number;
  infer_ms: number;
}
export interface TorchReport {
  gpu: string;
  torch: string;
  cudnn: number;
  copy_GBs: number;
  rows: TorchRow[];
  train_step?: { layout: string; ms: number; layers: number }[];
}

export interface Row {
  op: TensorOp;
  layout: Layout;
  shape: string;
  dtype: 'f32' | 'f16';
  version: KernelVersion;
  ours_ms: number;
  /** Wall clock per op over the timed batch, submit to completion: what speedup_vs_tfjs compares. */
  ours_wall_ms: number;
  tfjs_ms: number | null;
  /** The copy of the same size timed before this shape's ops, and the best of the run (the yardstick). */
  copy_ms: number;
  best_copy_ms: number;
  bytes: number;
  gbps: number;
  roofline_fraction: number;
  speedup_vs_tfjs: number | null;
  torch_ms: number | null;
  /** ours / PyTorch: below 1, ours is faster. */
  vs_torch: number | null;
  max_error: number;
  timing: 'timestamp' | 'wall';
  /** Milliseconds the GPU had run without a pause (the timer's heater) when the timed batch began. */
  warm_ms: number;
  /** When the op was timed (epoch ms), to read beside a clock log (scripts/gpu-bench.sh: clocks.csv). */
  timed_at: number;
  /** With --profile: each dispatch's median milliseconds. */
  profile?: { kernel: string; ms: number }[];
}

/** A network's BN work per training step: forward + backward over its layers, ours and PyTorch's. */
export interface NetworkTotal {
  network: string;
  layout: Layout;
  layers: number;
  ours_ms: number;
  torch_ms: number | null;
  vs_torch: number | null;
}

export interface Report {
  adapter: string;
  runtime: string;
  date: string;
  rows: Row[];
  networks: NetworkTotal[];
  trainSteps: TrainStepRow[];
  /** Fused epilogues against batch norm plus separate elementwise kernels (--ops epilogues). */
  epilogues: EpilogueRow[];
}

/** A storage buffer holding `data`, or `data` zero bytes. */
function upload(device: GPUDevice, label: string, data: Float32Array | Uint16Array | number): GPUBuffer {
  const bytes = typeof data === 'number' ? data : data.byteLength;
  const b = device.createBuffer({
    label,
    size: Math.max(16, Math.ceil(bytes / 4) * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    mappedAtCreation: true,
  });
  if (typeof data !== 'number')
    new Uint8Array(b.getMappedRange(), 0, bytes).set(new Uint8Array(data.buffer, data.byteOffset, bytes));
  b.unmap();
  return b;
}

/** A float32 buffer of `data`, or of `data` zeros. */
const tensor = (device: GPUDevice, label: string, data: Float32Array | number) =>
  upload(device, label, typeof data === 'number' ? data * 4 : data);

/** Deterministic data with per-channel offsets and scales, so validation means something. */
function makeData(n: number, channelOf: (i: number) => number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const c = channelOf(i);
    x[i] = (s / 4294967296 - 0.5) * (1 + (c % 7)) + (c % 5) - 2;
  }
  return x;
}

type Tf = typeof TF;

/** TF.js's WebGPU batch norm as its users write it: moments + batchNorm, gradients by tf.grads. */
function tfjsOp(
  tf: Tf,
  op: TensorOp,
  layout: Layout,
  shape: number[],
  x: Float32Array,
  dy: Float32Array,
): (() => TF.Tensor[]) | null {
  if (op === 'renorm-forward') return null;
  const C = layout === 'NHWC' ? shape[3] : shape[1];
  const axes = layout === 'NCHW' ? [0, 2, 3] : layout === 'NHWC' ? [0, 1, 2] : [0];
  const pshape = layout === 'NCHW' ? [1, C, 1, 1] : [C];
  const xt = tf.tensor(x, shape),
    dyt = tf.tensor(dy, shape);
  const gamma = tf.ones(pshape),
    beta = tf.zeros(pshape),
    rm = tf.zeros(pshape),
    rv = tf.ones(pshape);
  const fwd = (a: TF.Tensor, g: TF.Tensor, b: TF.Tensor) => {
    const { mean, variance } = tf.moments(a, axes, layout === 'NCHW');
    // tf.batchNorm's gradient assumes channels-last parameters; NCHW composes the same formula.
    if (layout === 'NCHW') return tf.add(tf.mul(tf.mul(tf.sub(a, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
    return tf.batchNorm(a, mean, variance, b, g, 1e-5);
  };
  if (op === 'forward-train') return () => [fwd(xt, gamma, beta)];
  if (op === 'inference') return () => [tf.batchNorm(xt, rm, rv, beta, gamma, 1e-5)];
  const grads = tf.grads((a: TF.Tensor, g: TF.Tensor, b: TF.Tensor) => tf.sum(tf.mul(fwd(a, g, b), dyt)));
  return () => grads([xt, gamma, beta]);
}

/** Wall clock per op of `reps` rounds of `iters` TF.js ops queued back to back, as ours are timed. */
async function timeTfjs(tf: Tf, f: () => TF.Tensor[], iters: number, reps: number): Promise<number> {
  const backend = tf.backend() as unknown as { device: GPUDevice; commandEncoder: unknown; submitQueue(): void };
  const batch = async () => {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) {
      const outs: TF.Tensor[] = [];
      for (let i = 0; i < iters; i++) outs.push(...tf.tidy(f));
      tf.dispose(outs); // TF.js frees the memory once the queued work that uses it is done
    }
    if (backend.commandEncoder) backend.submitQueue(); // TF.js batches its commands until told
    await backend.device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / (reps * iters);
  };
  await batch();
  return batch();
}

/** PyTorch's time for a row, from its JSON (shape B×H×W×C; [N,C] as N×1×1×C). */
function torchMs(
  torch: TorchReport | null,
  op: TensorOp,
  layout: Layout,
  shape: string,
  dtype: 'f32' | 'f16',
): number | null {
  const key = { 'forward-train': 'fwd_ms', inference: 'infer_ms', backward: 'bwd_ms' } as const;
  if (!torch || op === 'renorm-forward') return null;
  const s = shape.split('x').length === 2 ? shape.replace('x', 'x1x1x') : shape;
  const fmt = layout === 'NCHW' ? 'nchw' : 'nhwc';
  const t = torch.rows.find(
    (r) => r.shape === s && r.fmt === fmt && r.dtype === (dtype === 'f16' ? 'float16' : 'float32'),
  );
  return t ? t[key[op]] : null;
}

interface Case {
  shapeName: string;
  layout: Layout;
  shape: number[];
  C: number;
  xh: Float32Array;
  dyh: Float32Array;
  dtype: 'f32' | 'f16';
  versions: KernelVersion[];
}

/** Validates and times every op and version on one tensor shape, layout and dtype. */
async function benchTensors(
  device: GPUDevice,
  timer: Timer,
  cfg: BenchConfig,
  tf: Tf | null,
  k: Case,
  log: (s: string) => void,
): Promise<Row[]> {
  const { shapeName, layout, shape, C, xh, dyh, dtype } = k;
  const rows: Row[] = [];
  const n = xh.length;
  const half = dtype === 'f16';
  const api = half ? 'float16' : 'float32';
  const elem = half ? 2 : 4;
  const data = (label: string, v: Float32Array) => upload(device, label, half ? toHalfArray(v) : v);
  const empty = (label: string) => upload(device, label, tensorByteLength(n, api));
  const x = data('bench.x', xh),
    y = empty('bench.y'),
    dy = data('bench.dy', dyh),
    dx = empty('bench.dx');
  const stats = tensor(device, 'bench.stats', statsByteLength(C) / 4);
  const w = tensor(device, 'bench.weight', new Float32Array(C).fill(1)),
    b = tensor(device, 'bench.bias', C);
  const dw = tensor(device, 'bench.dweight', C),
    db = tensor(device, 'bench.dbias', C);
  const rm = tensor(device, 'bench.running_mean', C),
    rv = tensor(device, 'bench.running_var', new Float32Array(C).fill(1));
  const ws = tensor(
    device,
    'bench.workspace',
    Math.max(...k.versions.map((v) => workspaceByteLength(device, layout, shape, VERSIONS[v]))) / 4,
  );
  const trm = tensor(device, 'bench.train_running_mean', C),
    trv = tensor(device, 'bench.train_running_var', new Float32Array(C).fill(1));
  const mu = tensor(device, 'bench.renorm_mu', C),
    sigma = tensor(device, 'bench.renorm_sigma', new Float32Array(C).fill(1));
  const owned: GPUBuffer[] = [];
  // The yardstick copies the same number of bytes as one tensor.
  const copy = copyEncoder(device, x, y, Math.floor((n * elem) / 16), owned);

  const cpu = new CpuBatchNorm(C, { dtype: api });
  const yRef = cpu.forward(xh, shape, layout);
  const gRef = cpu.backward(xh, dyh);
  const yRenormRef = new CpuBatchNorm(C, { renorm: { rmax: 3, dmax: 5 }, dtype: api }).forward(xh, shape, layout);
  cpu.eval();
  const yEvalRef = cpu.forward(xh, shape, layout);
  // Running stats as the CPU module holds them after one step, for the inference op.
  device.queue.writeBuffer(rm, 0, Float32Array.from(cpu.runningMean));
  device.queue.writeBuffer(rv, 0, Float32Array.from(cpu.runningSpread));
  const tolerance = half ? F16_OUTPUT_TOLERANCE : 1e-4;
  const ops = cfg.ops.filter((o): o is TensorOp => o !== 'train-step' && o !== 'epilogues');

  const plansOf = (version: KernelVersion): Record<TensorOp, Plan> => {
    const table: KernelTable = VERSIONS[version];
    const common = { layout, shape, x, y, stats, weight: w, bias: b, dtype: api } as const;
    return {
      'forward-train': planForwardTrain(device, { ...common, workspace: ws, runningMean: trm, runningVar: trv }, table),
      // momentum 0 keeps mu and sigma fixed, so every timed run sees the validated state.
      'renorm-forward': planForwardTrain(
        device,
        { ...common, workspace: ws, runningMean: mu, runningVar: sigma, momentum: 0, renorm: { rmax: 3, dmax: 5 } },
        table,
      ),
      inference: planForwardEval(device, { ...common, runningMean: rm, runningVar: rv }, table),
      backward: planBackward(
        device,
        { layout, shape, x, dy, dx, stats, weight: w, dweight: dw, dbias: db, workspace: ws, dtype: api },
        table,
      ),
    };
  };
  const plans = new Map(k.versions.map((v) => [v, plansOf(v)]));

  // Validate every op of every version first, so that timing runs back to back without the CPU
  // work between (the GPU keeps its clocks): run the op once (backward after a training forward)
  // and compare with the float64 CPU path.
  const errors = new Map<string, number>();
  for (const version of k.versions) {
    const p = plans.get(version)!;
    for (const op of ops) {
      const v = device.createCommandEncoder({ label: 'bench.validate' });
      if (op === 'backward') p['forward-train'].encode(v);
      p[op].encode(v);
      device.queue.submit([v.finish({ label: 'bench.validate' })]);
      const out = { buffer: op === 'backward' ? dx : y };
      const got = half ? await readHalfs(device, out, n) : await readFloats(device, out, n);
      const ref =
        op === 'backward' ? gRef.dx : op === 'inference' ? yEvalRef : op === 'renorm-forward' ? yRenormRef : yRef;
      const maxError = scaledError(got, ref);
      if (!(maxError <= tolerance))
        throw new Error(
          `${op} ${layout} ${shapeName} ${dtype} v${version}: GPU result differs from the CPU path (scaled error ${maxError}); not timing it`,
        );
      errors.set(`${op} ${version}`, maxError);
    }
  }

  // The yardstick first (behind the timer's full warm-up), then each op in every version in turn.
  const copyMs = (await timer.time(copy, cfg.iters, cfg.reps)).ms;
  for (const op of ops) {
    let tfMs: number | null = null;
    if (tf && !half) {
      const f = tfjsOp(tf, op, layout, shape, xh, dyh);
      if (f) tfMs = await timeTfjs(tf, f, Math.max(1, Math.min(cfg.iters, 5)), cfg.reps);
    }
    for (const version of k.versions) {
      const plan = plans.get(version)![op];
      const encode = (e: GPUCommandEncoder) => plan.encode(e);
      const timedAt = Date.now();
      const { ms, wallMs, warmMs } = await timer.time(encode, cfg.iters, cfg.reps);
      // The op's pass includes a backward's forward only in validation; timing runs the op alone.
      const profile = cfg.profile
        ? (await timer.profile(plan.dispatches, Math.min(cfg.reps, 10))).map((ms, i) => ({
            kernel: plan.dispatches[i].label,
            ms,
          }))
        : undefined;
      const bytes = TRAFFIC[op] * n * elem;
      const torch = torchMs(cfg.torch, op, layout, shapeName, dtype);
      const row: Row = {
        op,
        layout,
        shape: shapeName,
        dtype,
        version,
        ours_ms: ms,
        ours_wall_ms: wallMs,
        tfjs_ms: tfMs,
        copy_ms: copyMs,
        best_copy_ms: copyMs,
        bytes,
        gbps: bytes / ms / 1e6,
        roofline_fraction: NaN,
        speedup_vs_tfjs: tfMs === null ? null : tfMs / wallMs,
        torch_ms: torch,
        vs_torch: torch === null ? null : ms / torch,
        max_error: errors.get(`${op} ${version}`)!,
        timing: timer.method,
        warm_ms: warmMs,
        timed_at: timedAt,
        ...(profile ? { profile } : {}),
      };
      rows.push(row);
      log(formatRow(row));
      for (const p of profile ?? []) log(`    ${p.kernel.padEnd(28)} ${p.ms.toFixed(4)} ms`);
    }
  }
  for (const p of plans.values()) for (const q of Object.values(p)) q.destroy();
  for (const t of [x, y, dy, dx, stats, w, b, dw, db, rm, rv, ws, mu, sigma, trm, trv, ...owned]) t.destroy();
  return rows;
}

/** The best copy of each tensor size over the run: each row's yardstick. */
function applyYardstick(rows: Row[]): void {
  const best = new Map<number, number>();
  const size = (r: Row) => r.bytes / TRAFFIC[r.op];
  for (const r of rows) best.set(size(r), Math.min(best.get(size(r)) ?? Infinity, r.copy_ms));
  for (const r of rows) {
    r.best_copy_ms = best.get(size(r))!;
    r.roofline_fraction = r.gbps / ((2 * size(r)) / r.best_copy_ms / 1e6);
  }
}

/** ResNet-50's BN work per step (forward + backward over its 53 layers), from the rows of its shapes. */
function networkTotals(rows: Row[]): NetworkTotal[] {
  const out: NetworkTotal[] = [];
  for (const layout of ['NHWC', 'NCHW'] as const) {
    const v = Math.max(...rows.map((r) => r.version));
    const mine = rows.filter(
      (r) => r.layout === layout && r.dtype === 'f32' && r.version === v && resnetLayers(r.shape) > 0,
    );
    const shapes = [...new Set(mine.map((r) => r.shape))];
    const per = (op: TensorOp, s: string) => mine.find((r) => r.op === op && r.shape === s);
    if (shapes.length !== 12 || shapes.some((s) => !per('forward-train', s) || !per('backward', s))) continue;
    let ours = 0,
      torch: number | null = 0,
      layers = 0;
    for (const s of shapes) {
      const n = resnetLayers(s);
      layers += n;
      ours += n * (per('forward-train', s)!.ours_ms + per('backward', s)!.ours_ms);
      const tf = per('forward-train', s)!.torch_ms,
        tb = per('backward', s)!.torch_ms;
      torch = torch === null || tf === null || tb === null ? null : torch + n * (tf + tb);
    }
    out.push({
      network: 'resnet50',
      layout,
      layers,
      ours_ms: ours,
      torch_ms: torch,
      vs_torch: torch === null ? null : ours / torch,
    });
  }
  return out;
}

export async function runBench(
  device: GPUDevice,
  cfg: BenchConfig,
  tf: Tf | null,
  log: (s: string) => void = () => {},
): Promise<Report> {
  const timer = new Timer(device, cfg.warmMs);
  const info = device.adapterInfo;
  const rows: Row[] = [];
  const epilogues: EpilogueRow[] = [];
  const tensorOps = cfg.ops.some((o) => o !== 'train-step' && o !== 'epilogues');
  if (tensorOps || cfg.ops.includes('epilogues')) {
    for (const shapeName of cfg.shapes) {
      for (const [layout, shape] of layoutsFor(shapeName)) {
        const n = shape.reduce((a, b) => a * b, 1);
        const C = layout === 'NHWC' ? shape[3] : shape[1];
        const inner = layout === 'NCHW' ? shape[2] * shape[3] : 1;
        const channelOf = (i: number) => Math.floor(i / inner) % C;
        const xh = makeData(n, channelOf, 1),
          dyh = makeData(n, channelOf, 2);
        for (const dtype of cfg.dtypes) {
          // float16 runs the shipped kernels only.
          const versions = dtype === 'f16' ? cfg.versions.filter((v) => v === 5) : cfg.versions;
          if (!versions.length || !tensorOps) continue;
          if (dtype === 'f16' && !device.features.has('shader-f16')) {
            log(`(f16 ${layout} ${shapeName}: not run, the adapter lacks shader-f16)`);
            continue;
          }
          rows.push(
            ...(await benchTensors(
              device,
              timer,
              cfg,
              tf,
              { shapeName, layout, shape, C, xh, dyh, dtype, versions },
              log,
            )),
          );
        }
        if (cfg.ops.includes('epilogues')) {
          const e = await benchEpilogues(device, timer, layout, shapeName, shape, xh, dyh, cfg.iters, cfg.reps);
          for (const r of e) log(formatEpilogue(r));
          epilogues.push(...e);
        }
      }
    }
    applyYardstick(rows);
  }
  const trainSteps: TrainStepRow[] = [];
  if (cfg.ops.includes('train-step')) {
    for (const layout of ['NHWC', 'NCHW'] as const) {
      const { network, batch } = cfg.trainStep;
      const stack = network === 'resnet50' ? resnet50Stack(batch, layout) : quickStack(layout);
      trainSteps.push(
        ...(await trainStep(
          device,
          timer,
          network === 'resnet50' ? `resnet50 b${batch}` : 'quick stack',
          stack,
          cfg.reps,
          log,
        )),
      );
      const t = cfg.torch?.train_step?.find((s) => s.layout.toUpperCase() === layout);
      if (t && network === 'resnet50') {
        const row: TrainStepRow = {
          network: `resnet50 b${batch}`,
          layout,
          layers: t.layers,
          way: 'pytorch',
          wall_ms: t.ms,
          gpu_ms: t.ms,
          encode_us_per_call: null,
          created_per_step: null,
        };
        trainSteps.push(row);
        log(formatTrainStep(row));
      }
    }
  }
  timer.destroy();
  return {
    adapter: [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' '),
    runtime: cfg.runtime,
    date: new Date().toISOString(),
    rows,
    networks: networkTotals(rows),
    trainSteps,
    epilogues,
  };
}

export const HEADER =
  'op              layout shape            dtype v   ours_ms  wall_ms   tfjs_ms   copy_ms     GB/s  vs_torch  vs_tfjs   error';

export function formatRow(r: Row): string {
  const f = (v: number | null, d = 3) => (v === null ? '-' : v.toFixed(d));
  return `${r.op.padEnd(15)} ${r.layout.padEnd(6)} ${r.shape.padEnd(16)} ${r.dtype.padEnd(5)} ${String(r.version).padStart(1)} ${f(r.ours_ms).padStart(9)} ${f(r.ours_wall_ms).padStart(8)} ${f(r.tfjs_ms).padStart(9)} ${f(r.copy_ms).padStart(9)} ${r.gbps.toFixed(1).padStart(8)} ${(r.vs_torch === null ? '-' : r.vs_torch.toFixed(2) + 'x').padStart(9)} ${(r.speedup_vs_tfjs === null ? '-' : r.speedup_vs_tfjs.toFixed(1) + 'x').padStart(8)} ${r.max_error.toExponential(0).padStart(7)}`;
}

/** The summary lines after the rows: roofline fractions (known only at the end) and network totals. */
export function summary(rep: Report): string[] {
  const lines = rep.rows.map((r) => {
    const copyGbps = (2 * (r.bytes / TRAFFIC[r.op])) / r.best_copy_ms / 1e6;
    return `roofline ${r.op.padEnd(15)} ${r.layout.padEnd(6)} ${r.shape.padEnd(16)} ${r.dtype} v${r.version}: ${(100 * r.roofline_fraction).toFixed(0)}% of the best copy of that size (${copyGbps.toFixed(1)} GB/s)`;
  });
  for (const t of rep.networks)
    lines.push(
      `network ${t.network} ${t.layout}: ${t.layers} BN layers, forward + backward per step ${t.ours_ms.toFixed(3)} ms${t.torch_ms === null ? '' : `; PyTorch ${t.torch_ms.toFixed(3)} ms; ours / PyTorch ${t.vs_torch!.toFixed(2)}`}`,
    );
  return lines;
}
