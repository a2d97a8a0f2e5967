/**
 * The encoder-level contract of plans, as scenarios that run on any device: the browser project
 * runs them on Chromium's WebGPU, test/node/node-runtime.test.ts on Dawn in Node.
 */
import { BatchNorm, type BatchNormStep } from '../src/batchnorm';
import { CpuBatchNorm } from '../src/cpu/batchnorm';
import { readFloats } from '../src/gpu/buffers';
import { scaledError } from '../src/conformance/golden';
import { permute, shapeInLayout, type Layout } from '../src/layout';
import { renormSchedule, type BatchNormOptions } from '../src/options';
import type { StateDict, StateDictInput } from '../src/moduleBase';
import { normals, rng } from './util/random';

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function upload(device: GPUDevice, label: string, data: ArrayLike<number> | number): GPUBuffer {
  const n = typeof data === 'number' ? data : data.length;
  const b = device.createBuffer({ label, size: Math.max(16, n * 4), usage: USAGE(), mappedAtCreation: true });
  if (typeof data !== 'number') new Float32Array(b.getMappedRange(), 0, n).set(data);
  b.unmap();
  return b;
}

/** One layer: a module, its float64 twin, and per-step tensors (NCHW-ordered host data). */
export interface Layer {
  name: string;
  layout: Layout;
  /** [N, C, ...spatial] */
  nchw: number[];
  options: BatchNormOptions;
  init: StateDictInput;
}

export const LAYERS: Layer[] = [
  {
    name: 'NHWC renorm, schedule',
    layout: 'NHWC',
    nchw: [4, 8, 5, 3],
    options: {
      renorm: { schedule: renormSchedule({ rmaxSteps: [0, 2], dmaxSteps: [0, 2], rmaxEnd: 1.5, dmaxEnd: 0.5 }) },
    },
    init: {
      weight: [1, 1.5, 0.5, 2, 1, 1, 0.8, 1.2],
      bias: [0, 0.1, -0.1, 0.2, 0, 0, 0.3, -0.3],
      running_mean: [0.5, -0.5, 1, -1, 0, 0.2, -0.2, 0.1],
      running_std: [0.3, 0.5, 2, 3, 1, 0.7, 1.5, 0.2],
      num_batches_tracked: 0,
    },
  },
  {
    name: 'NCHW cumulative average',
    layout: 'NCHW',
    nchw: [3, 6, 4, 4],
    options: { momentum: null },
    init: {
      weight: [1, 2, 3, 0.5, 1, 1],
      bias: [0, 0, 1, -1, 0.5, 0],
      running_mean: [0, 0, 0, 0, 0, 0],
      running_var: [1, 1, 1, 1, 1, 1],
      num_batches_tracked: 0,
    },
  },
];

export interface StepData {
  x: Float64Array;
  dy: Float64Array;
}

/** Seeded steps of float32-exact data, per channel offset and scale so channels differ. */
export function stepData(l: Layer, steps: number, seed = 11): StepData[] {
  const r = rng(seed);
  const n = l.nchw.reduce((a, b) => a * b, 1);
  const inner = l.nchw.slice(2).reduce((a, b) => a * b, 1);
  return Array.from({ length: steps }, () => ({
    x: normals(r, n).map((v, i) =>
      Math.fround(v * (1 + (Math.floor(i / inner) % 3)) + (Math.floor(i / inner) % l.nchw[1]) - 2),
    ),
    dy: normals(r, n),
  }));
}

/** A layer's tensors on the GPU for each step, in its layout. */
export function gpuTensors(device: GPUDevice, l: Layer, data: StepData[]) {
  const n = l.nchw.reduce((a, b) => a * b, 1);
  return data.map((d, s) => ({
    x: upload(device, `${l.name}.x${s}`, permute(d.x, l.nchw, l.layout)),
    dy: upload(device, `${l.name}.dy${s}`, permute(d.dy, l.nchw, l.layout)),
    y: upload(device, `${l.name}.y${s}`, n),
    dx: upload(device, `${l.name}.dx${s}`, n),
  }));
}

export interface Outcome {
  state: StateDict;
  weightGrad: Float32Array;
  biasGrad: Float32Array;
  /** y and dx of the last step, in NCHW order. */
  y: Float64Array;
  dx: Float64Array;
}

