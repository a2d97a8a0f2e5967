/** The demo's layer kernels (dense, convolution, activations, loss, SGD) against float64 CPU references. */
import { describe, expect, it } from 'vitest';
import { readFloats } from '../../src/gpu/buffers';
import { scaledError } from '../../src/conformance/golden';
import * as K from '../../demo/engine/kernels';
import { buffer, submit } from '../../demo/engine/layers';
import { normals, rng } from '../util/random';
import { gpuDevice } from './device';

/** f32 sums of up to a few hundred products against float64. */
const TOL = 1e-5;
const read = (d: GPUDevice, b: GPUBuffer, n: number) => readFloats(d, { buffer: b }, n);
const f32 = (a: Float64Array) => Float32Array.from(a);
/** Uniform buffers of the tests' prepared dispatches. */
const owned: GPUBuffer[] = [];

describe('dense', () => {
  for (const [B, I, O] of [
    [5, 7, 3],
    [64, 33, 100],
    [3, 100, 10],
  ]) {
    it(`forward and backward B=${B} I=${I} O=${O}`, async () => {
      const d = await gpuDevice();
      const r = rng(B * 1000 + I * 10 + O);
      const x = normals(r, B * I),
        w = normals(r, I * O),
        bias = normals(r, O),
        dy = normals(r, B * O);
      const [xb, wb, bb, yb, dyb, dxb, dwb, dbb, dummy] = [
        f32(x),
        f32(w),
        f32(bias),
        B * O,
        f32(dy),
        B * I,
        I * O,
        O,
        4,
      ].map((v, i) => buffer(d, `t${i}`, v));
      submit(d, 'test.dense', [
        K.prepareDenseForward(d, owned, B, I, O, xb, wb, bb, yb, dummy),
        K.prepareDenseBackwardInput(d, owned, B, I, O, dyb, wb, dxb),
        K.prepareDenseBackwardWeight(d, owned, B, I, O, xb, dyb, dwb, dbb, dummy),
      ]);
      const y = new Float64Array(B * O),
        dx = new Float64Array(B * I),
        dw = new Float64Array(I * O),
        db = new Float64Array(O);
      for (let b = 0; b < B; b++)
        for (let o = 0; o < O; o++) {
          let s = bias[o];
          for (let i = 0; i < I; i++) s += x[b * I + i] * w[i * O + o];
          y[b * O + o] = s;
          db[o] += dy[b * O + o];
          for (let i = 0; i < I; i++) {
            dx[b * I + i] += dy[b * O + o] * w[i * O + o];
            dw[i * O + o] += x[b * I + i] * dy[b * O + o];
          }
        }
      expect(scaledError(await read(d, yb, B * O), y)).toBeLessThan(TOL);
      expect(scaledError(await read(d, dxb, B * I), dx)).toBeLessThan(TOL);
      expect(scaledError(await read(d, dwb, I * O), dw)).toBeLessThan(TOL);
      expect(scaledError(await read(d, dbb, O), db)).toBeLessThan(TOL);
    });
  }
});

describe('conv2d NHWC', () => {
  for (const s of [
    { N: 2, H: 6, W: 5, Ci: 3, Co: 4, K: 3, stride: 1, pad: 1 },
    { N: 3, H: 28, W: 28, Ci: 1, Co: 8, K: 3, stride: 2, pad: 1 },
    { N: 2, H: 7, W: 7, Ci: 8, Co: 5, K: 3, stride: 2, pad: 0 },
  ]) {
    const Ho = Math.floor((s.H + 2 * s.pad - s.K) / s.stride) + 1,
      Wo = Math.floor((s.W + 2 * s.pad - s.K) / s.stride) + 1;
    it(`forward and backward ${JSON.stringify(s)}`, async () => {
      const d = await gpuDevice();
      const shape = { ...s, Ho, Wo };
      const r = rng(s.H * 31 + s.Co);
      const nx = s.N * s.H * s.W * s.Ci,
        nw = s.K * s.K * s.Ci * s.Co,
        ny = s.N * Ho * Wo * s.Co;
      const x = normals(r, nx),
        w = normals(r, nw),
        bias = normals(r, s.Co),
        dy = normals(r, ny);
      const [xb, wb, bb, yb, dyb, dxb, dwb, dbb] = [f32(x), f32(w), f32(bias), ny, f32(dy), nx, nw, s.Co].map((v, i) =>
        buffer(d, `c${i}`, v),
      );
      submit(d, 'test.conv', [
        K.prepareConv2dForward(d, owned, shape, xb, wb, bb, yb),
        K.prepareConv2dBackwardInput(d, owned, shape, dyb, wb, dxb),
        K.prepareConv2dBackwardWeight(d, owned, shape, xb, dyb, dwb, dbb),
      ]);
      const y = new Float64Array(ny),
        dx = new Float64Array(nx),
        dw = new Float64Array(nw),
        db = new Float64Array(s.Co);
      const X = (n: number, h: number, ww: number, c: number) => ((n * s.H + h) * s.W + ww) * s.Ci + c;
      for (let n = 0; n < s.N; n++)
        for (let oh = 0; oh < Ho; oh++)
          for (let ow = 0; ow < Wo; ow++)
            for (let co = 0; co < s.Co; co++) {
              const yi = ((n * Ho + oh) * Wo + ow) * s.Co + co;
              let acc = bias[co];
              db[co] += dy[yi];
              for (let kh = 0; kh < s.K; kh++)
                for (let kw = 0; kw < s.K; kw++) {
                  const ih = oh * s.stride - s.pad + kh,
                    iw = ow * s.stride - s.pad + kw;
                  if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                  for (let ci = 0; ci < s.Ci; ci++) {
                    const wi = ((kh * s.K + kw) * s.Ci + ci) * s.Co + co;
                    acc += x[X(n, ih, iw, ci)] * w[wi];
                    dx[X(n, ih, iw, ci)] += dy[yi] * w[wi];
                    dw[wi] += x[X(n, ih, iw, ci)] * dy[yi];
                  }
                }
              y[yi] = acc;
            }
      expect(scaledError(await read(d, yb, ny), y)).toBeLessThan(TOL);
      expect(scaledError(await read(d, dxb, nx), dx)).toBeLessThan(TOL);
      expect(scaledError(await read(d, dwb, nw), dw)).toBeLessThan(TOL);
      expect(scaledError(await read(d, dbb, s.Co), db)).toBeLessThan(TOL);
    });
  }
});

