/**
 * The beyond-the-peers features against the float64 CPU path, in both layouts: per-activation
 * statistics, fused epilogues, ghost batches, inference folding. Each scenario runs training and eval steps from the same state on both paths
 * (src/conformance/compare.ts).
 */
import { describe, expect, it } from 'vitest';
import { compareGpuCpu, type Scenario } from '../../src/conformance/compare';
import { gpuDevice } from './device';
import { makeScenario } from '../util/scenarios';
import { upload } from '../util/sync-check';
import { normals, rng } from '../util/random';
import { BatchNorm } from '../../src/module/batchnorm';
import { foldBatchNorm } from '../../src/fold/host';
import { readBuffer } from '../../src/gpu/buffers';
import { scaledError } from '../../src/conformance/golden';
import { BatchSizeError, BufferError, DestroyedError, OptionError, ShapeError } from '../../src/errors';
import type { BatchNormOptions } from '../../src/options';
import { CpuBatchNorm } from '../../src/cpu/batchnorm';
import { permute } from '../../src/conformance/layouts';
import { statsByteLength } from '../../src/plan/params';
import { encodeBackward, encodeForwardTrain } from '../../src/functional';

/** Same bound as gpu-vs-cpu.test.ts: f32 against float64, scaled by each array's largest value. */
const TOL = 1e-5;

async function check(s: Scenario): Promise<void> {
  const errors = await compareGpuCpu(await gpuDevice(), s);
  expect(Object.keys(errors).length).toBeGreaterThan(0);
  for (const [k, e] of Object.entries(errors)) expect(e, `${k}: ${JSON.stringify(errors)}`).toBeLessThanOrEqual(TOL);
}

describe('per-activation statistics', () => {
  const SHAPES: [string, number[]][] = [
    ['2x3x4x5', [2, 3, 4, 5]],
    ['7x8x3x3 (rows path: C·H·W % 4 == 0)', [7, 8, 3, 3]],
    ['5x4x13', [5, 4, 13]],
    ['3x2x2x3x3 (5-D)', [3, 2, 2, 3, 3]],
  ];
  for (const layout of ['NCHW', 'NHWC'] as const) {
    for (const [name, shape] of SHAPES) {
      it(`${name} ${layout} train+eval`, () =>
        check(makeScenario(11, layout, shape, { perActivation: true }, [true, true, false])));
    }
    it(`renorm ${layout}`, () =>
      check(
        makeScenario(12, layout, [6, 4, 3, 3], { perActivation: true, renorm: { rmax: 1.5, dmax: 0.5 } }, [
          true,
          true,
          false,
        ]),
      ));
    it(`keras, no affine ${layout}`, () =>
      check(
        makeScenario(13, layout, [4, 3, 2, 2], { perActivation: true, convention: 'keras', affine: false }, [
          true,
          false,
        ]),
      ));
  }
});

describe('fused epilogues', () => {
  // Every shipped path: rows (channels-last, C % 4 == 0), runs (channels-first, H·W % 4 == 0), and
  // the thread reduction with scalar or vec4 elementwise passes.
  const SHAPES: [string, number[]][] = [
    ['4x8x3x5', [4, 8, 3, 5]],
    ['3x6x4x4', [3, 6, 4, 4]],
    ['3x5x3x3', [3, 5, 3, 3]],
    ['33x12 ([N, C])', [33, 12]],
  ];
  for (const epilogue of ['relu', 'add_relu'] as const) {
    for (const layout of ['NCHW', 'NHWC'] as const) {
      for (const [name, shape] of SHAPES) {
        it(`${epilogue} ${name} ${layout} train+eval`, () =>
          check(makeScenario(31, layout, shape, { epilogue }, [true, true, false])));
      }
      it(`${epilogue} renorm ${layout}`, () =>
        check(
          makeScenario(32, layout, [5, 8, 3, 3], { epilogue, renorm: { rmax: 1.5, dmax: 0.5 } }, [true, true, false]),
        ));
      it(`${epilogue} per-activation, no affine ${layout}`, () =>
        check(makeScenario(33, layout, [6, 4, 2, 3], { epilogue, perActivation: true, affine: false }, [true, false])));
    }
  }
});

