/** Batch Renorm specifics on the GPU: the identity case and the module's own schedule. */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../src/module/batchnorm';
import { readFloats } from '../../src/gpu/buffers';
import { renormSchedule } from '../../src/options';
import { normals, rng } from '../util/random';
import { gpuDevice } from './device';

function buffer(device: GPUDevice, data: ArrayLike<number>): GPUBuffer {
  const b = device.createBuffer({
    label: 'test.renorm',
    size: data.length * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    mappedAtCreation: true,
  });
  new Float32Array(b.getMappedRange()).set(data);
  b.unmap();
  return b;
}

async function step(
  device: GPUDevice,
  bn: BatchNorm,
  x: GPUBuffer,
  dy: GPUBuffer,
  shape: number[],
  layout: 'NCHW' | 'NHWC',
) {
  const n = shape.reduce((a, b) => a * b, 1);
  const y = buffer(device, new Float32Array(n)),
    dx = buffer(device, new Float32Array(n));
  await bn.forward(x, y, shape, layout);
  await bn.backward(x, dy, dx);
  const C = bn.numFeatures;
  return {
    y: await readFloats(device, { buffer: y }, n),
    dx: await readFloats(device, { buffer: dx }, n),
    dgamma: await readFloats(device, { buffer: bn.weightGrad }, C),
    dbeta: await readFloats(device, { buffer: bn.biasGrad }, C),
  };
}

describe('Batch Renorm with rmax = 1, dmax = 0 is batch norm, bit for bit', () => {
  for (const layout of ['NCHW', 'NHWC'] as const) {
    it(layout, async () => {
      const device = await gpuDevice();
      const shape = layout === 'NCHW' ? [4, 5, 6, 7] : [4, 6, 7, 5];
      const x = buffer(
        device,
        normals(rng(3), 840).map((v) => 3 * v + 1),
      );
      const dy = buffer(device, normals(rng(4), 840));
      const state = {
        weight: [1.5, 0.5, -1, 2, 0.25],
        bias: [0.1, 0.2, 0.3, -0.4, 0],
        running_mean: [0, 1, 2, -1, 0.5],
        num_batches_tracked: 0,
      };
      const bn = new BatchNorm(device, 5);
      const rn = new BatchNorm(device, 5, { renorm: { rmax: 1, dmax: 0 } });
      await bn.loadStateDict({ ...state, running_var: [1, 2, 3, 0.5, 4] });
      await rn.loadStateDict({ ...state, running_std: [0.2, 5, 3, 0.5, 4] });
      for (let i = 0; i < 2; i++) {
        const a = await step(device, bn, x, dy, shape, layout);
        const b = await step(device, rn, x, dy, shape, layout);
        for (const k of ['y', 'dx', 'dgamma', 'dbeta'] as const) {
          expect(Array.from(new Uint32Array(b[k].buffer)), k).toEqual(Array.from(new Uint32Array(a[k].buffer)));
        }
      }
    });
  }
});

describe('the module tracks its own renorm step', () => {
  it('clip values follow the schedule as training steps are taken, and eval steps do not count', async () => {
    const device = await gpuDevice();
    const rn = new BatchNorm(device, 2, {
      renorm: { schedule: renormSchedule({ rmaxSteps: [1, 3], dmaxSteps: [0, 4] }) },
    });
    const x = buffer(device, normals(rng(5), 16)),
      dy = buffer(device, normals(rng(6), 16));
    const seen: [number, number][] = [];
    for (const training of [true, true, false, true, true]) {
      rn.train(training);
      const sd = await rn.stateDict();
      seen.push([sd.renorm_rmax as number, sd.renorm_dmax as number]);
      await step(device, rn, x, dy, [8, 2], 'NCHW');
    }
    expect(seen).toEqual([
      [1, 0],
      [1, 1.25],
      [2, 2.5],
      [2, 2.5],
      [3, 3.75],
    ]);
    expect((await rn.stateDict()).num_batches_tracked).toBe(4);
  });
});
