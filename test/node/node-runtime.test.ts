/**
 * The library in Node through the `webgpu` package (Dawn) on SwiftShader's Vulkan ICD: golden
 * vectors, device loss, and a stress test that interleaves CPU-heavy JavaScript (and garbage, so
 * the collector runs) with dispatches and readbacks; it crashed the process before the fix in
 * requestBatchNormDevice (docs/node-runtime.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { nodeGpu } from '../../src/cli/nodeGpu';
import { requestBatchNormDevice } from '../../src/device';
import { BatchNorm } from '../../src/module/batchnorm';
import { CpuBatchNorm } from '../../src/cpu/batchnorm';
import { DestroyedError, DeviceLostError } from '../../src/errors';
import { readFloats } from '../../src/gpu/buffers';
import { scaledError, type GoldenFile } from '../../src/conformance/golden';
import { runGolden } from '../../src/conformance/runner';
import { webgpuBackend, WEBGPU_TOLERANCE } from '../../src/conformance/webgpuBackend';
import { normals, rng } from '../util/random';
import { awaitedRun, cpuRun, encodedRun, errors, rotatingBuffers, LAYERS, stepData } from '../plans-contract';
import { checkShards } from '../util/sync-check';

let device: GPUDevice;

/** A GPU object that nothing but the library holds: the case that used to crash. */
async function unheldGpu(): Promise<GPU> {
  await nodeGpu(); // sets the ICD and the WebGPU globals
  const { create } = await import('webgpu');
  return create([]);
}

// Adapter and device are requested in beforeAll (dawn-gpu/node-webgpu#13).
beforeAll(async () => {
  device = await requestBatchNormDevice({ gpu: await unheldGpu() });
}, 60_000);
afterAll(() => device?.destroy());

function busy(ms: number): number {
  const end = performance.now() + ms;
  let garbage = 0;
  while (performance.now() < end) garbage += new Float64Array(4096).fill(Math.random()).reduce((a, b) => a + b, 0);
  return garbage;
}