describe('activations, loss and SGD', () => {
  it('sigmoid and ReLU, forward and backward', async () => {
    const d = await gpuDevice();
    const n = 300;
    const x = normals(rng(9), n).map((v) => v * 6),
      dy = normals(rng(10), n);
    for (const op of [K.Act.sigmoid, K.Act.relu]) {
      const [xb, yb, dyb, dxb] = [f32(x), n, f32(dy), n].map((v, i) => buffer(d, `a${i}`, v));
      submit(d, 'test.act', [
        K.prepareActivation(d, owned, n, op, xb, yb),
        K.prepareActivationBackward(d, owned, n, op, yb, dyb, dxb),
      ]);
      const y = x.map((v) => (op === K.Act.sigmoid ? 1 / (1 + Math.exp(-v)) : Math.max(v, 0)));
      const dx = dy.map((g, i) => g * (op === K.Act.sigmoid ? y[i] * (1 - y[i]) : y[i] > 0 ? 1 : 0));
      expect(scaledError(await read(d, yb, n), y)).toBeLessThan(TOL);
      expect(scaledError(await read(d, dxb, n), dx)).toBeLessThan(TOL);
    }
  });

  it('softmax cross-entropy: loss, gradient, correctness', async () => {
    const d = await gpuDevice();
    const B = 37,
      C = 10;
    const z = normals(rng(11), B * C).map((v) => v * 5),
      labels = Float64Array.from({ length: B }, (_, i) => (i * 7) % C);
    const [zb, lb, lossb, dzb, cb] = [f32(z), f32(labels), B, B * C, B].map((v, i) => buffer(d, `s${i}`, v));
    submit(d, 'test.xent', [K.prepareSoftmaxXent(d, owned, B, C, zb, lb, lossb, dzb, cb)]);
    const loss = new Float64Array(B),
      dz = new Float64Array(B * C),
      correct = new Float64Array(B);
    for (let b = 0; b < B; b++) {
      const row = Array.from(z.subarray(b * C, (b + 1) * C));
      const m = Math.max(...row),
        se = row.reduce((a, v) => a + Math.exp(v - m), 0);
      loss[b] = Math.log(se) + m - row[labels[b]];
      correct[b] = row.indexOf(m) === labels[b] ? 1 : 0;
      row.forEach((v, k) => {
        dz[b * C + k] = (Math.exp(v - m) / se - (k === labels[b] ? 1 : 0)) / B;
      });
    }
    expect(scaledError(await read(d, lossb, B), loss)).toBeLessThan(TOL);
    expect(scaledError(await read(d, dzb, B * C), dz)).toBeLessThan(TOL);
    expect(Array.from(await read(d, cb, B))).toEqual(Array.from(correct));
  });

  it('SGD step p -= lr·g', async () => {
    const d = await gpuDevice();
    const p = normals(rng(12), 129),
      g = normals(rng(13), 129);
    const [pb, gb] = [f32(p), f32(g)].map((v, i) => buffer(d, `g${i}`, v));
    submit(d, 'test.sgd', [K.prepareSgd(d, owned, 129, 0.25, gb, pb)]);
    expect(
      scaledError(
        await read(d, pb, 129),
        p.map((v, i) => v - 0.25 * g[i]),
      ),
    ).toBeLessThan(TOL);
  });
});
