/**
 * Determinism: the same input gives bitwise-identical outputs, statistics and gradients on every
 * run, and, for kernel version 3, whatever the workgroup size of its dispatches (no float atomics;
 * every sum has one fixed order).
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../src/module/batchnorm';
import { planBackward, planForwardTrain } from '../../src/plan/plans';
import { statsByteLength } from '../../src/plan/params';
import { readFloats } from '../../src/gpu/buffers';
import { TEST_VERSIONS, VERSIONS, versionOptions, type TestVersion } from '../util/versions';
import type { Layout } from '../../src/layout';
import { normals, rng } from '../util/random';
import { gpuDevice } from './device';

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function upload(d: GPUDevice, data: ArrayLike<number> | number): GPUBuffer {
  const n = typeof data === 'number' ? data : data.length;
  const b = d.createBuffer({
    label: 'det.buffer',
    size: n * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    mappedAtCreation: true,
  });
  if (typeof data !== 'number') new Float32Array(b.getMappedRange()).set(data);
  b.unmap();
  return b;
}

const CASES: [Layout, number[]][] = [
  ['NHWC', [8, 9, 7, 16]],
  ['NCHW', [8, 16, 9, 7]],
  ['NCHW', [8, 16, 8, 6]],
  ['NC', [300, 12]],
];

async function moduleRun(d: GPUDevice, version: TestVersion, layout: Layout, shape: number[]): Promise<number[][]> {
  const n = shape.reduce((a, b) => a * b, 1);
  const C = layout === 'NHWC' ? shape[3] : shape[1];
  const x = upload(
      d,
      normals(rng(5), n).map((v) => v * 3 + 100),
    ),
    dy = upload(d, normals(rng(6), n));
  const y = upload(d, n),
    dx = upload(d, n);
  const bn = new BatchNorm(d, C, versionOptions(version));
  const out: number[][] = [];
  for (let step = 0; step < 3; step++) {
    await bn.forward(x, y, shape, layout);
    await bn.backward(x, dy, dx);
    out.push(bits(await readFloats(d, { buffer: y }, n)), bits(await readFloats(d, { buffer: dx }, n)));
    const sd = await bn.stateDict();
    for (const k of ['weight', 'bias', 'running_mean', 'running_var'] as const) out.push(bits(sd[k] as Float32Array));
    out.push(
      bits(await readFloats(d, { buffer: bn.weightGrad }, C)),
      bits(await readFloats(d, { buffer: bn.biasGrad }, C)),
    );
  }
  bn.destroy();
  for (const b of [x, dy, y, dx]) b.destroy();
  return out;
}

describe('bitwise identical across runs', () => {
  for (const version of TEST_VERSIONS) {
    for (const [layout, shape] of CASES) {
      it(`v${version} ${layout} ${shape.join('x')}`, async () => {
        const d = await gpuDevice();
        const a = await moduleRun(d, version, layout, shape);
        const b = await moduleRun(d, version, layout, shape);
        expect(b).toEqual(a);
      });
    }
  }
});

for (const kernelVersion of [3, 4, 5] as const)
  describe(`v${kernelVersion}: bitwise identical across workgroup sizes`, () => {
    for (const [layout, shape] of CASES) {
      it(`v${kernelVersion} ${layout} ${shape.join('x')} with workgroupSize 16, 32, 64, 128, 256`, async () => {
        const d = await gpuDevice();
        const n = shape.reduce((a, b) => a * b, 1);
        const C = layout === 'NHWC' ? shape[3] : shape[1];
        const x = upload(
            d,
            normals(rng(7), n).map((v) => v - 1e4),
          ),
          dy = upload(d, normals(rng(8), n));
        const results: number[][][] = [];
        for (const workgroupSize of [16, 32, 64, 128, 256]) {
          const y = upload(d, n),
            dx = upload(d, n),
            stats = upload(d, statsByteLength(C) / 4);
          const w = upload(d, new Float32Array(C).fill(1.5)),
            b = upload(d, C),
            dw = upload(d, C),
            db = upload(d, C);
          const rm = upload(d, C),
            rv = upload(d, new Float32Array(C).fill(1));
          const enc = d.createCommandEncoder({ label: 'det.wg' });
          planForwardTrain(
            d,
            { layout, shape, x, y, stats, weight: w, bias: b, runningMean: rm, runningVar: rv, workgroupSize },
            VERSIONS[kernelVersion],
          ).encode(enc);
          planBackward(
            d,
            { layout, shape, x, dy, dx, stats, weight: w, dweight: dw, dbias: db, workgroupSize },
            VERSIONS[kernelVersion],
          ).encode(enc);
          d.queue.submit([enc.finish()]);
          results.push(
            await Promise.all(
              [
                [y, n],
                [dx, n],
                [dw, C],
                [db, C],
                [rm, C],
                [rv, C],
              ].map(async ([buf, k]) => bits(await readFloats(d, { buffer: buf as GPUBuffer }, k as number))),
            ),
          );
        }
        for (const r of results.slice(1)) expect(r).toEqual(results[0]);
      });
    }
  });
