/**
 * Inference folding on the host: conv → BN (eval) against the folded conv alone, with a direct
 * float64 convolution written here, for OIHW weights on NCHW data and HWIO weights on NHWC data,
 * dense layers both ways, Batch Renorm states, and typed refusals.
 */
import { describe, expect, it } from 'vitest';
import { CpuBatchNorm } from '../../src/cpu/batchnorm';
import { foldBatchNorm, type WeightLayout } from '../../src/fold/host';
import { OptionError, ShapeError, StateDictError } from '../../src/errors';
import { permute } from '../../src/conformance/layouts';
import { normals, rng } from '../util/random';

/** Valid 2-D convolution, stride 1, NCHW input [N, I, H, W], weight OIHW [O, I, K, K] → [N, O, H-K+1, W-K+1]. */
function conv(
  x: ArrayLike<number>,
  [N, I, H, W]: number[],
  w: ArrayLike<number>,
  O: number,
  K: number,
  b?: ArrayLike<number>,
) {
  const [Ho, Wo] = [H - K + 1, W - K + 1];
  const y = new Float64Array(N * O * Ho * Wo);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let i = 0; i < Ho; i++)
        for (let j = 0; j < Wo; j++) {
          let s = b ? b[o] : 0;
          for (let c = 0; c < I; c++)
            for (let u = 0; u < K; u++)
              for (let v = 0; v < K; v++)
                s += x[((n * I + c) * H + i + u) * W + j + v] * w[((o * I + c) * K + u) * K + v];
          y[((n * O + o) * Ho + i) * Wo + j] = s;
        }
  return { y, shape: [N, O, Ho, Wo] };
}

/** OIHW [O, I, K, K] → HWIO [K, K, I, O]. */
function toHwio(w: ArrayLike<number>, O: number, I: number, K: number): Float64Array {
  const out = new Float64Array(w.length);
  for (let o = 0; o < O; o++)
    for (let c = 0; c < I; c++)
      for (let u = 0; u < K; u++)
        for (let v = 0; v < K; v++) out[((u * K + v) * I + c) * O + o] = w[((o * I + c) * K + u) * K + v];
  return out;
}

/** A module with trained, non-trivial running statistics and parameters. */
function trained(C: number, renorm: boolean): CpuBatchNorm {
  const r = rng(5);
  const m = new CpuBatchNorm(C, renorm ? { renorm: { rmax: 2, dmax: 1 } } : {});
  m.loadStateDict({
    weight: Array.from({ length: C }, () => 0.5 + r()),
    bias: Array.from({ length: C }, () => r() - 0.5),
    running_mean: Array.from({ length: C }, () => 2 * r() - 1),
    [renorm ? 'running_std' : 'running_var']: Array.from({ length: C }, () => 0.3 + 2 * r()),
    num_batches_tracked: 0,
  });
  m.train();
  m.forward(
    normals(r, 6 * C * 9).map((v) => 3 * v + 1),
    [6, C, 3, 3],
    'NCHW',
  );
  return m.eval();
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  const scale = Math.max(1, ...Array.from(b, Math.abs));
  let e = 0;
  for (let i = 0; i < b.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]) / scale);
  return e;
};

