/**
 * The beyond-the-peers features against the float64 CPU path, in both layouts: per-activation
 * statistics, inference folding, ... Each scenario runs training and eval steps from the same state on both paths
 * (src/conformance/compare.ts).
 */
import { describe, expect, it } from 'vitest';
import { compareGpuCpu, type Scenario } from '../../src/conformance/compare';
import { gpuDevice } from './device';
import { makeScenario } from '../util/scenarios';
import { normals, rng } from '../util/random';
import { BatchNorm } from '../../src/batchnorm';
import { foldBatchNorm } from '../../src/fold';
import { readBuffer } from '../../src/gpu/buffers';
import { scaledError } from '../../src/conformance/golden';
import { BufferError, DestroyedError, OptionError, ShapeError } from '../../src/errors';
import type { BatchNormOptions } from '../../src/options';

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

describe('inference folding on the GPU', () => {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const upload = (device: GPUDevice, label: string, data: ArrayLike<number>) => {
    const b = device.createBuffer({ label, size: Math.max(16, data.length * 4), usage });
    device.queue.writeBuffer(b, 0, Float32Array.from(data));
    return b;
  };

  /** A module after two training steps: non-trivial γ, β and running statistics. */
  async function trained(device: GPUDevice, C: number, options: BatchNormOptions) {
    const s = makeScenario(21, 'NCHW', [4, C, 3, 3], options, [true, true]);
    const bn = new BatchNorm(device, C, options);
    await bn.loadStateDict(s.init);
    const x = upload(device, 'x', s.steps[0].x);
    const y = upload(device, 'y', s.steps[0].x);
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
        const weightOut = upload(device, 'w.out', new Float32Array(w.length));
        const biasOut = upload(device, 'b.out', new Float32Array(C));
        await bn.fold({
          weight: upload(device, 'w', w),
          weightShape,
          weightLayout,
          bias: upload(device, 'b', b),
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
    const w = upload(device, 'w', normals(rng(2), 8));
    const weightOut = upload(device, 'w.out', new Float32Array(8));
    const biasOut = upload(device, 'b.out', new Float32Array(4));
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