async function outcome(
  device: GPUDevice,
  l: Layer,
  bn: BatchNorm,
  last: { y: GPUBuffer; dx: GPUBuffer },
): Promise<Outcome> {
  const n = l.nchw.reduce((a, b) => a * b, 1),
    C = l.nchw[1];
  return {
    state: await bn.stateDict(),
    weightGrad: await readFloats(device, { buffer: bn.weightGrad }, C),
    biasGrad: await readFloats(device, { buffer: bn.biasGrad }, C),
    y: permute(await readFloats(device, { buffer: last.y }, n), l.nchw, l.layout, true),
    dx: permute(await readFloats(device, { buffer: last.dx }, n), l.nchw, l.layout, true),
  };
}

/** Steps run as awaited module calls, one layer after the other within each step. */
export async function awaitedRun(device: GPUDevice, layers: Layer[], data: StepData[][]): Promise<Outcome[]> {
  const mods = await Promise.all(
    layers.map(async (l) => {
      const bn = new BatchNorm(device, l.nchw[1], l.options);
      await bn.loadStateDict(l.init);
      return bn;
    }),
  );
  const t = layers.map((l, i) => gpuTensors(device, l, data[i]));
  for (let s = 0; s < data[0].length; s++) {
    for (let i = 0; i < layers.length; i++)
      await mods[i].forward(t[i][s].x, t[i][s].y, shapeInLayout(layers[i].nchw, layers[i].layout), layers[i].layout);
    for (let i = layers.length - 1; i >= 0; i--) await mods[i].backward(t[i][s].x, t[i][s].dy, t[i][s].dx);
  }
  const out = await Promise.all(layers.map((l, i) => outcome(device, l, mods[i], t[i][t[i].length - 1])));
  mods.forEach((m) => m.destroy());
  return out;
}

/** The same steps encoded through plans into one command buffer, submitted once. */
export async function encodedRun(
  device: GPUDevice,
  layers: Layer[],
  data: StepData[][],
): Promise<{ outcomes: Outcome[]; mods: BatchNorm[]; steps: BatchNormStep[][] }> {
  const mods = await Promise.all(
    layers.map(async (l) => {
      const bn = new BatchNorm(device, l.nchw[1], l.options);
      await bn.loadStateDict(l.init);
      return bn;
    }),
  );
  const t = layers.map((l, i) => gpuTensors(device, l, data[i]));
  const steps = layers.map((l, i) =>
    t[i].map((b) => mods[i].plan({ shape: shapeInLayout(l.nchw, l.layout), layout: l.layout, ...b })),
  );
  const enc = device.createCommandEncoder({ label: 'test.one-step-buffer' });
  for (let s = 0; s < data[0].length; s++) {
    for (let i = 0; i < layers.length; i++) steps[i][s].encodeForward(enc);
    for (let i = layers.length - 1; i >= 0; i--) steps[i][s].encodeBackward(enc);
  }
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  const outcomes = await Promise.all(layers.map((l, i) => outcome(device, l, mods[i], t[i][t[i].length - 1])));
  return { outcomes, mods, steps };
}

/** The float64 CPU twins of the same steps. */
export function cpuRun(
  layers: Layer[],
  data: StepData[][],
): {
  state: StateDict<Float64Array>;
  dgamma: Float64Array;
  dbeta: Float64Array;
  y: Float64Array;
  dx: Float64Array;
  r: Float64Array;
  d: Float64Array;
}[] {
  return layers.map((l, i) => {
    const cpu = new CpuBatchNorm(l.nchw[1], l.options);
    cpu.loadStateDict(l.init);
    let y: Float64Array = new Float64Array();
    let g: { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } = { dx: y, dgamma: y, dbeta: y };
    for (const d of data[i]) {
      y = cpu.forward(d.x, l.nchw, 'NCHW');
      g = cpu.backward(d.x, d.dy);
    }
    const c = cpu.lastCorrection()!;
    return { state: cpu.stateDict(), dgamma: g.dgamma, dbeta: g.dbeta, y, dx: g.dx, r: c.r, d: c.d };
  });
}

/** Largest scaled error of each field of a GPU outcome against the CPU's. */
export function errors(gpu: Outcome, cpu: ReturnType<typeof cpuRun>[number]): Record<string, number> {
  const e: Record<string, number> = {
    y: scaledError(gpu.y, cpu.y),
    dx: scaledError(gpu.dx, cpu.dx),
    dgamma: scaledError(gpu.weightGrad, cpu.dgamma),
    dbeta: scaledError(gpu.biasGrad, cpu.dbeta),
  };
  for (const k of ['running_mean', 'running_var', 'running_std'] as const)
    if (cpu.state[k]) e[k] = scaledError(gpu.state[k]!, cpu.state[k]!);
  return e;
}