describe('foldBatchNorm: the folded layer equals layer → BN in eval', () => {
  const [N, I, H, W, O, K] = [2, 3, 6, 5, 4, 3];
  const r = rng(9);
  const x = normals(r, N * I * H * W);
  const w = normals(r, O * I * K * K);
  const b = normals(r, O);
  for (const renorm of [false, true]) {
    for (const withBias of [true, false]) {
      const what = `${renorm ? 'renorm' : 'batch norm'}, ${withBias ? 'with' : 'without'} conv bias`;
      it(`conv2d OIHW on NCHW, ${what}`, () => {
        const bn = trained(O, renorm);
        const ref = conv(x, [N, I, H, W], w, O, K, withBias ? b : undefined);
        const want = bn.forward(ref.y, ref.shape, 'NCHW');
        const f = foldBatchNorm(
          { weight: w, weightShape: [O, I, K, K], weightLayout: 'OIHW', bias: withBias ? b : null },
          bn.stateDict(),
          { eps: bn.options.eps },
        );
        const got = conv(x, [N, I, H, W], f.weight, O, K, f.bias).y;
        // The folded weight and bias are rounded to float32: 2^-24 relative, times the sum's terms.
        expect(close(got, want)).toBeLessThan(1e-6);
      });
      it(`conv2d HWIO on NHWC, ${what}`, () => {
        const bn = trained(O, renorm);
        const ref = conv(x, [N, I, H, W], w, O, K, withBias ? b : undefined);
        const shapeNhwc = [N, ref.shape[2], ref.shape[3], O];
        const want = bn.forward(permute(ref.y, ref.shape, 'NHWC'), shapeNhwc, 'NHWC');
        const f = foldBatchNorm(
          { weight: toHwio(w, O, I, K), weightShape: [K, K, I, O], weightLayout: 'HWIO', bias: withBias ? b : null },
          bn.stateDict(),
          { eps: bn.options.eps },
        );
        // Back to OIHW to run the same convolution; the fold itself ran on the HWIO layout.
        const back = new Float64Array(f.weight.length);
        for (let o = 0; o < O; o++)
          for (let c = 0; c < I; c++)
            for (let u = 0; u < K; u++)
              for (let v = 0; v < K; v++) back[((o * I + c) * K + u) * K + v] = f.weight[((u * K + v) * I + c) * O + o];
        const got = permute(conv(x, [N, I, H, W], back, O, K, f.bias).y, ref.shape, 'NHWC');
        expect(close(got, want)).toBeLessThan(1e-6);
      });
    }
  }
  for (const layout of ['OIHW', 'HWIO'] as WeightLayout[]) {
    it(`dense layer, weight ${layout === 'OIHW' ? '[out, in] (nn.Linear)' : '[in, out] (Keras Dense)'}`, () => {
      const [B, In, Out] = [5, 7, 6];
      const xs = normals(r, B * In);
      const wo = normals(r, Out * In); // [out, in]
      const bs = normals(r, Out);
      const dense = (wt: ArrayLike<number>, bias: ArrayLike<number>) =>
        Float64Array.from({ length: B * Out }, (_, k) => {
          const [n, o] = [Math.floor(k / Out), k % Out];
          let s = bias[o];
          for (let i = 0; i < In; i++) s += xs[n * In + i] * wt[o * In + i];
          return s;
        });
      const bn = trained(Out, false);
      const want = bn.forward(dense(wo, bs), [B, Out]);
      const weight =
        layout === 'OIHW'
          ? wo
          : Float64Array.from({ length: In * Out }, (_, k) => wo[(k % Out) * In + Math.floor(k / Out)]);
      const f = foldBatchNorm(
        { weight, weightShape: layout === 'OIHW' ? [Out, In] : [In, Out], weightLayout: layout, bias: bs },
        bn.stateDict(),
        { eps: bn.options.eps },
      );
      const fo =
        layout === 'OIHW'
          ? f.weight
          : Float64Array.from({ length: In * Out }, (_, k) => f.weight[(k % In) * Out + Math.floor(k / In)]);
      expect(close(dense(fo, f.bias), want)).toBeLessThan(1e-6);
    });
  }
});

describe('foldBatchNorm refuses what it cannot fold, with typed errors', () => {
  const state = { running_mean: [0, 1], running_var: [1, 2], weight: [1, 1], bias: [0, 0] };
  const layer = { weight: [1, 2, 3, 4], weightShape: [2, 2], weightLayout: 'OIHW' as const };
  it('a weight whose output channels are not the module’s', () =>
    expect(() => foldBatchNorm({ ...layer, weightShape: [1, 4] }, state, { eps: 1e-5 })).toThrow(ShapeError));
  it('a weight of the wrong length', () =>
    expect(() => foldBatchNorm({ ...layer, weight: [1, 2, 3] }, state, { eps: 1e-5 })).toThrow(ShapeError));
  it('an unknown weight layout', () =>
    expect(() => foldBatchNorm({ ...layer, weightLayout: 'OHWI' as never }, state, { eps: 1e-5 })).toThrow(
      OptionError,
    ));
  it('a state without running statistics, or with both spreads', () => {
    expect(() => foldBatchNorm(layer, { weight: [1, 1], bias: [0, 0] }, { eps: 1e-5 })).toThrow(StateDictError);
    expect(() => foldBatchNorm(layer, { ...state, running_std: [1, 1] }, { eps: 1e-5 })).toThrow(StateDictError);
  });
  it('running_var without eps (a silent default would be wrong for keras modules)', () =>
    expect(() => foldBatchNorm(layer, state)).toThrow(OptionError));
  it('a non-finite or negative spread', () => {
    expect(() => foldBatchNorm(layer, { ...state, running_var: [1, -1] }, { eps: 1e-5 })).toThrow(StateDictError);
    expect(() => foldBatchNorm(layer, { ...state, running_mean: [0, NaN] }, { eps: 1e-5 })).toThrow(StateDictError);
  });
});
