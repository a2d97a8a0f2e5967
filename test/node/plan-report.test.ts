/**
 * Kernel version 5's plan criteria, read from the plans themselves (bench/plan-report.ts builds
 * the dispatch sequences that plans encode): over ResNet-50's 12 BN shapes at batch 64 in both
 * layouts and the MLP shapes, a training forward and a backward are at most three dependent
 * dispatches, inference one, and no thread merges more than 8 partials in turn. Also: the
 * report's sequences are the plans' own, and a module's training forward is as short as a plan's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/cli/nodeGpu';
import { requestBatchNormDevice } from '../../src/device';
import { BatchNorm } from '../../src/module/batchnorm';
import { planBackward, planForwardEval, planForwardTrain } from '../../src/plan/plans';
import { statsByteLength } from '../../src/plan/params';
import { KERNEL_TABLE } from '../../src/plan/table';
import { V5_GPU, VERSIONS } from '../../dev/kernels/versions';
import { planRows } from '../../bench/plan-report';
import { expandShapes } from '../../bench/shapes';

let device: GPUDevice;
beforeAll(async () => {
  device = await requestBatchNormDevice({ gpu: await nodeGpu() });
}, 60_000);
afterAll(() => device?.destroy());

const SHAPES = expandShapes(['resnet50', 'mlp'], 64, false);

describe('version 5 plans (as on a GPU)', () => {
  it('ResNet-50 × NHWC/NCHW and the MLP set: forward-train ≤ 3 dispatches, backward ≤ 3, inference 1, serial steps ≤ 8', () => {
    const rows = planRows(device, V5_GPU, '5', SHAPES);
    expect(rows.length).toBe(3 * (12 * 2 + 3));
    for (const r of rows) {
      const what = `${r.op} ${r.layout} ${r.shape}`;
      expect(r.dispatch_count, what).toBeLessThanOrEqual(r.op === 'inference' ? 1 : 3);
      expect(r.serial_steps, what).toBeLessThanOrEqual(8);
    }
    // Version 4, for contrast: merge levels of 32 and a coefficients pass.
    const v4 = planRows(device, VERSIONS[4], '4', SHAPES);
    expect(Math.max(...v4.map((r) => r.serial_steps))).toBe(32);
    expect(v4.filter((r) => r.op === 'inference').every((r) => r.dispatch_count === 2)).toBe(true);
  });

  it("the report's sequences are the plans' own: kernels and grids", () => {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    for (const [layout, shape, name] of [
      ['NCHW', [8, 16, 7, 7], '8x7x7x16'],
      ['NHWC', [8, 7, 7, 16], '8x7x7x16'],
    ] as const) {
      const n = shape.reduce((a, b) => a * b, 1);
      const buf = (bytes: number) => device.createBuffer({ size: bytes, usage });
      const [x, y, dy, dx] = [0, 1, 2, 3].map(() => buf(n * 4));
      const c = () => buf(16 * 4);
      const common = { layout, shape: [...shape], x, y, stats: buf(statsByteLength(16)), weight: c(), bias: c() };
      const plans = {
        'forward-train': planForwardTrain(device, { ...common, runningMean: c(), runningVar: c() }, V5_GPU),
        inference: planForwardEval(device, { ...common, runningMean: c(), runningVar: c() }, V5_GPU),
        backward: planBackward(
          device,
          { layout, shape: [...shape], x, dy, dx, stats: common.stats, weight: c(), weightGrad: c(), biasGrad: c() },
          V5_GPU,
        ),
      };
      for (const r of planRows(device, V5_GPU, '5', [name]).filter((q) => q.layout === layout)) {
        const plan = plans[r.op];
        expect(r.dispatches.map((d) => d.kernel)).toEqual(plan.dispatches.map((d) => d.label.replace(/^bn\./, '')));
        expect(r.workgroups).toEqual(plan.dispatches.map((d) => d.grid[0] * d.grid[1] * d.grid[2]));
      }
    }
  });

  it("a module's training forward is three dispatches too (its step advances in the statistics pass)", () => {
    const count = { n: 0 };
    const proto = GPUComputePassEncoder.prototype;
    const dispatch = proto.dispatchWorkgroups;
    proto.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...a: Parameters<typeof dispatch>) {
      count.n++;
      return dispatch.apply(this, a);
    };
    try {
      const shape = [8, 16, 7, 7];
      const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
      const [x, y, dy, dx] = [0, 1, 2, 3].map(() => device.createBuffer({ size: 8 * 16 * 49 * 4, usage }));
      // The GPU plan and this device's (SwiftShader: a fallback adapter, serial finalize).
      for (const [table, forward, backward] of [
        [V5_GPU, 3, 3],
        [VERSIONS[5], 3, 3],
      ] as const) {
        const bn = new BatchNorm(device, 16, { [KERNEL_TABLE]: table } as object);
        const step = bn.plan({ shape, layout: 'NCHW', x, y, dy, dx });
        const enc = device.createCommandEncoder();
        count.n = 0;
        step.encodeForward(enc);
        expect(count.n, table.name).toBe(forward);
        count.n = 0;
        step.encodeBackward(enc);
        expect(count.n, table.name).toBe(backward);
        enc.finish();
        bn.destroy();
      }
    } finally {
      proto.dispatchWorkgroups = dispatch;
    }
  });
});
