/**
 * The benchmark itself, runtime-neutral: it runs in a Chromium page (with TF.js beside it) or in
 * Node through Dawn. Every op is validated against the float64 CPU path before it is timed.
 *
 * Timing: GPU timestamp queries around `iters` back-to-back ops in one submission when the device
 * has 'timestamp-query'; otherwise the wall clock from submit to onSubmittedWorkDone around the
 * same submission. Each figure is the median of `reps` such submissions, per op. TF.js can only be
 * timed by the wall clock (its ops dispatched, then its queue drained), so the speedup over it
 * compares wall clock with wall clock.
 */
import type * as TF from '@tensorflow/tfjs-core';
import { CpuBatchNorm } from '../src/cpu/batchnorm';
import { scaledError } from '../src/conformance/golden';
import { planBackward, planForwardEval, planForwardTrain, statsByteLength, tensorByteLength, workspaceByteLength, type Plan } from '../src/plan/plans';
import { VERSIONS, type KernelVersion } from '../dev/kernels/versions';
import { readFloats, readHalfs } from '../src/gpu/buffers';
import { toHalfArray } from '../src/cpu/f16';
import { F16_OUTPUT_TOLERANCE } from '../src/conformance/f16';
import type { Layout } from '../src/layout';
import { copyEncoder } from './copy';

export type Op = 'forward-train' | 'inference' | 'backward' | 'renorm-forward';
export const OPS: Op[] = ['forward-train', 'inference', 'backward', 'renorm-forward'];

/** Bytes each op must move, in units of the tensor's size (the floors in docs/anchors.md). */
const TRAFFIC: Record<Op, number> = { 'forward-train': 3, inference: 2, backward: 5, 'renorm-forward': 3 };

/** Shapes as B×H×W×C (NHWC/NCHW) or N×C (BatchNorm1d, layout NC). */
export const FULL_SHAPES = ['64x112x112x64', '64x56x56x256', '64x7x7x2048', '4096x1024'];
export const QUICK_SHAPES = ['8x16x16x32', '256x64'];

export interface BenchConfig {
  ops: Op[];
  shapes: string[];
  versions: KernelVersion[];
  /** Tensor element types; f16 runs kernel version 4 where the adapter has shader-f16. */
  dtypes: ('f32' | 'f16')[];
  iters: number;
  reps: number;
  runtime: 'browser' | 'node';
}

export interface Row {
  op: Op;
  layout: Layout;
  shape: string;
  dtype: 'f32' | 'f16';
  version: KernelVersion;
  ours_ms: number;
  /** Wall clock per op, submit to completion: what speedup_vs_tfjs compares, as TF.js is timed so. */
  ours_wall_ms: number;
  tfjs_ms: number | null;
  copy_ms: number;
  bytes: number;
  gbps: number;
  roofline_fraction: number;
  speedup_vs_tfjs: number | null;
  max_error: number;
  timing: 'timestamp' | 'wall';
}

export interface Report { adapter: string; runtime: string; date: string; rows: Row[] }

/** The layouts a shape is run in, and its shape in each. */
export function layoutsFor(shape: string): [Layout, number[]][] {
  const d = shape.split('x').map(Number);
  if (d.length === 2) return [['NC', d]];
  const [b, h, w, c] = d;
  return [['NHWC', [b, h, w, c]], ['NCHW', [b, c, h, w]]];
}

/** Milliseconds of back-to-back GPU work before a timed batch. */
const WARM_MS = 300;

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

