/**
 * Synchronized batch norm across GPUDevices: 2 and 3 shards, each on a device of its own, with an
 * in-page all-reduce as the transport. Every shard's y, dx, dγ, dβ and running statistics match
 * the whole batch on one device (and the float64 CPU path), within f32 rounding; N not divisible by
 * the shard count, a shard of one sample, both layouts, renorm, the epilogues, per-activation.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../src/batchnorm';
import { CpuBatchNorm } from '../../src/cpu/batchnorm';
import { requestBatchNormDevice } from '../../src/device';
import { readBuffer } from '../../src/gpu/buffers';
import { scaledError } from '../../src/conformance/golden';
import { permute, shapeInLayout, type Layout } from '../../src/layout';
import { CallOrderError, OptionError, ShapeError } from '../../src/errors';
import { mergeStats, type ShardGradSums, type ShardStats } from '../../src/sync';
import type { BatchNormOptions } from '../../src/options';
import { makeScenario } from '../util/scenarios';

/** f32 against f32 (and float64) over differently ordered sums: 1e-5 of each array's scale, as elsewhere. */
const TOL = 1e-5;

/** An all-reduce among `k` in-page participants: each call resolves, once all k have called, to every input in order. */
function allReduce<T>(k: number): (i: number) => (local: T) => Promise<T[]> {
  let items: T[] = [];
  let waiting: ((v: T[]) => void)[] = [];
  let arrived = 0;
  return (i) => (local) =>
    new Promise<T[]>((resolve) => {
      items[i] = local;
      waiting.push(resolve);
      if (++arrived === k) {
        const all = items;
        for (const w of waiting) w(all);
        [items, waiting, arrived] = [[], [], 0];
      }
    });
}

const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
function upload(device: GPUDevice, data: ArrayLike<number>): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(16, data.length * 4), usage });
  device.queue.writeBuffer(b, 0, Float32Array.from(data));
  return b;
}

const devices: Promise<GPUDevice>[] = [];
const deviceAt = (i: number) => (devices[i] ??= requestBatchNormDevice());

interface Outputs {
  y: Float64Array;
  dx: Float64Array;
  dz?: Float64Array;
  state: Record<string, Float64Array>;
}

/** Runs `steps` (training or eval, each forward + backward) on one module over `x` (layout order). */
async function runModule(
  device: GPUDevice,
  C: number,
  options: BatchNormOptions,
  init: Parameters<BatchNorm['loadStateDict']>[0],
  shape: number[],
  layout: Layout,
  steps: { training: boolean; x: Float64Array; dy: Float64Array; z?: Float64Array }[],
  sync: {
    batch: number;
    stats: (l: ShardStats) => Promise<ShardStats[]>;
    sums: (l: ShardGradSums) => Promise<ShardGradSums[]>;
  } | null,
): Promise<Outputs[]> {
  const bn = new BatchNorm(device, C, options);
  await bn.loadStateDict(init);
  const out: Outputs[] = [];
  for (const st of steps) {
    bn.train(st.training);
    const x = upload(device, st.x);
    const y = upload(device, new Float32Array(st.x.length));
    const dy = upload(device, st.dy);
    const dx = upload(device, new Float32Array(st.x.length));
    const z = st.z && upload(device, st.z);
    const dz = st.z && upload(device, new Float32Array(st.x.length));
    if (sync) {
      await bn.forwardSync(x, y, shape, layout, { batch: sync.batch, allReduce: sync.stats, ...(z ? { z } : {}) });
      await bn.backwardSync(x, dy, dx, { allReduce: sync.sums, ...(dz ? { dz } : {}) });
    } else {
      await bn.forward(x, y, shape, layout, z);
      await bn.backward(x, dy, dx, dz);
    }
    const sd = await bn.stateDict();
    const state: Record<string, Float64Array> = {
      dgamma: Float64Array.from(await readBuffer(device, bn.weightGrad)),
      dbeta: Float64Array.from(await readBuffer(device, bn.biasGrad)),
    };
    for (const k of ['running_mean', 'running_var', 'running_std'] as const)
      if (sd[k]) state[k] = Float64Array.from(sd[k]!);
    out.push({
      y: Float64Array.from(await readBuffer(device, y)),
      dx: Float64Array.from(await readBuffer(device, dx)),
      ...(dz ? { dz: Float64Array.from(await readBuffer(device, dz)) } : {}),
      state,
    });
    for (const b of [x, y, dy, dx, z, dz]) b?.destroy();
  }
  bn.destroy();
  return out;
}

