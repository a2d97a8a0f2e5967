/**
 * Ghost batch norm (virtualBatchSize) on the CPU path against plain modules run on each ghost batch
 * separately: outputs and gradients per ghost, running statistics from the ghosts' mean (unbiased
 * for pytorch, biased for keras), one step counted; and the refusals.
 */
import { describe, expect, it } from 'vitest';
import { CpuBatchNorm } from '../../src/cpu/batchnorm';
import { BatchSizeError, OptionError } from '../../src/errors';
import { normals, rng } from '../util/random';

describe('ghost batch norm (CPU path)', () => {
  const [N, C, H, W, k] = [6, 3, 2, 2, 2];
  const per = C * H * W;
  const r = rng(17);
  const x = normals(r, N * per).map((v, i) => v * (1 + (i % 5)) + (i % 3));
  const dy = normals(r, N * per);

  for (const convention of ['pytorch', 'keras'] as const) {
    it(`${convention}: each ghost is normalised alone; running statistics from the ghosts' mean`, () => {
      const momentum = convention === 'pytorch' ? 0.1 : 0.9;
      const ghost = new CpuBatchNorm(C, { virtualBatchSize: k, convention, momentum });
      const y = ghost.forward(x, [N, C, H, W], 'NCHW');
      const g = ghost.backward(x, dy);
      const means: number[][] = [],
        vars: number[][] = [];
      const dgamma = new Float64Array(C);
      for (let b = 0; b < N / k; b++) {
        const span = [b * k * per, (b + 1) * k * per] as const;
        const plain = new CpuBatchNorm(C, { convention, momentum });
        const yb = plain.forward(x.subarray(...span), [k, C, H, W], 'NCHW');
        const gb = plain.backward(x.subarray(...span), dy.subarray(...span));
        yb.forEach((v, i) => expect(y[span[0] + i]).toBeCloseTo(v, 12));
        gb.dx.forEach((v, i) => expect(g.dx[span[0] + i]).toBeCloseTo(v, 12));
        gb.dgamma.forEach((v, c) => (dgamma[c] += v));
        // One plain step from the initial state recovers the ghost's mean and stored variance.
        const f = convention === 'pytorch' ? momentum : 1 - momentum;
        means.push(Array.from(plain.runningMean, (m) => m / f));
        vars.push(Array.from(plain.runningSpread, (v) => (v - (1 - f)) / f));
      }
      dgamma.forEach((v, c) => expect(g.dgamma[c]).toBeCloseTo(v, 12));
      const f = convention === 'pytorch' ? momentum : 1 - momentum;
      for (let c = 0; c < C; c++) {
        const m = means.reduce((a, v) => a + v[c], 0) / means.length;
        const v = vars.reduce((a, q) => a + q[c], 0) / vars.length;
        expect(ghost.runningMean[c]).toBeCloseTo(f * m, 12);
        expect(ghost.runningSpread[c]).toBeCloseTo(1 - f + f * v, 12);
      }
      expect(ghost.numBatchesTracked).toBe(1);
    });
  }

  it('refuses N that k does not divide in training, a bad k, and takes any N in inference', () => {
    const m = new CpuBatchNorm(C, { virtualBatchSize: 4 });
    expect(() => m.forward(x, [N, C, H, W], 'NCHW')).toThrow(BatchSizeError);
    expect(() => m.forward(x, [N, C, H, W], 'NCHW')).toThrow(/multiple of 4/);
    m.eval();
    expect(m.forward(x, [N, C, H, W], 'NCHW').length).toBe(x.length);
    expect(() => new CpuBatchNorm(C, { virtualBatchSize: 0 })).toThrow(OptionError);
    expect(() => new CpuBatchNorm(C, { virtualBatchSize: 1.5 })).toThrow(OptionError);
    // One sample per ghost with no spatial extent leaves one value per channel: refused.
    expect(() => new CpuBatchNorm(C, { virtualBatchSize: 1 }).forward(x.subarray(0, 6 * C), [6, C])).toThrow(
      BatchSizeError,
    );
  });
});