describe('Node runtime (dawn.node)', () => {
  it('plans take their tensors at encode time: rotating buffers give the float64 results, and a steady loop makes no pipelines or bind groups', async () => {
    const r = await rotatingBuffers(device);
    for (const e of r.worst) expect(e).toBeLessThan(1e-5);
    expect(r.steady).toEqual({ bindGroups: 0, pipelines: 0 });
    expect(r.refusals).toEqual(['E_BUFFER_SIZE', 'E_BUFFER_ALIAS', 'E_OPTION', 'E_BUFFER_ALIAS']);
  });
  it('passes the PyTorch golden vectors in NCHW and NHWC', async () => {
    const golden = JSON.parse(
      readFileSync(new URL('../../conformance/pytorch_golden.json', import.meta.url), 'utf8'),
    ) as GoldenFile;
    for (const layout of ['NCHW', 'NHWC'] as const) {
      const rep = await runGolden(webgpuBackend(device), golden, { layout });
      expect(
        rep.failed,
        rep.results
          .filter((r) => !r.passed)
          .map((r) => `${r.name}: ${r.detail}`)
          .join('; '),
      ).toBe(0);
      expect(rep.passed).toBe(golden.cases.length);
    }
  }, 120_000);

  it('stress: 300 iterations of 20 ms busy JS + garbage, BatchNorm forward/backward, readback, CPU check every 25', async () => {
    const shape = [8, 12, 6, 6];
    const n = 8 * 12 * 36;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const mk = (label: string) => device.createBuffer({ label, size: n * 4, usage });
    const [x, y, dy, dx] = ['stress.x', 'stress.y', 'stress.dy', 'stress.dx'].map(mk);
    const gpuBn = new BatchNorm(device, 12);
    const cpuBn = new CpuBatchNorm(12);
    const r = rng(99);
    for (let i = 0; i < 300; i++) {
      busy(20);
      const xs = normals(r, n),
        dys = normals(r, n);
      device.queue.writeBuffer(x, 0, Float32Array.from(xs));
      device.queue.writeBuffer(dy, 0, Float32Array.from(dys));
      gpuBn.train(i % 10 !== 9);
      cpuBn.train(i % 10 !== 9);
      await gpuBn.forward(x, y, shape, 'NCHW');
      await gpuBn.backward(x, dy, dx);
      const got = await readFloats(device, { buffer: dx }, n);
      const yRef = cpuBn.forward(xs, shape, 'NCHW');
      const gRef = cpuBn.backward(xs, dys);
      if (i % 25 === 0 || i === 299) {
        expect(scaledError(await readFloats(device, { buffer: y }, n), yRef)).toBeLessThan(WEBGPU_TOLERANCE);
        expect(scaledError(got, gRef.dx)).toBeLessThan(WEBGPU_TOLERANCE);
        const sd = await gpuBn.stateDict();
        expect(scaledError(sd.running_var as Float32Array, cpuBn.runningSpread)).toBeLessThan(WEBGPU_TOLERANCE);
      }
    }
    expect(gpuBn.numBatchesTracked).toBe(270);
    gpuBn.destroy();
    for (const b of [x, y, dy, dx]) b.destroy();
  }, 300_000);

  it('plans: three steps of two modules in one command buffer equal three awaited steps and the CPU path', async () => {
    const data = LAYERS.map((l, i) => stepData(l, 3, 20 + i));
    const encoded = await encodedRun(device, LAYERS, data);
    const awaited = await awaitedRun(device, LAYERS, data);
    const cpu = cpuRun(LAYERS, data);
    LAYERS.forEach((l, i) => {
      expect(Array.from(encoded.outcomes[i].state.running_mean!)).toEqual(Array.from(awaited[i].state.running_mean!));
      expect(Array.from(encoded.outcomes[i].weightGrad)).toEqual(Array.from(awaited[i].weightGrad));
      expect(encoded.outcomes[i].state.num_batches_tracked).toBe(3);
      for (const [k, e] of Object.entries(errors(encoded.outcomes[i], cpu[i])))
        expect(e, `${l.name} ${k}`).toBeLessThanOrEqual(WEBGPU_TOLERANCE);
    });
    encoded.mods.forEach((m) => m.destroy());
  }, 60_000);

  it('use after destroy() rejects with DestroyedError', async () => {
    const bn = new BatchNorm(device, 3);
    const b = (label: string) => device.createBuffer({ label, size: 48, usage: GPUBufferUsage.STORAGE });
    await bn.forward(b('destroy.x'), b('destroy.y'), [4, 3]);
    bn.destroy();
    await expect(bn.forward(b('destroy.x2'), b('destroy.y2'), [4, 3])).rejects.toBeInstanceOf(DestroyedError);
    await expect(bn.stateDict()).rejects.toBeInstanceOf(DestroyedError);
  });

  it('a destroyed device rejects pending and later calls with DeviceLostError', async () => {
    const d = await requestBatchNormDevice({ gpu: await unheldGpu() });
    const bn = new BatchNorm(d, 3);
    const b = (label: string) => d.createBuffer({ label, size: 48, usage: GPUBufferUsage.STORAGE });
    const x = b('lost.x'),
      y = b('lost.y');
    const pending = bn.forward(x, y, [4, 3]);
    d.destroy();
    await expect(pending).rejects.toBeInstanceOf(DeviceLostError);
    await expect(bn.forward(x, y, [4, 3])).rejects.toBeInstanceOf(DeviceLostError);
  }, 60_000);
});

describe('synchronized batch norm across GPUDevices in Node', () => {
  const devices: Promise<GPUDevice>[] = [];
  const deviceAt = (i: number) => (devices[i] ??= unheldGpu().then((gpu) => requestBatchNormDevice({ gpu })));
  afterAll(async () => {
    for (const d of devices) (await d).destroy();
  });
  it(
    '2 shards (4, 2), NHWC, equal one device and the CPU path',
    () => checkShards(deviceAt, [6, 8, 3, 3], 'NHWC', [4, 2]),
    60_000,
  );
  it(
    '3 shards (3, 1, 3), NCHW, a shard of one sample',
    () => checkShards(deviceAt, [7, 6, 2, 5], 'NCHW', [3, 1, 3]),
    60_000,
  );
});