/** Splits a layout-ordered batch array along N into shards of the given sizes. */
const split = (a: Float64Array, sizes: number[], perSample: number) => {
  let at = 0;
  return sizes.map((n) => a.subarray((at += n * perSample) - n * perSample, at));
};

async function checkShards(
  nchw: number[],
  layout: Layout,
  sizes: number[],
  options: BatchNormOptions = {},
): Promise<void> {
  const N = nchw[0];
  const s = makeScenario(51 + sizes.length, 'NCHW', nchw, options, [true, true, false]);
  const C = options.perActivation ? nchw.slice(1).reduce((a, b) => a * b, 1) : nchw[1];
  const shape = shapeInLayout(nchw, layout);
  const per = s.steps[0].x.length / N;
  const steps = s.steps.map((st) => ({
    training: st.training,
    x: permute(st.x, nchw, layout),
    dy: permute(st.dy, nchw, layout),
    ...(st.z ? { z: permute(st.z, nchw, layout) } : {}),
  }));
  const whole = await runModule(await deviceAt(0), C, options, s.init, shape, layout, steps, null);
  const stats = allReduce<ShardStats>(sizes.length);
  const sums = allReduce<ShardGradSums>(sizes.length);
  const shards = await Promise.all(
    sizes.map(async (n, i) =>
      runModule(
        await deviceAt(i + 1),
        C,
        options,
        s.init,
        [n, ...shape.slice(1)],
        layout,
        steps.map((st) => ({
          training: st.training,
          x: split(st.x, sizes, per)[i],
          dy: split(st.dy, sizes, per)[i],
          ...(st.z ? { z: split(st.z, sizes, per)[i] } : {}),
        })),
        { batch: N, stats: stats(i), sums: sums(i) },
      ),
    ),
  );
  // The float64 CPU path on the whole batch, as a second reference.
  const cpu = new CpuBatchNorm(C, options);
  cpu.loadStateDict(s.init);
  for (const [t, st] of steps.entries()) {
    cpu.train(st.training);
    const cy = cpu.forward(st.x, shape, layout, st.z);
    const cg = cpu.backward(st.x, st.dy);
    const errors: Record<string, number> = {};
    const note = (k: string, e: number) => (errors[k] = Math.max(errors[k] ?? 0, e));
    for (const [field, ref] of [
      ['y', whole[t].y],
      ['dx', whole[t].dx],
      ...(whole[t].dz ? [['dz', whole[t].dz]] : []),
    ] as [keyof Outputs, Float64Array][]) {
      const joined = new Float64Array(ref.length);
      let at = 0;
      for (const sh of shards) {
        const part = sh[t][field] as Float64Array;
        joined.set(part, at);
        at += part.length;
      }
      note(`${field} vs one device`, scaledError(joined, ref));
      note(`${field} vs CPU`, scaledError(joined, field === 'y' ? cy : field === 'dx' ? cg.dx : cg.dz!));
    }
    for (const sh of shards)
      for (const [k, v] of Object.entries(whole[t].state)) note(`${k} vs one device`, scaledError(sh[t].state[k], v));
    for (const [k, e] of Object.entries(errors))
      expect(e, `step ${t} ${k}: ${JSON.stringify(errors)}`).toBeLessThanOrEqual(TOL);
  }
}

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
