/**
 * Synchronized batch norm across GPUDevices: 2 and 3 shards, each on a device of its own, with an
 * in-page all-reduce as the transport. Every shard's y, dx, dγ, dβ and running statistics match
 * the whole batch on one device (and the float64 CPU path), within f32 rounding; N not divisible by
 * the shard count, a shard of one sample, both layouts, renorm, the epilogues, per-activation.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../src/module/batchnorm';
import { CpuBatchNorm } from '../../src/cpu/batchnorm';
import { requestBatchNormDevice } from '../../src/device';
import { readBuffer } from '../../src/gpu/buffers';
import { scaledError } from '../../src/conformance/golden';
import type { Layout } from '../../src/layout';
import { CallOrderError, OptionError, ShapeError } from '../../src/errors';
import { mergeStats } from '../../src/sync';
import type { BatchNormOptions } from '../../src/options';
import { makeScenario } from '../util/scenarios';
import { checkShards as check, TOL, upload } from '../util/sync-check';

const devices: Promise<GPUDevice>[] = [];
const deviceAt = (i: number) => (devices[i] ??= requestBatchNormDevice());
const checkShards = (nchw: number[], layout: Layout, sizes: number[], options: BatchNormOptions = {}) =>
  check(deviceAt, nchw, layout, sizes, options);

describe('synchronized batch norm across GPUDevices', () => {
  for (const layout of ['NCHW', 'NHWC'] as const) {
    it(`2 shards of 4 ${layout}`, () => checkShards([8, 8, 3, 3], layout, [4, 4]));
    it(`3 shards, N = 7 not divisible (3, 2, 2) ${layout}`, () => checkShards([7, 6, 4, 5], layout, [3, 2, 2]));
    it(`a shard of one sample (1, 3, 2) ${layout}`, () => checkShards([6, 5, 3, 3], layout, [1, 3, 2]));
    it(`renorm, 2 shards ${layout}`, () =>
      checkShards([6, 8, 2, 4], layout, [2, 4], { renorm: { rmax: 1.5, dmax: 0.5 } }));
    it(`add_relu epilogue, 3 shards ${layout}`, () =>
      checkShards([6, 4, 3, 3], layout, [2, 2, 2], { epilogue: 'add_relu' }));
    it(`per-activation, 2 shards ${layout}`, () => checkShards([6, 3, 2, 2], layout, [3, 3], { perActivation: true }));
  }
  it('[N, C] with a shard of one sample (M = 1 there, 5 over the batch)', () => checkShards([5, 12], 'NCHW', [1, 4]));
  it('keras convention, no affine, 2 shards', () =>
    checkShards([6, 8, 3, 3], 'NHWC', [3, 3], { convention: 'keras', affine: false }));
});

describe('synchronized batch norm: plans and refusals', () => {
  it('a planned shard step: encodeStatistics → readStatistics → mergeStats → encodeForward, one shard alone equals plain', async () => {
    const device = await deviceAt(1);
    const s = makeScenario(61, 'NCHW', [4, 8, 2, 2], {}, [true]);
    const t = {
      x: upload(device, s.steps[0].x),
      y: upload(device, new Float32Array(128)),
      dy: upload(device, s.steps[0].dy),
      dx: upload(device, new Float32Array(128)),
    };
    const bn = new BatchNorm(device, 8);
    await bn.loadStateDict(s.init);
    const step = bn.plan({ shape: [4, 8, 2, 2], layout: 'NCHW', ...t, sync: { batch: 4 } });
    let e = device.createCommandEncoder();
    step.encodeStatistics(e);
    device.queue.submit([e.finish()]);
    const local = await step.readStatistics();
    expect(local.count).toBe(16);
    e = device.createCommandEncoder();
    step.encodeForward(e, mergeStats([local]));
    step.encodeGradientSums(e);
    device.queue.submit([e.finish()]);
    const sums = await step.readGradientSums();
    e = device.createCommandEncoder();
    step.encodeBackward(e, sums);
    device.queue.submit([e.finish()]);
    const cpu = new CpuBatchNorm(8);
    cpu.loadStateDict(s.init);
    expect(scaledError(await readBuffer(device, t.y), cpu.forward(s.steps[0].x, [4, 8, 2, 2], 'NCHW'))).toBeLessThan(
      TOL,
    );
    expect(scaledError(await readBuffer(device, t.dx), cpu.backward(s.steps[0].x, s.steps[0].dy).dx)).toBeLessThan(TOL);
    // Refusals: no merged values, the wrong count or channels, merged values on a plain step.
    const e2 = device.createCommandEncoder();
    expect(() => step.encodeForward(e2)).toThrow(OptionError);
    expect(() => step.encodeForward(e2, { ...local, count: 15 })).toThrow(ShapeError);
    expect(() => step.encodeForward(e2, { ...local, mean: local.mean.subarray(1) })).toThrow(ShapeError);
    const plain = bn.plan({ shape: [4, 8, 2, 2], layout: 'NCHW', ...t });
    expect(() => plain.encodeStatistics(e2)).toThrow(OptionError);
    expect(() => plain.encodeForward(e2, local)).toThrow(OptionError);
    expect(() => bn.plan({ shape: [4, 8, 2, 2], layout: 'NCHW', ...t, sync: { batch: 3 } })).toThrow(OptionError);
    expect(() => mergeStats([])).toThrow(OptionError);
    expect(() => mergeStats([local, { ...local, m2: new Float64Array(3) }])).toThrow(ShapeError);
    // The awaited pair must match: backward after forwardSync, and backwardSync after forward.
    await bn.forward(t.x, t.y, [4, 8, 2, 2], 'NCHW');
    await expect(bn.backwardSync(t.x, t.dy, t.dx, { allReduce: (l) => [l] })).rejects.toThrow(CallOrderError);
    await bn.forwardSync(t.x, t.y, [4, 8, 2, 2], 'NCHW', { batch: 4, allReduce: (l) => [l] });
    await expect(bn.backward(t.x, t.dy, t.dx)).rejects.toThrow(CallOrderError);
    // A transport that fails passes its error through and leaves the state as it was.
    const before = await bn.stateDict();
    await expect(
      bn.forwardSync(t.x, t.y, [4, 8, 2, 2], 'NCHW', {
        batch: 4,
        allReduce: () => {
          throw new Error('socket closed');
        },
      }),
    ).rejects.toThrow('socket closed');
    const after = await bn.stateDict();
    expect(after.num_batches_tracked).toBe(before.num_batches_tracked);
    expect(Array.from(after.running_mean!)).toEqual(Array.from(before.running_mean!));
    bn.destroy();
  });
});
