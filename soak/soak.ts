#!/usr/bin/env node
/**
 * npm run soak -- [--minutes N] [--json OUT.json]
 *
 * Runs a training loop of three BatchNorm layers (NHWC, NCHW, [N,C]; one of them Batch Renorm)
 * continuously in Node through Dawn, with float64 CPU twins, and checks:
 * - memory: live GPU buffers (creations minus destructions, counted on the device) and the JS heap
 *   after a forced collection, which must not grow;
 * - correctness: at every checkpoint the float64 CPU twins take the GPU's state, both run one
 *   step on the same batch, and their running statistics must agree (between checkpoints only the
 *   GPU runs: over thousands of steps, f32 and float64 running averages drift apart by rounding,
 *   which says nothing about the kernels);
 * - throughput: steps per second in the last window against the first, which must not decay.
 * Prints the figures and ends with "soak: N passed, M failed"; exits 1 on any failure.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { nodeGpu } from '../src/cli/nodeGpu';
import { requestBatchNormDevice } from '../src/device';
import { BatchNorm } from '../src/module/batchnorm';
import { CpuBatchNorm } from '../src/cpu/batchnorm';
import { scaledError } from '../src/conformance/golden';
import { WEBGPU_TOLERANCE } from '../src/conformance/webgpuBackend';
import type { Layout } from '../src/layout';
import type { BatchNormOptions } from '../src/options';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '2' }, json: { type: 'string' } } });
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error(`--minutes must be > 0; got ${values.minutes}`);

const gc = (globalThis as { gc?: () => void }).gc;
const device = await requestBatchNormDevice({ gpu: await nodeGpu() });

// Count live buffers on this device: every creation, minus every destroy().
let liveBuffers = 0;
const create = device.createBuffer.bind(device);
device.createBuffer = (d: GPUBufferDescriptor) => {
  const b = create(d);
  liveBuffers++;
  const destroy = b.destroy.bind(b);
  let done = false;
  b.destroy = () => {
    if (!done) {
      done = true;
      liveBuffers--;
    }
    destroy();
  };
  return b;
};

interface Layer {
  layout: Layout;
  shape: number[];
  gpu: BatchNorm;
  cpu: CpuBatchNorm;
  x: GPUBuffer;
  y: GPUBuffer;
  dy: GPUBuffer;
  dx: GPUBuffer;
  n: number;
}
const specs: [Layout, number[], BatchNormOptions][] = [
  ['NHWC', [16, 8, 8, 32], {}],
  ['NCHW', [16, 24, 8, 8], { renorm: { rmax: 2, dmax: 1 } }],
  ['NC', [64, 100], { momentum: null }],
];
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const layers: Layer[] = specs.map(([layout, shape, options]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const C = layout === 'NHWC' ? shape[3] : shape[1];
  const buf = (what: string) => device.createBuffer({ label: `soak.${layout}.${what}`, size: n * 4, usage });
  return {
    layout,
    shape,
    n,
    gpu: new BatchNorm(device, C, options),
    cpu: new CpuBatchNorm(C, options),
    x: buf('x'),
    y: buf('y'),
    dy: buf('dy'),
    dx: buf('dx'),
  };
});

let seed = 1;
const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296;

function heapMB(): number {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

interface Checkpoint {
  second: number;
  steps: number;
  stepsPerSecond: number;
  liveBuffers: number;
  heapMB: number;
  maxStatError: number;
}
const checkpoints: Checkpoint[] = [];
const t0 = performance.now();
const end = t0 + minutes * 60_000;
const every = Math.min(10_000, (minutes * 60_000) / 6);
let steps = 0,
  windowSteps = 0,
  windowStart = t0,
  nextCheck = t0 + every;
const baselineBuffers = liveBuffers;

/** One step of one layer on the GPU (and on its CPU twin when `twin`). */
async function step(l: Layer, training: boolean, twin: boolean): Promise<void> {
  const x = Float32Array.from({ length: l.n }, () => (random() - 0.5) * 4 + 3);
  const dy = Float32Array.from({ length: l.n }, () => random() - 0.5);
  device.queue.writeBuffer(l.x, 0, x);
  device.queue.writeBuffer(l.dy, 0, dy);
  l.gpu.train(training);
  await l.gpu.forward(l.x, l.y, l.shape, l.layout);
  await l.gpu.backward(l.x, l.dy, l.dx);
  if (twin) l.cpu.train(training).forward(x, l.shape, l.layout);
}