class Timer {
  private qs: GPUQuerySet | null = null;
  private resolve: GPUBuffer | null = null;
  private read: GPUBuffer | null = null;
  constructor(private device: GPUDevice) {
    if (device.features.has('timestamp-query')) {
      this.qs = device.createQuerySet({ label: 'bench.timestamps', type: 'timestamp', count: 2 });
      this.resolve = device.createBuffer({ label: 'bench.timestamps.resolve', size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      this.read = device.createBuffer({ label: 'bench.timestamps.read', size: 16, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    }
  }
  get method(): 'timestamp' | 'wall' { return this.qs ? 'timestamp' : 'wall'; }

  /**
   * Median milliseconds per iteration of `encode`, and the wall clock per iteration.
   * With timestamps, all `reps` submissions (each of `iters` ops between two timestamps) are queued
   * back to back, so the GPU never idles between them and keeps its clocks up (idle gaps let a
   * large GPU drop its clocks, which measures the power manager, not the kernel); the wall clock is
   * then the whole batch over reps·iters. Without timestamps each submission is timed alone,
   * submit to onSubmittedWorkDone.
   */
  async time(encode: (e: GPUCommandEncoder) => void, iters: number, reps: number): Promise<{ ms: number; wallMs: number }> {
    const d = this.device;
    const submission = (r: number) => {
      const enc = d.createCommandEncoder({ label: 'bench.timed' });
      if (this.qs) enc.beginComputePass({ label: 'bench.t0', timestampWrites: { querySet: this.qs, beginningOfPassWriteIndex: 2 * r } }).end();
      for (let i = 0; i < iters; i++) encode(enc);
      if (this.qs) enc.beginComputePass({ label: 'bench.t1', timestampWrites: { querySet: this.qs, endOfPassWriteIndex: 2 * r + 1 } }).end();
      return enc.finish({ label: 'bench.timed' });
    };
    const batch = async (): Promise<[number[], number]> => {
      const cbs = Array.from({ length: reps }, (_, r) => submission(r));
      const t0 = performance.now();
      d.queue.submit(cbs);
      await d.queue.onSubmittedWorkDone();
      const wall = (performance.now() - t0) / (reps * iters);
      const enc = d.createCommandEncoder({ label: 'bench.resolve' });
      enc.resolveQuerySet(this.qs!, 0, 2 * reps, this.resolve!, 0);
      enc.copyBufferToBuffer(this.resolve!, 0, this.read!, 0, 16 * reps);
      d.queue.submit([enc.finish({ label: 'bench.resolve' })]);
      await this.read!.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(this.read!.getMappedRange().slice(0, 16 * reps));
      this.read!.unmap();
      return [Array.from({ length: reps }, (_, r) => Number(t[2 * r + 1] - t[2 * r]) / 1e6 / iters), wall];
    };
    if (this.qs) {
      this.ensureCapacity(reps);
      // Warm up until the GPU has been busy for WARM_MS in a row: a GPU that idled while the CPU
      // reference ran needs that long to raise its clocks (seen on an H200: the same copy took
      // 0.099 ms or 0.246 ms depending on what ran before it).
      for (let busy = 0, k = 0; busy < WARM_MS && k < 50; k++) busy += (await batch())[0].reduce((a, b) => a + b, 0) * iters;
      const [ms, wall] = await batch();
      return { ms: median(ms), wallMs: wall };
    }
    const once = async (): Promise<number> => {
      const cb = submission(0);
      const t0 = performance.now();
      d.queue.submit([cb]);
      await d.queue.onSubmittedWorkDone();
      return (performance.now() - t0) / iters;
    };
    await once();
    const t: number[] = [];
    for (let r = 0; r < reps; r++) t.push(await once());
    const m = median(t);
    return { ms: m, wallMs: m };
  }

  private ensureCapacity(reps: number): void {
    if (this.qs!.count >= 2 * reps) return;
    for (const o of [this.qs!, this.resolve!, this.read!]) o.destroy();
    this.qs = this.device.createQuerySet({ label: 'bench.timestamps', type: 'timestamp', count: 2 * reps });
    this.resolve = this.device.createBuffer({ label: 'bench.timestamps.resolve', size: 16 * reps, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.read = this.device.createBuffer({ label: 'bench.timestamps.read', size: 16 * reps, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  }
}

/** A storage buffer holding `data`, or `data` zero bytes. */
function upload(device: GPUDevice, label: string, data: Float32Array | Uint16Array | number): GPUBuffer {
  const bytes = typeof data === 'number' ? data : data.byteLength;
  const b = device.createBuffer({ label, size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
  if (typeof data !== 'number') new Uint8Array(b.getMappedRange(), 0, bytes).set(new Uint8Array(data.buffer, data.byteOffset, bytes));
  b.unmap();
  return b;
}

/** A float32 buffer of `data`, or of `data` zeros. */
const tensor = (device: GPUDevice, label: string, data: Float32Array | number) => upload(device, label, typeof data === 'number' ? data * 4 : data);

/** Deterministic data with per-channel offsets and scales, so validation means something. */
function makeData(n: number, channelOf: (i: number) => number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const c = channelOf(i);
    x[i] = ((s / 4294967296) - 0.5) * (1 + (c % 7)) + (c % 5) - 2;
  }
  return x;
}

type Tf = typeof TF;

/** TF.js's WebGPU batch norm as its users write it: moments + batchNorm, gradients by tf.grads. */
function tfjsOp(tf: Tf, op: Op, layout: Layout, shape: number[], x: Float32Array, dy: Float32Array): (() => TF.Tensor[]) | null {
  if (op === 'renorm-forward') return null;
  const C = layout === 'NHWC' ? shape[3] : shape[1];
  const axes = layout === 'NCHW' ? [0, 2, 3] : layout === 'NHWC' ? [0, 1, 2] : [0];
  const pshape = layout === 'NCHW' ? [1, C, 1, 1] : [C];
  const xt = tf.tensor(x, shape), dyt = tf.tensor(dy, shape);
  const gamma = tf.ones(pshape), beta = tf.zeros(pshape), rm = tf.zeros(pshape), rv = tf.ones(pshape);
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
async function benchTensors(device: GPUDevice, timer: Timer, cfg: BenchConfig, tf: Tf | null, k: Case, log: (s: string) => void): Promise<Row[]> {
  const { shapeName, layout, shape, C, xh, dyh, dtype } = k;
  const rows: Row[] = [];
  const n = xh.length;
  const half = dtype === 'f16';
  const api = half ? 'float16' : 'float32';
  const elem = half ? 2 : 4;
  const data = (label: string, v: Float32Array) => upload(device, label, half ? toHalfArray(v) : v);
  const empty = (label: string) => upload(device, label, tensorByteLength(n, api));
  const x = data('bench.x', xh), y = empty('bench.y'), dy = data('bench.dy', dyh), dx = empty('bench.dx');
  const stats = tensor(device, 'bench.stats', statsByteLength(C) / 4);
  const w = tensor(device, 'bench.weight', new Float32Array(C).fill(1)), b = tensor(device, 'bench.bias', C);
  const dw = tensor(device, 'bench.dweight', C), db = tensor(device, 'bench.dbias', C);
  const rm = tensor(device, 'bench.running_mean', C), rv = tensor(device, 'bench.running_var', new Float32Array(C).fill(1));
  const ws = tensor(device, 'bench.workspace', Math.max(...k.versions.map((v) => workspaceByteLength(device, layout, shape, VERSIONS[v]))) / 4);
  const trm = tensor(device, 'bench.train_running_mean', C), trv = tensor(device, 'bench.train_running_var', new Float32Array(C).fill(1));
  const mu = tensor(device, 'bench.renorm_mu', C), sigma = tensor(device, 'bench.renorm_sigma', new Float32Array(C).fill(1));
  // The yardstick copies the same number of bytes as one tensor.
  const owned: GPUBuffer[] = [];
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

  for (const version of k.versions) {
    const table = VERSIONS[version];
    const common = { layout, shape, x, y, stats, weight: w, bias: b, dtype: api } as const;
    const plans: Record<Op, Plan> = {
      'forward-train': planForwardTrain(device, { ...common, workspace: ws, runningMean: trm, runningVar: trv }, table),
      // momentum 0 keeps mu and sigma fixed, so every timed run sees the validated state.
      'renorm-forward': planForwardTrain(device, { ...common, workspace: ws, runningMean: mu, runningVar: sigma, momentum: 0, renorm: { rmax: 3, dmax: 5 } }, table),
      inference: planForwardEval(device, { ...common, runningMean: rm, runningVar: rv }, table),
      backward: planBackward(device, { layout, shape, x, dy, dx, stats, weight: w, dweight: dw, dbias: db, workspace: ws, dtype: api }, table),
    };
    const encoders = Object.fromEntries(Object.entries(plans).map(([op, p]) => [op, (e: GPUCommandEncoder) => p.encode(e)])) as Record<Op, (e: GPUCommandEncoder) => void>;
    for (const op of cfg.ops) {
      // Validate first: run the op once (backward after a training forward) and compare.
      const v = device.createCommandEncoder({ label: 'bench.validate' });
      if (op === 'backward') encoders['forward-train'](v);
      encoders[op](v);
      device.queue.submit([v.finish({ label: 'bench.validate' })]);
      const out = { buffer: op === 'backward' ? dx : y };
      const got = half ? await readHalfs(device, out, n) : await readFloats(device, out, n);
      const ref = op === 'backward' ? gRef.dx : op === 'inference' ? yEvalRef : op === 'renorm-forward' ? yRenormRef : yRef;
      const maxError = scaledError(got, ref);
      if (!(maxError <= tolerance)) throw new Error(`${op} ${layout} ${shapeName} ${dtype} v${version}: GPU result differs from the CPU path (scaled error ${maxError}); not timing it`);

      // The yardstick is timed right before the op, in the same (warmed-up) state of the GPU.
      const copyMs = (await timer.time(copy, cfg.iters, cfg.reps)).ms;
      const { ms, wallMs } = await timer.time(encoders[op], cfg.iters, cfg.reps);
      let tfMs: number | null = null;
      if (tf && !half && version === k.versions[0]) {
        const f = tfjsOp(tf, op, layout, shape, xh, dyh);
        if (f) tfMs = await timeTfjs(tf, f, Math.max(1, Math.min(cfg.iters, 5)), cfg.reps);
      } else if (tf && !half) {
        tfMs = rows.find((r) => r.op === op)?.tfjs_ms ?? null;
      }
      const bytes = TRAFFIC[op] * n * elem;
      const gbps = bytes / ms / 1e6;
      const row: Row = {
        op, layout, shape: shapeName, dtype, version, ours_ms: ms, ours_wall_ms: wallMs, tfjs_ms: tfMs, copy_ms: copyMs, bytes, gbps,
        roofline_fraction: gbps / ((2 * n * elem) / copyMs / 1e6), speedup_vs_tfjs: tfMs === null ? null : tfMs / wallMs, max_error: maxError, timing: timer.method,
      };
      rows.push(row);
      log(formatRow(row));
    }
    for (const p of Object.values(plans)) p.destroy();
  }
  for (const t of [x, y, dy, dx, stats, w, b, dw, db, rm, rv, ws, mu, sigma, trm, trv, ...owned]) t.destroy();
  return rows;
}

export async function runBench(device: GPUDevice, cfg: BenchConfig, tf: Tf | null, log: (s: string) => void = () => {}): Promise<Report> {
  const timer = new Timer(device);
  const info = device.adapterInfo;
  const rows: Row[] = [];
  for (const shapeName of cfg.shapes) {
    for (const [layout, shape] of layoutsFor(shapeName)) {
      const n = shape.reduce((a, b) => a * b, 1);
      const C = layout === 'NHWC' ? shape[3] : shape[1];
      const inner = layout === 'NCHW' ? shape[2] * shape[3] : 1;
      const channelOf = (i: number) => Math.floor(i / inner) % C;
      const xh = makeData(n, channelOf, 1), dyh = makeData(n, channelOf, 2);
      for (const dtype of cfg.dtypes) {
        const versions = dtype === 'f16' ? cfg.versions.filter((v) => v === 4) : cfg.versions;
        if (!versions.length) continue;
        if (dtype === 'f16' && !device.features.has('shader-f16')) {
          log(`(f16 ${layout} ${shapeName}: not run, the adapter lacks shader-f16)`);
          continue;
        }
        rows.push(...await benchTensors(device, timer, cfg, tf, { shapeName, layout, shape, C, xh, dyh, dtype, versions }, log));
      }
    }
  }
  return {
    adapter: [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' '),
    runtime: cfg.runtime, date: new Date().toISOString(), rows,
  };
}

export const HEADER = 'op              layout shape            dtype v   ours_ms  wall_ms   tfjs_ms   copy_ms     GB/s  roofline  vs_tfjs   error';

export function formatRow(r: Row): string {
  const f = (v: number | null, d = 3) => (v === null ? '-' : v.toFixed(d));
  return `${r.op.padEnd(15)} ${r.layout.padEnd(6)} ${r.shape.padEnd(16)} ${r.dtype.padEnd(5)} ${String(r.version).padStart(1)} ${f(r.ours_ms).padStart(9)} ${f(r.ours_wall_ms).padStart(8)} ${f(r.tfjs_ms).padStart(9)} ${f(r.copy_ms).padStart(9)} ${r.gbps.toFixed(1).padStart(8)} ${(r.roofline_fraction * 100).toFixed(0).padStart(8)}% ${(r.speedup_vs_tfjs === null ? '-' : r.speedup_vs_tfjs.toFixed(1) + 'x').padStart(8)} ${r.max_error.toExponential(0).padStart(7)}`;
}
