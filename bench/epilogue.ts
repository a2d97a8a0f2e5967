/**
 * The fused epilogues against what they replace, on the same adapter and tensors: batch norm with
 * its relu (or add + relu) fused into the apply and backward passes, against batch norm followed
 * by a separate elementwise kernel (bench/relu_unfused.wgsl) and, in backward, the relu's backward
 * kernel before batch norm's. Both are validated against the float64 CPU path first.
 *
 * Bytes each must move (N = tensor bytes): forward, fused 3N (relu) or 4N (add_relu: z read),
 * unfused 5N or 6N (bn writes y, the elementwise pass reads it back and writes again); backward,
 * fused 7N (sums read x, dy, y; dx reads them and writes dx) or 8N (dz written too), unfused 8N
 * for both (relu backward reads dy, y and writes the masked dy, which is dz; bn backward 5N).
 */
import compiled from './relu_unfused.wgsl?kernel';
import { CpuBatchNorm } from '../src/cpu/batchnorm';
import { scaledError } from '../src/conformance/golden';
import { defineKernel, encodeDispatches, gridFor, prepareDispatch } from '../src/gpu/kernel';
import { type Epilogue } from '../src/options';
import { readFloats } from '../src/gpu/buffers';
import { planBackward, planForwardTrain, workspaceByteLength } from '../src/plan/plans';
import { statsByteLength } from '../src/plan/params';
import { type Plan } from '../src/plan/pass';
import type { Layout } from '../src/layout';
import type { Timer } from './timer';

const reluUnfused = defineKernel(
  'bench.relu_unfused',
  compiled,
  ['params', 'a', 'b', 'out'] as const,
  ['count4', 'mode'] as const,
);

export interface EpilogueRow {
  epilogue: Epilogue;
  pass: 'forward' | 'backward';
  layout: Layout;
  shape: string;
  fused_ms: number;
  unfused_ms: number;
  /** Bytes each must move, in units of the tensor's size. */
  fused_traffic: number;
  unfused_traffic: number;
  /** 1 - fused/unfused, in time. */
  time_saving: number;
  max_error: number;
}

const TRAFFIC = {
  relu: { forward: [3, 5], backward: [7, 8] },
  add_relu: { forward: [4, 6], backward: [8, 8] },
} as const;

