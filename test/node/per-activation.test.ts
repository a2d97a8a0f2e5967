/**
 * Per-activation batch norm on the CPU path against a direct float64 computation written here
 * (mean and biased variance of each activation over the batch), and its typed refusals.
 */
import { describe, expect, it } from 'vitest';
import { CpuBatchNorm } from '../../src/cpu/batchnorm';
import { BatchNorm } from '../../src/module/batchnorm';
import { BatchSizeError, OptionError, ShapeError } from '../../src/errors';
import { normals, rng } from '../util/random';

describe('per-activation statistics (CPU path)', () => {
  const [N, C, H, W] = [5, 3, 2, 4];
  const F = C * H * W;
  const x = normals(rng(3), N * F).map((v, i) => v * (1 + (i % F) / 10) + (i % 7));

  for (const layout of ['NCHW', 'NHWC'] as const) {
    it(`normalises each activation over the batch (${layout}) and updates its running statistics`, () => {
      const shape = layout === 'NCHW' ? [N, C, H, W] : [N, H, W, C];
      const m = new CpuBatchNorm(F, { perActivation: true, momentum: 0.5 });
      const y = m.forward(x, shape, layout);
      // An activation is an offset within one sample, whatever the layout.
      for (let j = 0; j < F; j++) {
        let mean = 0;
        for (let n = 0; n < N; n++) mean += x[n * F + j];
        mean /= N;
        let v = 0;
        for (let n = 0; n < N; n++) v += (x[n * F + j] - mean) ** 2;
        v /= N;
        for (let n = 0; n < N; n++) expect(y[n * F + j]).toBeCloseTo((x[n * F + j] - mean) / Math.sqrt(v + 1e-5), 12);
        expect(m.runningMean[j]).toBeCloseTo(0.5 * mean, 12);
        expect(m.runningSpread[j]).toBeCloseTo(0.5 + 0.5 * ((v * N) / (N - 1)), 12);
      }
    });
  }

  it('refuses a tensor with another activation count, a batch of one, and a non-boolean option', () => {
    const m = new CpuBatchNorm(F, { perActivation: true });
    expect(() => m.forward(x.subarray(0, N * C * H * 3), [N, C, H, 3], 'NCHW')).toThrow(ShapeError);
    expect(() => m.forward(x.subarray(0, F), [1, C, H, W], 'NCHW')).toThrow(BatchSizeError);
    expect(() => new CpuBatchNorm(F, { perActivation: 1 as unknown as boolean })).toThrow(OptionError);
    expect(() => new BatchNorm({} as GPUDevice, F, { perActivation: 'yes' as unknown as boolean })).toThrow(
      OptionError,
    );
  });
});