describe('ghost batch norm (virtualBatchSize)', () => {
  const CASES: [string, number[], BatchNormOptions][] = [
    ['k 2, 6x5x3x3', [6, 5, 3, 3], { virtualBatchSize: 2 }],
    ['k 4, 8x8x2x2', [8, 8, 2, 2], { virtualBatchSize: 4 }],
    ['k 1 (per-sample), 4x3x3x4', [4, 3, 3, 4], { virtualBatchSize: 1 }],
    ['k = N (one ghost), 4x6x2x3', [4, 6, 2, 3], { virtualBatchSize: 4 }],
    ['[N, C] k 8, 32x12', [32, 12], { virtualBatchSize: 8 }],
    ['keras, k 3, 9x4x2x2', [9, 4, 2, 2], { virtualBatchSize: 3, convention: 'keras' }],
    ['renorm, k 2, 6x4x3x3', [6, 4, 3, 3], { virtualBatchSize: 2, renorm: { rmax: 1.5, dmax: 0.5 } }],
    ['relu epilogue, k 2, 4x4x3x3', [4, 4, 3, 3], { virtualBatchSize: 2, epilogue: 'relu' }],
    ['per-activation, k 3, 6x2x2x2', [6, 2, 2, 2], { virtualBatchSize: 3, perActivation: true }],
    ['no running statistics, k 2, 4x3x4x4', [4, 3, 4, 4], { virtualBatchSize: 2, trackRunningStats: false }],
  ];
  for (const layout of ['NCHW', 'NHWC'] as const)
    for (const [name, shape, options] of CASES)
      it(`${name} ${layout} train+eval`, () => check(makeScenario(71, layout, shape, options, [true, true, false])));

  it('refusals: N not a multiple of k in training (any N in eval), ghosts with sync', async () => {
    const device = await gpuDevice();
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
    const b = () => device.createBuffer({ size: 8 * 4 * 9 * 4, usage });
    const t = { x: b(), y: b() };
    const bn = new BatchNorm(device, 4, { virtualBatchSize: 4 });
    await expect(bn.forward(t.x, t.y, [6, 4, 3, 3], 'NCHW')).rejects.toThrow(BatchSizeError);
    bn.eval();
    await bn.forward(t.x, t.y, [6, 4, 3, 3], 'NCHW');
    expect(() => bn.plan({ shape: [8, 4, 3, 3], layout: 'NCHW', x: b(), y: b(), sync: { batch: 16 } })).toThrow(
      OptionError,
    );
    bn.destroy();
  });
});

