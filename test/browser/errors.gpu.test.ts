/**
 * Bad input to the GPU module and the functional kernels: every refusal is a typed error, raised
 * before any GPU state changes, and parameters and running statistics stay bit-identical.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../src/module/batchnorm';
import {
  BatchNormError,
  BatchSizeError,
  BufferError,
  DestroyedError,
  DeviceLostError,
  GpuError,
  LayoutError,
  LimitError,
  OptionError,
  ShapeError,
  StateDictError,
} from '../../src/errors';
import { encodeForwardTrain } from '../../src/functional';
import { statsByteLength } from '../../src/plan/params';
import { requestBatchNormDevice } from '../../src/device';
import type { Layout } from '../../src/layout';
import type { StateDictInput } from '../../src/validate/state';
import { gpuDevice } from './device';

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

function buffer(device: GPUDevice, data: ArrayLike<number> | number, usage = USAGE()): GPUBuffer {
  const n = typeof data === 'number' ? data : data.length;
  const b = device.createBuffer({ label: 'test.buffer', size: Math.max(4, n * 4), usage, mappedAtCreation: true });
  if (typeof data !== 'number') new Float32Array(b.getMappedRange()).set(data);
  b.unmap();
  return b;
}

type Ctor = new (...a: never[]) => BatchNormError;

/** A module after one training step, and a snapshot of everything it holds. */
async function trained(device: GPUDevice) {
  const bn = new BatchNorm(device, 3);
  await bn.loadStateDict({
    weight: [1.25, 0.5, 2],
    bias: [0.1, -0.2, 0.3],
    running_mean: [0.5, -1, 2],
    running_var: [1, 2, 0.5],
    num_batches_tracked: 7,
  });
  const x = buffer(
    device,
    Array.from({ length: 48 }, (_, i) => Math.sin(i) * 3 + (i % 3)),
  );
  const y = buffer(device, 48);
  await bn.forward(x, y, [4, 3, 2, 2], 'NCHW');
  return { bn, x, y };
}

async function snapshot(bn: BatchNorm): Promise<string> {
  const sd = await bn.stateDict();
  return JSON.stringify(
    Object.fromEntries(
      Object.entries(sd).map(([k, v]) => [k, typeof v === 'number' ? v : Array.from(new Uint32Array(v.buffer))]),
    ),
  );
}