export async function benchEpilogues(
  device: GPUDevice,
  timer: Timer,
  layout: Layout,
  shapeName: string,
  shape: number[],
  xh: Float32Array,
  dyh: Float32Array,
  iters: number,
  reps: number,
): Promise<EpilogueRow[]> {
  const n = xh.length;
  if (n % 4) return [];
  const C = layout === 'NHWC' || layout === 'NC' ? shape[shape.length - 1] : shape[1];
  const owned: GPUBuffer[] = [];
  const buf = (label: string, data: Float32Array | number) => {
    const size = typeof data === 'number' ? data * 4 : data.byteLength;
    const b = device.createBuffer({
      label,
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    if (typeof data !== 'number') device.queue.writeBuffer(b, 0, Float32Array.from(data));
    owned.push(b);
    return b;
  };
  const zh = Float32Array.from(dyh, (v, i) => v * 0.5 + ((i % 3) - 1) * 0.25);
  const x = buf('bench.x', xh),
    z = buf('bench.z', zh),
    dy = buf('bench.dy', dyh);
  const [y, t, g, dx, dz] = ['y', 'bn_out', 'masked_dy', 'dx', 'dz'].map((l) => buf(`bench.${l}`, n));
  const stats = buf('bench.stats', statsByteLength(C) / 4);
  const ws = buf('bench.workspace', workspaceByteLength(device, layout, shape) / 4);
  const elementwise = (mode: number, a: GPUBuffer, b: GPUBuffer, out: GPUBuffer) =>
    prepareDispatch(
      device,
      reluUnfused,
      { count4: n / 4, mode },
      { a: { buffer: a }, b: { buffer: b }, out: { buffer: out } },
      gridFor(device, Math.ceil(n / 4 / reluUnfused.threadsPerWorkgroup())),
      owned,
    );
  const rows: EpilogueRow[] = [];
  const common = { layout, shape, stats, workspace: ws } as const;
  for (const epilogue of ['relu', 'add_relu'] as const) {
    const add = epilogue === 'add_relu';
    const cpu = new CpuBatchNorm(C, { epilogue, affine: false, trackRunningStats: false });
    const yRef = cpu.forward(xh, shape, layout, add ? zh : undefined);
    const gRef = cpu.backward(xh, dyh);
    const plans: Plan[] = [];
    const plan = <P extends Plan>(p: P) => (plans.push(p), p);
    const fusedFwd = plan(planForwardTrain(device, { ...common, x, y, epilogue, ...(add ? { z } : {}) }));
    const plainFwd = plan(planForwardTrain(device, { ...common, x, y: t }));
    const act = elementwise(add ? 1 : 0, t, z, y);
    const fusedBwd = plan(planBackward(device, { ...common, x, dy, dx, y, epilogue, ...(add ? { dz } : {}) }));
    const mask = elementwise(2, dy, y, g);
    const plainBwd = plan(planBackward(device, { ...common, x, dy: g, dx }));
    const pass = (e: GPUCommandEncoder, label: string, d: Parameters<typeof encodeDispatches>[1]) => {
      const p = e.beginComputePass({ label });
      encodeDispatches(p, d);
      p.end();
    };
    const ways = {
      forward: {
        fused: (e: GPUCommandEncoder) => fusedFwd.encode(e),
        unfused: (e: GPUCommandEncoder) => {
          plainFwd.encode(e);
          pass(e, 'bench.relu', [act]);
        },
      },
      backward: {
        fused: (e: GPUCommandEncoder) => fusedBwd.encode(e),
        unfused: (e: GPUCommandEncoder) => {
          pass(e, 'bench.relu_backward', [mask]);
          plainBwd.encode(e);
        },
      },
    };
    for (const which of ['forward', 'backward'] as const) {
      let err = 0;
      for (const way of ['fused', 'unfused'] as const) {
        const e = device.createCommandEncoder({ label: 'bench.validate' });
        if (which === 'backward') fusedFwd.encode(e); // y and the saved statistics, as training leaves them
        ways[which][way](e);
        device.queue.submit([e.finish()]);
        const got = await readFloats(device, { buffer: which === 'forward' ? y : dx }, n);
        err = Math.max(err, scaledError(got, which === 'forward' ? yRef : gRef.dx));
        if (which === 'backward' && add)
          err = Math.max(err, scaledError(await readFloats(device, { buffer: way === 'fused' ? dz : g }, n), gRef.dz!));
      }
      if (!(err <= 1e-4))
        throw new Error(
          `${epilogue} ${which} ${layout} ${shapeName}: differs from the CPU path (${err}); not timing it`,
        );
      const fused = (await timer.time(ways[which].fused, iters, reps)).ms;
      const unfused = (await timer.time(ways[which].unfused, iters, reps)).ms;
      const [ft, ut] = TRAFFIC[epilogue][which];
      rows.push({
        epilogue,
        pass: which,
        layout,
        shape: shapeName,
        fused_ms: fused,
        unfused_ms: unfused,
        fused_traffic: ft,
        unfused_traffic: ut,
        time_saving: 1 - fused / unfused,
        max_error: err,
      });
    }
    for (const p of plans) p.destroy();
  }
  for (const b of owned) b.destroy();
  return rows;
}

export const EPILOGUE_HEADER =
  'epilogue  pass      layout shape            fused_ms  unfused_ms  bytes (×N) fused/unfused  time saved   error';

export function formatEpilogue(r: EpilogueRow): string {
  return `${r.epilogue.padEnd(9)} ${r.pass.padEnd(9)} ${r.layout.padEnd(6)} ${r.shape.padEnd(16)} ${r.fused_ms.toFixed(4).padStart(8)} ${r.unfused_ms.toFixed(4).padStart(11)} ${`${r.fused_traffic} / ${r.unfused_traffic}`.padStart(24)} ${(100 * r.time_saving).toFixed(0).padStart(10)}% ${r.max_error.toExponential(0).padStart(7)}`;
}