describe('inference folding on the GPU', () => {
  /** A module after two training steps: non-trivial γ, β and running statistics. */
  async function trained(device: GPUDevice, C: number, options: BatchNormOptions) {
    const s = makeScenario(21, 'NCHW', [4, C, 3, 3], options, [true, true]);
    const bn = new BatchNorm(device, C, options);
    await bn.loadStateDict(s.init);
    const x = upload(device, s.steps[0].x);
    const y = upload(device, s.steps[0].x);
    for (const st of s.steps) {
      device.queue.writeBuffer(x, 0, Float32Array.from(st.x));
      await bn.forward(x, y, s.shape, 'NCHW');
    }
    return bn.eval();
  }

  for (const [name, options] of [
    ['batch norm', {}],
    ['renorm', { renorm: { rmax: 2, dmax: 1 } }],
    ['keras, no affine', { convention: 'keras', affine: false }],
  ] as [string, BatchNormOptions][]) {
    for (const weightLayout of ['OIHW', 'HWIO'] as const) {
      it(`${name}, ${weightLayout}: the GPU fold equals foldBatchNorm on the module's state`, async () => {
        const device = await gpuDevice();
        const C = 6;
        const bn = await trained(device, C, options);
        const r = rng(4);
        const weightShape = weightLayout === 'OIHW' ? [C, 5, 3, 3] : [3, 3, 5, C];
        const w = normals(r, C * 45);
        const b = normals(r, C);
        const weightOut = upload(device, new Float32Array(w.length));
        const biasOut = upload(device, new Float32Array(C));
        await bn.fold({
          weight: upload(device, w),
          weightShape,
          weightLayout,
          bias: upload(device, b),
          weightOut,
          biasOut,
        });
        const want = foldBatchNorm({ weight: w, weightShape, weightLayout, bias: b }, await bn.stateDict(), {
          eps: bn.options.eps,
        });
        expect(scaledError(await readBuffer(device, weightOut), want.weight)).toBeLessThan(1e-6);
        expect(scaledError(await readBuffer(device, biasOut), want.bias)).toBeLessThan(1e-6);
        bn.destroy();
      });
    }
  }

  it('a plan encodes into the caller’s encoder; refusals are typed and write nothing', async () => {
    const device = await gpuDevice();
    const bn = await trained(device, 4, {});
    const w = upload(device, normals(rng(2), 8));
    const weightOut = upload(device, new Float32Array(8));
    const biasOut = upload(device, new Float32Array(4));
    const layer = { weight: w, weightShape: [4, 2], weightLayout: 'OIHW' as const, weightOut, biasOut };
    const plan = bn.planFold(layer);
    const enc = device.createCommandEncoder();
    plan.encode(enc);
    device.queue.submit([enc.finish()]);
    const want = foldBatchNorm({ ...layer, weight: await readBuffer(device, w) }, await bn.stateDict(), { eps: 1e-5 });
    expect(scaledError(await readBuffer(device, weightOut), want.weight)).toBeLessThan(1e-6);
    expect(() => bn.planFold({ ...layer, weightOut: w })).toThrow(BufferError);
    expect(() => bn.planFold({ ...layer, biasOut: bn.runningMean })).toThrow(BufferError);
    expect(() => bn.planFold({ ...layer, weightShape: [2, 4] })).toThrow(ShapeError);
    const free = new BatchNorm(device, 4, { trackRunningStats: false });
    expect(() => free.planFold(layer)).toThrow(OptionError);
    free.destroy();
    bn.destroy();
    expect(() => plan.encode(device.createCommandEncoder())).toThrow(DestroyedError);
    await expect(bn.fold(layer)).rejects.toThrow(DestroyedError);
  });
});

