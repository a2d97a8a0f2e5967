/**
 * The training-step benchmark: the BN layers of a network, forward then backward per step, timed
 * three ways: awaited module calls (each submits and waits), one command buffer per step through
 * plans, and PyTorch (from its JSON, on an NVIDIA GPU, in the same run). Per step it reports wall
 * milliseconds, GPU milliseconds, the CPU time spent encoding per BN call, and the GPU buffers and
 * bind groups created in steady state.
 */
import { BatchNorm } from '../src/module/batchnorm';
import { type BatchNormStep } from '../src/module/step';
import type { Layout } from '../src/layout';
import { median, type Timer } from './timer';
import { RESNET50 } from './shapes';

export interface StackLayer {
  shape: number[];
  layout: Layout;
  count: number;
}

export interface TrainStepRow {
  network: string;
  layout: Layout;
  layers: number;
  way: 'awaited' | 'plans' | 'pytorch';
  wall_ms: number;
  gpu_ms: number | null;
  encode_us_per_call: number | null;
  created_per_step: number | null;
}

/** ResNet-50's 53 BN layers at `batch`, in `layout`. */
export function resnet50Stack(batch: number, layout: 'NHWC' | 'NCHW'): StackLayer[] {
  return RESNET50.map(({ hwc, layers }) => {
    const [h, w, c] = hwc.split('x').map(Number);
    return { shape: layout === 'NHWC' ? [batch, h, w, c] : [batch, c, h, w], layout, count: layers };
  });
}

/** A scaled-down stack for --quick: six layers of three small shapes. */
export function quickStack(layout: 'NHWC' | 'NCHW'): StackLayer[] {
  return [
    [2, 28, 28, 32],
    [2, 14, 14, 64],
    [2, 7, 7, 128],
  ].map(([b, h, w, c]) => ({ shape: layout === 'NHWC' ? [b, h, w, c] : [b, c, h, w], layout, count: 2 }));
}

/** Counts buffer and bind-group creations on `device` while `f` runs. */
async function counting<T>(device: GPUDevice, f: () => Promise<T>): Promise<{ value: T; created: number }> {
  let created = 0;
  const cb = device.createBuffer,
    cg = device.createBindGroup;
  device.createBuffer = (d: GPUBufferDescriptor) => {
    created++;
    return cb.call(device, d);
  };
  device.createBindGroup = (d: GPUBindGroupDescriptor) => {
    created++;
    return cg.call(device, d);
  };
  try {
    return { value: await f(), created };
  } finally {
    device.createBuffer = cb;
    device.createBindGroup = cg;
  }
}

