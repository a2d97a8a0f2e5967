/**
 * The synchronized-batch-norm check shared by the browser and Node tests: a batch split along N
 * into shards, each on a GPUDevice of its own with an in-process all-reduce as the transport,
 * against the whole batch on one device and the float64 CPU path.
 */
import { expect } from 'vitest';
import { BatchNorm } from '../../src/module/batchnorm';
import { CpuBatchNorm } from '../../src/cpu/batchnorm';
import { readBuffer } from '../../src/gpu/buffers';
import { scaledError } from '../../src/conformance/golden';
import type { Layout } from '../../src/layout';
import { permute, shapeInLayout } from '../../src/conformance/layouts';
import type { ShardGradSums, ShardStats } from '../../src/sync';
import type { BatchNormOptions } from '../../src/options';
import { makeScenario } from './scenarios';
import { allReduce } from '../../src/conformance/runner';

/** f32 against f32 (and float64) over differently ordered sums: 1e-5 of each array's scale, as elsewhere. */
export const TOL = 1e-5;

export function upload(device: GPUDevice, data: ArrayLike<number>): GPUBuffer {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const b = device.createBuffer({ size: Math.max(16, data.length * 4), usage });
  device.queue.writeBuffer(b, 0, Float32Array.from(data));
  return b;
}

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

export async function checkShards(
  deviceAt: (i: number) => Promise<GPUDevice>,
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