describe('fused epilogues through plans and the functional kernels', () => {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const shape = [4, 6, 3, 4];
  const count = 4 * 6 * 12;

  it('a planned add_relu step (forward + backward in one command buffer) matches the CPU path', async () => {
    const device = await gpuDevice();
    const s = makeScenario(41, 'NCHW', shape, { epilogue: 'add_relu' }, [true]);
    const st = s.steps[0];
    const cpu = new CpuBatchNorm(6, { epilogue: 'add_relu' });
    cpu.loadStateDict(s.init);
    const want = cpu.forward(st.x, shape, 'NCHW', st.z);
    const wantG = cpu.backward(st.x, st.dy);
    const bn = new BatchNorm(device, 6, { epilogue: 'add_relu' });
    await bn.loadStateDict(s.init);
    const t = {
      x: upload(device, st.x),
      y: upload(device, new Float32Array(count)),
      z: upload(device, st.z!),
      dy: upload(device, st.dy),
      dx: upload(device, new Float32Array(count)),
      dz: upload(device, new Float32Array(count)),
    };
    const step = bn.plan({ shape, layout: 'NCHW', ...t });
    const enc = device.createCommandEncoder();
    step.encodeForward(enc);
    step.encodeBackward(enc);
    device.queue.submit([enc.finish()]);
    expect(scaledError(await readBuffer(device, t.y), want)).toBeLessThan(1e-5);
    expect(scaledError(await readBuffer(device, t.dx), wantG.dx)).toBeLessThan(1e-5);
    expect(scaledError(await readBuffer(device, t.dz), wantG.dz!)).toBeLessThan(1e-5);
    expect(scaledError(await readBuffer(device, bn.weightGrad), wantG.dgamma)).toBeLessThan(1e-5);
    bn.destroy();
  });

  it('the functional kernels take epilogue, z, y and dz', async () => {
    const device = await gpuDevice();
    const s = makeScenario(42, 'NHWC', shape, { epilogue: 'relu', affine: false, trackRunningStats: false }, [true]);
    const st = s.steps[0];
    const cpu = new CpuBatchNorm(6, { epilogue: 'relu', affine: false, trackRunningStats: false });
    const nhwc = [4, 3, 4, 6];
    const x = permute(st.x, shape, 'NHWC');
    const dy = permute(st.dy, shape, 'NHWC');
    const want = cpu.forward(x, nhwc, 'NHWC');
    const wantG = cpu.backward(x, dy);
    const b = {
      x: upload(device, x),
      y: upload(device, new Float32Array(count)),
      dy: upload(device, dy),
      dx: upload(device, new Float32Array(count)),
      stats: device.createBuffer({ size: statsByteLength(6), usage }),
    };
    const enc = device.createCommandEncoder();
    encodeForwardTrain(device, enc, { shape: nhwc, layout: 'NHWC', x: b.x, y: b.y, stats: b.stats, epilogue: 'relu' });
    encodeBackward(device, enc, {
      shape: nhwc,
      layout: 'NHWC',
      x: b.x,
      dy: b.dy,
      dx: b.dx,
      stats: b.stats,
      epilogue: 'relu',
      y: b.y,
    });
    device.queue.submit([enc.finish()]);
    expect(scaledError(await readBuffer(device, b.y), want)).toBeLessThan(1e-5);
    expect(scaledError(await readBuffer(device, b.dx), wantG.dx)).toBeLessThan(1e-5);
  });

  it('refusals are typed and say the fix', async () => {
    const device = await gpuDevice();
    const buf = () => upload(device, new Float32Array(count));
    const t = { x: buf(), y: buf(), dy: buf(), dx: buf() };
    const relu = new BatchNorm(device, 6, { epilogue: 'relu' });
    const add = new BatchNorm(device, 6, { epilogue: 'add_relu' });
    expect(() => new BatchNorm(device, 6, { epilogue: 'gelu' as never })).toThrow(OptionError);
    expect(() => relu.plan({ shape, layout: 'NCHW', ...t, z: buf() })).toThrow(/z is the residual/);
    expect(() => relu.plan({ shape, layout: 'NCHW', ...t, dz: buf() })).toThrow(OptionError);
    expect(() => relu.plan({ shape, layout: 'NCHW', x: t.x, dy: t.dy, dx: t.dx })).toThrow(
      /reads the forward's output y/,
    );
    await expect(add.forward(t.x, t.y, shape, 'NCHW')).rejects.toThrow(BufferError);
    await add.forward(t.x, t.y, shape, 'NCHW', buf());
    await expect(add.backward(t.x, t.dy, t.dx)).rejects.toThrow(/dz is required/);
    expect(() => add.plan({ shape, layout: 'NCHW', ...t, z: t.y, dz: buf() })).toThrow(BufferError);
    const stats = device.createBuffer({ size: statsByteLength(6), usage });
    const enc = device.createCommandEncoder();
    expect(() =>
      encodeBackward(device, enc, { shape, layout: 'NCHW', x: t.x, dy: t.dy, dx: t.dx, stats, epilogue: 'relu' }),
    ).toThrow(/y is required/);
    expect(() =>
      encodeForwardTrain(device, enc, { shape, layout: 'NCHW', x: t.x, y: t.y, stats, epilogue: 'add_relu' }),
    ).toThrow(/z is required/);
    relu.destroy();
    add.destroy();
  });
});