describe('BatchNorm module refusals leave the state bit-identical', () => {
  const cases: [string, (d: GPUDevice, m: Awaited<ReturnType<typeof trained>>) => Promise<unknown>, Ctor, RegExp][] = [
    [
      'x too small',
      (d, { bn, y }) => bn.forward(buffer(d, 47), y, [4, 3, 2, 2], 'NCHW'),
      BufferError,
      /x .*holds 188 bytes .* 192 are needed/,
    ],
    [
      'y too small',
      (d, { bn, x }) => bn.forward(x, buffer(d, 40), [4, 3, 2, 2], 'NCHW'),
      BufferError,
      /y .*192 are needed/,
    ],
    [
      'x without STORAGE usage',
      (d, { bn, y }) =>
        bn.forward(buffer(d, 48, GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC), y, [4, 3, 2, 2], 'NCHW'),
      BufferError,
      /STORAGE/,
    ],
    [
      'misaligned offset',
      (d, { bn, y }) => bn.forward({ buffer: buffer(d, 200), offset: 4 }, y, [4, 3, 2, 2], 'NCHW'),
      BufferError,
      /offset 4 must be .*multiple of minStorageBufferOffsetAlignment/,
    ],
    ['in-place x = y', (_d, { bn, x }) => bn.forward(x, x, [4, 3, 2, 2], 'NCHW'), BufferError, /same GPUBuffer/],
    [
      'unknown layout',
      (_d, { bn, x, y }) => bn.forward(x, y, [4, 3, 2, 2], 'NWHC' as Layout),
      LayoutError,
      /layout "NWHC"/,
    ],
    ['rank 1', (_d, { bn, x, y }) => bn.forward(x, y, [48]), ShapeError, /rank 2 to 5/],
    [
      'C different from the module',
      (_d, { bn, x, y }) => bn.forward(x, y, [4, 2, 2, 3], 'NCHW'),
      ShapeError,
      /C = 2 .*built for 3/,
    ],
    [
      'one value per channel in training',
      (d, { bn, y }) => bn.forward(buffer(d, 3), y, [1, 3]),
      BatchSizeError,
      /more than one value per channel/,
    ],
    ['empty batch', (_d, { bn, x, y }) => bn.forward(x, y, [0, 3, 2, 2], 'NCHW'), BatchSizeError, /empty batch/],
    [
      'gamma of the wrong length',
      (_d, { bn }) =>
        bn.loadStateDict({
          weight: [1, 1],
          bias: [0, 0, 0],
          running_mean: [0, 0, 0],
          running_var: [1, 1, 1],
          num_batches_tracked: 0,
        }),
      StateDictError,
      /'weight' has length 2/,
    ],
    [
      'non-finite running_var',
      (_d, { bn }) =>
        bn.loadStateDict({
          weight: [1, 1, 1],
          bias: [0, 0, 0],
          running_mean: [0, 0, 0],
          running_var: [1, Infinity, 1],
          num_batches_tracked: 0,
        }),
      StateDictError,
      /'running_var'/,
    ],
    [
      'missing key',
      (_d, { bn }) =>
        bn.loadStateDict({ weight: [1, 1, 1], bias: [0, 0, 0], running_mean: [0, 0, 0], num_batches_tracked: 0 }),
      StateDictError,
      /missing key 'running_var'/,
    ],
    [
      'extra key',
      (_d, { bn }) =>
        bn.loadStateDict({
          weight: [1, 1, 1],
          bias: [0, 0, 0],
          running_mean: [0, 0, 0],
          running_var: [1, 1, 1],
          num_batches_tracked: 0,
          foo: 1,
        } as StateDictInput),
      StateDictError,
      /unexpected key 'foo'/,
    ],
    ['backward with a short dy', (d, { bn, x }) => bn.backward(x, buffer(d, 10), buffer(d, 48)), BufferError, /dy /],
  ];
  for (const [name, call, type, message] of cases) {
    it(`${name} -> ${type.name}`, async () => {
      const device = await gpuDevice();
      const m = await trained(device);
      const before = await snapshot(m.bn);
      const err = await call(device, m).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(type);
      expect((err as BatchNormError).code).toMatch(/^E_/);
      expect((err as Error).message).toMatch(message);
      expect(await snapshot(m.bn)).toBe(before);
      // The module still works after a refusal.
      await m.bn.forward(m.x, m.y, [4, 3, 2, 2], 'NCHW');
    });
  }
});

describe('faults the WebGPU implementation reports leave the state bit-identical', () => {
  const faults: [string, (m: Awaited<ReturnType<typeof trained>>) => Promise<GPUBuffer>][] = [
    // Encoding: the bind group refers to a buffer of another device.
    [
      'encoding: x from another device',
      async () => {
        const other = await requestBatchNormDevice();
        return buffer(other, 48);
      },
    ],
    // Submission: x was destroyed before the command buffer was submitted.
    [
      'submission: x destroyed',
      async ({ bn }) => {
        const x = buffer(bn.device, 48);
        x.destroy();
        return x;
      },
    ],
  ];
  for (const [name, makeX] of faults) {
    it(`${name} -> GpuError, nothing changed`, async () => {
      const device = await gpuDevice();
      const m = await trained(device);
      const before = await snapshot(m.bn);
      const steps = m.bn.numBatchesTracked;
      const err = await m.bn.forward(await makeX(m), m.y, [4, 3, 2, 2], 'NCHW').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GpuError);
      expect((err as GpuError).code).toBe('E_GPU');
      expect(m.bn.numBatchesTracked).toBe(steps);
      expect(await snapshot(m.bn)).toBe(before);
      await m.bn.forward(m.x, m.y, [4, 3, 2, 2], 'NCHW');
      expect(m.bn.numBatchesTracked).toBe(steps + 1);
    });
  }
});