export async function trainStep(
  device: GPUDevice,
  timer: Timer,
  network: string,
  stack: StackLayer[],
  reps: number,
  log: (s: string) => void,
): Promise<TrainStepRow[]> {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  // One set of tensors per shape, shared by that shape's layers (each layer has its own module).
  const tensors = stack.map((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const make = (what: string, fill: boolean) => {
      const b = device.createBuffer({ label: `bench.step${i}.${what}`, size: n * 4, usage, mappedAtCreation: fill });
      if (fill) {
        const a = new Float32Array(b.getMappedRange());
        for (let k = 0; k < n; k++) a[k] = Math.sin(k * 0.7 + i) * (1 + (k % 5));
        b.unmap();
      }
      return b;
    };
    return { x: make('x', true), y: make('y', false), dy: make('dy', true), dx: make('dx', false) };
  });
  const C = (s: StackLayer) => (s.layout === 'NCHW' || s.shape.length === 2 ? s.shape[1] : s.shape[s.shape.length - 1]);
  const modules = () =>
    stack.flatMap((s, i) =>
      Array.from({ length: s.count }, () => ({ bn: new BatchNorm(device, C(s)), s, t: tensors[i] })),
    );
  const layers = stack.reduce((a, s) => a + s.count, 0);
  const rows: TrainStepRow[] = [];

  // 1. Awaited module calls.
  const awaited = modules();
  const awaitedStep = async () => {
    for (const m of awaited) await m.bn.forward(m.t.x, m.t.y, m.s.shape, m.s.layout);
    for (let k = awaited.length - 1; k >= 0; k--)
      await awaited[k].bn.backward(awaited[k].t.x, awaited[k].t.dy, awaited[k].t.dx);
  };
  await awaitedStep();
  const times: number[] = [];
  const counted = await counting(device, async () => {
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await awaitedStep();
      times.push(performance.now() - t0);
    }
  });
  rows.push({
    network,
    layout: stack[0].layout,
    layers,
    way: 'awaited',
    wall_ms: median(times),
    gpu_ms: null,
    encode_us_per_call: null,
    created_per_step: counted.created / reps,
  });
  for (const m of awaited) m.bn.destroy();

  // 2. One command buffer per step, through plans.
  const planned = modules();
  const steps: BatchNormStep[] = planned.map((m) => m.bn.plan({ shape: m.s.shape, layout: m.s.layout, ...m.t }));
  const encodeStep = (enc: GPUCommandEncoder) => {
    for (const s of steps) s.encodeForward(enc);
    for (let k = steps.length - 1; k >= 0; k--) steps[k].encodeBackward(enc);
  };
  const oneStep = async () => {
    const enc = device.createCommandEncoder({ label: 'bench.train-step' });
    const t0 = performance.now();
    encodeStep(enc);
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  /**
   * Encoding alone, ENCODE_STEPS steps into one encoder that is never submitted: a browser's clock
   * ticks in 0.1 ms, longer than one step's encoding, so a single step would read 0 or 0.1 ms.
   */
  const ENCODE_STEPS = 20;
  const encodeOnly = () => {
    const enc = device.createCommandEncoder({ label: 'bench.train-step.encode-only' });
    const t0 = performance.now();
    for (let k = 0; k < ENCODE_STEPS; k++) encodeStep(enc);
    const ms = performance.now() - t0;
    enc.finish();
    return ms / ENCODE_STEPS;
  };
  await oneStep();
  const walls: number[] = [],
    encodes: number[] = [];
  const c2 = await counting(device, async () => {
    for (let r = 0; r < reps; r++) walls.push(await oneStep());
    // Encoding is timed once the device is idle: on a CPU adapter (SwiftShader) a step still
    // running would share the cores with the encoder and time the GPU, not the encoding.
    await device.queue.onSubmittedWorkDone();
    for (let r = 0; r < reps; r++) encodes.push(encodeOnly());
  });
  const gpu = await timer.time(encodeStep, 1, Math.max(3, Math.min(reps, 20)));
  rows.push({
    network,
    layout: stack[0].layout,
    layers,
    way: 'plans',
    wall_ms: median(walls),
    gpu_ms: timer.method === 'timestamp' ? gpu.ms : null,
    encode_us_per_call: (median(encodes) * 1000) / (2 * layers),
    created_per_step: c2.created / reps,
  });
  for (const m of planned) m.bn.destroy();
  for (const t of tensors) for (const b of Object.values(t)) b.destroy();
  for (const r of rows) log(formatTrainStep(r));
  return rows;
}

export const TRAIN_STEP_HEADER =
  'train-step network       layout layers way        wall_ms   gpu_ms  encode_us/call  created/step';

export function formatTrainStep(r: TrainStepRow): string {
  const f = (v: number | null, d = 3) => (v === null ? '-' : v.toFixed(d));
  return `train-step ${r.network.padEnd(14)} ${r.layout.padEnd(6)} ${String(r.layers).padStart(6)} ${r.way.padEnd(8)} ${f(r.wall_ms).padStart(9)} ${f(r.gpu_ms).padStart(8)} ${f(r.encode_us_per_call, 1).padStart(15)} ${f(r.created_per_step, 1).padStart(13)}`;
}