while (performance.now() < end) {
  for (const l of layers) await step(l, steps % 8 !== 7, false);
  steps++;
  windowSteps++;
  const now = performance.now();
  if (now >= nextCheck || now >= end) {
    let maxStatError = 0;
    for (const l of layers) {
      l.cpu.loadStateDict(await l.gpu.stateDict());
      await step(l, true, true);
      const sd = await l.gpu.stateDict();
      maxStatError = Math.max(
        maxStatError,
        scaledError(sd.running_mean as Float32Array, l.cpu.runningMean),
        scaledError(sd[l.gpu.spreadKey] as Float32Array, l.cpu.runningSpread),
      );
    }
    checkpoints.push({
      second: Math.round((now - t0) / 1000),
      steps,
      stepsPerSecond: windowSteps / ((now - windowStart) / 1000),
      liveBuffers: liveBuffers - baselineBuffers,
      heapMB: heapMB(),
      maxStatError,
    });
    const c = checkpoints[checkpoints.length - 1];
    console.log(
      `t=${String(c.second).padStart(5)} s  steps ${String(c.steps).padStart(7)}  ${c.stepsPerSecond.toFixed(1).padStart(7)} steps/s  live buffers +${c.liveBuffers}  heap ${c.heapMB.toFixed(1)} MB  stats error ${c.maxStatError.toExponential(1)}`,
    );
    windowSteps = 0;
    windowStart = performance.now();
    nextCheck = windowStart + every;
  }
}

const first = checkpoints[0],
  last = checkpoints[checkpoints.length - 1];
const warm = checkpoints[Math.min(1, checkpoints.length - 1)];
// Throughput of whole windows, averaged: the first window (pipeline creation) is left out.
const rates = checkpoints.slice(1).map((c) => c.stepsPerSecond);
const third = Math.max(1, Math.floor(rates.length / 3));
const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
const earlyRate = avg(rates.slice(0, third)),
  lateRate = avg(rates.slice(-third));
const checks: [string, boolean, string][] = [
  [
    'GPU buffers do not leak',
    last.liveBuffers <= first.liveBuffers,
    `live buffers above baseline: first checkpoint ${first.liveBuffers}, last ${last.liveBuffers}`,
  ],
  [
    'JS heap does not grow',
    last.heapMB - warm.heapMB < 16,
    `heap ${warm.heapMB.toFixed(1)} MB -> ${last.heapMB.toFixed(1)} MB${gc ? '' : ' (run with node --expose-gc for exact figures)'}`,
  ],
  [
    'running statistics match the CPU path',
    checkpoints.every((c) => c.maxStatError <= WEBGPU_TOLERANCE),
    `largest scaled error ${Math.max(...checkpoints.map((c) => c.maxStatError)).toExponential(1)} (tolerance ${WEBGPU_TOLERANCE})`,
  ],
  [
    'throughput does not decay',
    lateRate >= 0.7 * earlyRate,
    `${earlyRate.toFixed(1)} steps/s (after warm-up, first third) -> ${lateRate.toFixed(1)} (last third)`,
  ],
];
for (const [name, ok, detail] of checks) console.log(`${ok ? 'PASS' : 'FAIL'} ${name}: ${detail}`);
const failed = checks.filter((c) => !c[1]).length;
const adapter = device.adapterInfo;
if (values.json) {
  writeFileSync(
    values.json,
    JSON.stringify(
      {
        adapter: `${adapter.vendor} ${adapter.architecture}`,
        minutes,
        steps,
        checkpoints,
        checks: checks.map(([name, ok, detail]) => ({ name, ok, detail })),
      },
      null,
      2,
    ),
  );
}
console.log(`soak: ${minutes} min, ${steps} steps of 3 layers on ${adapter.vendor} ${adapter.architecture}`);
for (const l of layers) {
  l.gpu.destroy();
  for (const b of [l.x, l.y, l.dy, l.dx]) b.destroy();
}
device.destroy();
console.log(`soak: ${checks.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