describe('module options are refused at construction', () => {
  const bad: [string, object][] = [
    ['eps 0', { eps: 0 }],
    ['eps -1e-5', { eps: -1e-5 }],
    ['momentum 1.5', { momentum: 1.5 }],
    ['momentum -0.1', { momentum: -0.1 }],
    ['rmax 0.5', { renorm: { rmax: 0.5 } }],
  ];
  for (const [name, o] of bad) {
    it(`${name} -> OptionError`, async () =>
      expect(() => new BatchNorm(null as unknown as GPUDevice, 3, o)).toThrow(OptionError));
  }
});

describe('functional kernels validate before encoding', () => {
  it('refuses a binding above maxStorageBufferBindingSize with LimitError naming the limit', async () => {
    // The same device seen with a 4 KiB binding limit, so the test needs no giant buffer.
    const real = await gpuDevice();
    const limits: Record<string, number> = {};
    for (const k in real.limits) limits[k] = (real.limits as unknown as Record<string, number>)[k];
    limits.maxStorageBufferBindingSize = 4096;
    const device = new Proxy(real, {
      get(t, k) {
        if (k === 'limits') return limits;
        const v = Reflect.get(t, k);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    const C = 4,
      N = 257; // 4112 bytes: one row more than the binding can hold
    const x = buffer(real, N * C),
      y = buffer(real, N * C),
      small = buffer(real, statsByteLength(C) / 4);
    const enc = real.createCommandEncoder({ label: 'test.limit' });
    expect(() => encodeForwardTrain(device, enc, { layout: 'NC', shape: [N, C], x, y, stats: small })).toThrow(
      LimitError,
    );
    expect(() => encodeForwardTrain(device, enc, { layout: 'NC', shape: [N, C], x, y, stats: small })).toThrow(
      /maxStorageBufferBindingSize \(4096\)/,
    );
  });
  it('refuses weight without bias', async () => {
    const device = await gpuDevice();
    const enc = device.createCommandEncoder({ label: 'test.affine' });
    const x = buffer(device, 12),
      y = buffer(device, 12),
      stats = buffer(device, 24),
      w = buffer(device, 3);
    expect(() => encodeForwardTrain(device, enc, { layout: 'NC', shape: [4, 3], x, y, stats, weight: w })).toThrow(
      OptionError,
    );
  });
});

describe('lifetime', () => {
  it('stateDict / loadStateDict round-trip bit-exactly', async () => {
    const device = await gpuDevice();
    const { bn } = await trained(device);
    const sd = await bn.stateDict();
    const other = new BatchNorm(device, 3);
    await other.loadStateDict(sd);
    expect(await snapshot(other)).toBe(await snapshot(bn));
  });
  it('use after destroy rejects with DestroyedError', async () => {
    const device = await gpuDevice();
    const { bn, x, y } = await trained(device);
    bn.destroy();
    await expect(bn.forward(x, y, [4, 3, 2, 2], 'NCHW')).rejects.toBeInstanceOf(DestroyedError);
    await expect(bn.stateDict()).rejects.toBeInstanceOf(DestroyedError);
  });
  it('a destroyed device makes pending and later calls reject with DeviceLostError', async () => {
    const device = await requestBatchNormDevice();
    const { bn, x, y } = await trained(device);
    const pending = bn.forward(x, y, [4, 3, 2, 2], 'NCHW');
    device.destroy();
    await expect(pending).rejects.toBeInstanceOf(DeviceLostError);
    await expect(bn.forward(x, y, [4, 3, 2, 2], 'NCHW')).rejects.toBeInstanceOf(DeviceLostError);
  });
});
