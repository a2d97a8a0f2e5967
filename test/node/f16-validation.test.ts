/**
 * Float16 pipelines through Tint and Dawn's validation, on Dawn's null backend: the only adapter on
 * a machine without a GPU that has 'shader-f16' (SwiftShader lacks it, and Dawn's Vulkan backend
 * does not expose it on NVIDIA). The null backend runs no shader, so this checks what it can: every
 * f16 kernel compiles and links, and every float16 call (all layouts and reduction kinds, odd
 * lengths with their padded bindings) encodes and submits without a validation error. The numbers
 * are checked where an adapter runs f16 (test/browser/f16.test.ts, bn-conformance --dtype float16).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/cli/nodeGpu';
import { requestBatchNormDevice } from '../../src/device';
import { encodeBackward, encodeForwardEval, encodeForwardTrain } from '../../src/functional';
import { statsByteLength, tensorByteLength } from '../../src/plan/params';
import { workspaceByteLength } from '../../src/plan/plans';
import { KERNELS } from '../../src/kernels/index';
import type { Layout } from '../../src/layout';

let device: GPUDevice;

beforeAll(async () => {
  await nodeGpu(); // the WebGPU globals
  const { create } = await import('webgpu');
  device = await requestBatchNormDevice({ gpu: create(['backend=null']), optionalFeatures: ['shader-f16'] });
});

async function noValidationError(f: () => void | Promise<void>): Promise<void> {
  device.pushErrorScope('validation');
  await f();
  const e = await device.popErrorScope();
  expect(e?.message).toBeUndefined();
}

describe("float16 on Dawn's null backend", () => {
  it('the null adapter has shader-f16', () => expect(device.features.has('shader-f16')).toBe(true));

  it('it validates WGSL: an f16 type error is reported (so the checks below have teeth)', async () => {
    device.pushErrorScope('validation');
    const module = device.createShaderModule({
      code: 'enable f16;\n@compute @workgroup_size(1) fn main() { let a: f16 = 1.0f; }',
    });
    device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    expect((await device.popErrorScope())?.message).toMatch(/f16|f32/);
  });

  for (const k of KERNELS.filter((x) => x.source.includes('alias xf = f32;'))) {
    it(`${k.label}: the f16 pipeline compiles and links`, () =>
      noValidationError(() => {
        k.pipeline(device, undefined, { dtype: 'f16' });
      }));
  }
  for (const k of KERNELS.filter((x) => x.source.includes('const EPILOGUE: u32 = 0u;')))
    for (const epilogue of ['relu', 'add_relu'] as const)
      it(`${k.label} ${epilogue}: the f16 epilogue pipeline compiles and links`, () =>
        noValidationError(() => {
          k.pipeline(device, undefined, { dtype: 'f16', epilogue });
        }));

  const cases: [string, Layout, number[]][] = [
    ['NHWC rows (C % 4 == 0)', 'NHWC', [4, 5, 3, 8]],
    ['NCHW runs (H·W % 4 == 0)', 'NCHW', [3, 5, 4, 4]],
    ['NHWC scalar (C = 3, odd length 45)', 'NHWC', [3, 5, 1, 3]],
    ['NCHW scalar (H·W = 7)', 'NCHW', [2, 6, 7, 1]],
    ['[N,C] rows', 'NC', [64, 12]],
    ['[N,C] odd (C = 5, length 35)', 'NC', [7, 5]],
  ];
  for (const [name, layout, shape] of cases) {
    it(`${name}: train, eval and backward encode and submit`, () =>
      noValidationError(async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const C = layout === 'NCHW' ? shape[1] : shape[shape.length - 1];
        const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
        const t = (bytes: number) => device.createBuffer({ label: 'test.f16', size: bytes, usage });
        const x = t(tensorByteLength(n, 'float16')),
          y = t(tensorByteLength(n, 'float16')),
          dy = t(tensorByteLength(n, 'float16')),
          dx = t(tensorByteLength(n, 'float16'));
        const stats = t(statsByteLength(C)),
          w = t(C * 4),
          b = t(C * 4),
          rm = t(C * 4),
          rv = t(C * 4),
          dw = t(C * 4),
          db = t(C * 4);
        const ws = t(workspaceByteLength(device, layout, shape));
        const enc = device.createCommandEncoder();
        const common = { layout, shape, x, y, stats, weight: w, bias: b, dtype: 'float16' as const };
        encodeForwardTrain(device, enc, { ...common, workspace: ws, runningMean: rm, runningVar: rv });
        encodeForwardTrain(device, enc, {
          ...common,
          workspace: ws,
          runningMean: rm,
          runningVar: rv,
          renorm: { rmax: 3, dmax: 5 },
        });
        encodeForwardEval(device, enc, { ...common, runningMean: rm, runningVar: rv });
        encodeBackward(device, enc, {
          layout,
          shape,
          x,
          dy,
          dx,
          stats,
          weight: w,
          dweight: dw,
          dbias: db,
          workspace: ws,
          dtype: 'float16',
        });
        device.queue.submit([enc.finish()]);
        await device.queue.onSubmittedWorkDone();
      }));
  }
});
