/**
 * The encoder-level contract of plans, as scenarios that run on any device: the browser project
 * runs them on Chromium's WebGPU, test/node/node-runtime.test.ts on Dawn in Node.
 */
import { BatchNorm } from '../src/module/batchnorm';
import { type BatchNormStep } from '../src/module/step';
import { CpuBatchNorm } from '../src/cpu/batchnorm';
import { readFloats } from '../src/gpu/buffers';
import { scaledError } from '../src/conformance/golden';
import { geometry, type Layout } from '../src/layout';
import { permute, shapeInLayout } from '../src/conformance/layouts';
import { planBackward, planForwardTrain } from '../src/plan/plans';
import { statsByteLength } from '../src/plan/params';
import {
  applyCoefficients,
  backward as backward_,
  batchStats,
  trainCoefficients,
  updateRunning,
} from '../src/cpu/reference';
import { renormSchedule, type BatchNormOptions } from '../src/options';
import type { StateDict, StateDictInput } from '../src/validate/state';
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

/**
 * The plans' rebinding contract, on rotating buffers as TF.js's pool hands them out: one forward
 * and one backward plan, encoded over nine steps on three buffer sets (running statistics out of
 * place, ping-ponged: six combinations), each step equal to the float64 path; once every
 * combination has been seen, no pipeline and no bind group is created.
 */
export async function rotatingBuffers(device: GPUDevice) {
  const shape = [4, 5, 3, 8];
  const g = geometry('NHWC', shape);
  const C = g.C,
    n = g.count;
  const r = rng(5);
  const sets = Array.from({ length: 3 }, (_, s) => {
    const x = normals(r, n).map((v, i) => Math.fround(v * (1 + s) + (i % C) - 3));
    const dy = normals(r, n);
    return {
      xs: x,
      dys: dy,
      x: upload(device, `rot.x${s}`, x),
      dy: upload(device, `rot.dy${s}`, dy),
      y: upload(device, `rot.y${s}`, n),
      dx: upload(device, `rot.dx${s}`, n),
      stats: upload(device, `rot.stats${s}`, statsByteLength(C) / 4),
    };
  });
  const gamma = normals(r, C).map((v) => Math.fround(1 + 0.2 * v));
  const beta = normals(r, C).map((v) => Math.fround(0.1 * v));
  const weight = upload(device, 'rot.weight', gamma);
  const bias = upload(device, 'rot.bias', beta);
  const dweight = upload(device, 'rot.dweight', C);
  const dbias = upload(device, 'rot.dbias', C);
  const running = [0, 1].map((k) => ({
    mean: upload(device, `rot.mean${k}`, new Float64Array(C)),
    var: upload(device, `rot.var${k}`, new Float64Array(C).fill(1)),
  }));
  const s0 = sets[0];
  const forward = planForwardTrain(device, {
    shape,
    layout: 'NHWC',
    x: s0.x,
    y: s0.y,
    stats: s0.stats,
    weight,
    bias,
    runningMean: running[0].mean,
    runningVar: running[0].var,
    runningMeanOut: running[1].mean,
    runningVarOut: running[1].var,
  });
  const backward = planBackward(device, {
    shape,
    layout: 'NHWC',
    x: s0.x,
    dy: s0.dy,
    dx: s0.dx,
    stats: s0.stats,
    weight,
    dweight,
    dbias,
  });
  let bindGroups = 0,
    pipelines = 0;
  const createBindGroup = device.createBindGroup;
  const createComputePipeline = device.createComputePipeline;
  device.createBindGroup = function (this: GPUDevice, d: GPUBindGroupDescriptor) {
    bindGroups++;
    return createBindGroup.call(this, d);
  };
  device.createComputePipeline = function (this: GPUDevice, d: GPUComputePipelineDescriptor) {
    pipelines++;
    return createComputePipeline.call(this, d);
  };
  const worst: number[] = [];
  const steady = { bindGroups: 0, pipelines: 0 };
  const mu = new Float64Array(C),
    sigma2 = new Float64Array(C).fill(1);
  try {
    for (let step = 0; step < 9; step++) {
      if (step === 6) bindGroups = pipelines = 0;
      const s = sets[step % 3];
      const [from, to] = [running[step % 2], running[(step + 1) % 2]];
      const enc = device.createCommandEncoder();
      forward.encode(enc, {
        x: s.x,
        y: s.y,
        stats: s.stats,
        runningMean: from.mean,
        runningVar: from.var,
        runningMeanOut: to.mean,
        runningVarOut: to.var,
      });
      backward.encode(enc, { x: s.x, dy: s.dy, dx: s.dx, stats: s.stats });
      device.queue.submit([enc.finish()]);
      const stats = batchStats(s.xs, g);
      const k = trainCoefficients(stats, gamma, beta, 1e-5, null);
      const grads = backward_(s.xs, s.dys, g, k, gamma, true);
      updateRunning([stats], g.M, 0.1, true, 1e-5, mu, sigma2, false);
      const got = {
        y: await readFloats(device, { buffer: s.y }, n),
        dx: await readFloats(device, { buffer: s.dx }, n),
        dweight: await readFloats(device, { buffer: dweight }, C),
        mean: await readFloats(device, { buffer: to.mean }, C),
        var: await readFloats(device, { buffer: to.var }, C),
      };
      worst.push(
        Math.max(
          scaledError(got.y, applyCoefficients(s.xs, g, k)),
          scaledError(got.dx, grads.dx),
          scaledError(got.dweight, grads.dgamma),
          scaledError(got.mean, mu),
          scaledError(got.var, sigma2),
        ),
      );
    }
    steady.bindGroups = bindGroups;
    steady.pipelines = pipelines;
  } finally {
    device.createBindGroup = createBindGroup;
    device.createComputePipeline = createComputePipeline;
  }
  // What an encode refuses, as planning would.
  const refusals = [
    () => forward.encode(device.createCommandEncoder(), { x: upload(device, 'rot.short', n - 1) }),
    () => forward.encode(device.createCommandEncoder(), { y: s0.x }),
    () => forward.encode(device.createCommandEncoder(), { dy: s0.dy } as never),
    () => backward.encode(device.createCommandEncoder(), { dx: s0.dy }),
  ].map((f) => {
    try {
      f();
      return 'accepted';
    } catch (e) {
      return (e as { code?: string }).code ?? String(e);
    }
  });
  forward.destroy();
  backward.destroy();
  return { worst, steady, refusals };
}
