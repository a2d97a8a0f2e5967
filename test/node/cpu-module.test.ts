import { describe, expect, it } from 'vitest';
import { CpuBatchNorm } from '../../src/cpu/batchnorm';
import { BatchSizeError, OptionError, ShapeError, StateDictError } from '../../src/errors';
import { normals, rng } from '../util/random';
import type { StateDictInput } from '../../src/validate/state';

const shape = [4, 3, 5, 5];
const x = normals(rng(1), 300).map((v, i) => v * 2 + (i % 7));
const dy = normals(rng(2), 300);

describe('CpuBatchNorm semantics', () => {
  it('training normalises each channel to mean 0, variance 1 (biased)', () => {
    const bn = new CpuBatchNorm(3);
    const y = bn.forward(x, shape, 'NCHW');
    for (let c = 0; c < 3; c++) {
      const v: number[] = [];
      for (let n = 0; n < 4; n++) for (let i = 0; i < 25; i++) v.push(y[(n * 3 + c) * 25 + i]);
      const m = v.reduce((a, b) => a + b) / v.length;
      const s = v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length;
      expect(m).toBeCloseTo(0, 12);
      expect(s).toBeCloseTo(1 - (1e-5 / (s + 1e-5)) * s, 4);
    }
    expect(bn.numBatchesTracked).toBe(1);
  });

  it('the Keras form updates running = m·running + (1-m)·batch with the biased variance', () => {
    const a = new CpuBatchNorm(3, { convention: 'keras', momentum: 0.9 });
    const b = new CpuBatchNorm(3, { momentum: 0.1, runningVariance: 'biased' });
    a.forward(x, shape, 'NCHW');
    b.forward(x, shape, 'NCHW');
    for (let c = 0; c < 3; c++) {
      expect(a.runningMean[c]).toBeCloseTo(b.runningMean[c], 14);
      expect(a.runningSpread[c]).toBeCloseTo(b.runningSpread[c], 14);
    }
  });

  it('trackRunningStats: false uses batch statistics in eval and keeps no state', () => {
    const t = new CpuBatchNorm(3, { trackRunningStats: false });
    const yTrain = t.forward(x, shape, 'NCHW');
    t.eval();
    expect(Array.from(t.forward(x, shape, 'NCHW'))).toEqual(Array.from(yTrain));
    expect(t.stateKeys()).toEqual(['weight', 'bias']);
  });

  it('Batch Renorm with rmax = 1, dmax = 0 reproduces batch norm exactly', () => {
    const bn = new CpuBatchNorm(3);
    const rn = new CpuBatchNorm(3, { renorm: { rmax: 1, dmax: 0 } });
    bn.loadStateDict({
      weight: [1.5, 0.5, -1],
      bias: [0.1, 0.2, 0.3],
      running_mean: [0, 1, 2],
      running_var: [1, 2, 3],
      num_batches_tracked: 0,
    });
    rn.loadStateDict({
      weight: [1.5, 0.5, -1],
      bias: [0.1, 0.2, 0.3],
      running_mean: [0, 1, 2],
      running_std: [1, 2, 3],
      num_batches_tracked: 0,
    });
    expect(Array.from(rn.forward(x, shape, 'NCHW'))).toEqual(Array.from(bn.forward(x, shape, 'NCHW')));
    const g1 = bn.backward(x, dy),
      g2 = rn.backward(x, dy);
    expect(Array.from(g2.dx)).toEqual(Array.from(g1.dx));
    expect(Array.from(g2.dgamma)).toEqual(Array.from(g1.dgamma));
  });

  it('loading running_var into a renorm module converts sigma = sqrt(var + eps)', () => {
    const rn = new CpuBatchNorm(2, { renorm: true, eps: 1e-3 });
    rn.loadStateDict({
      weight: [1, 1],
      bias: [0, 0],
      running_mean: [0, 0],
      running_var: [4, 0.25],
      num_batches_tracked: 3,
    });
    expect(rn.runningSpread[0]).toBeCloseTo(Math.sqrt(4.001), 15);
    expect(rn.runningSpread[1]).toBeCloseTo(Math.sqrt(0.251), 15);
    expect(rn.stateDict()).toHaveProperty('running_std');
    expect(rn.stateDict()).toMatchObject({ renorm_rmax: 3, renorm_dmax: 5, num_batches_tracked: 3 });
  });
});

describe('CpuBatchNorm refusals change nothing', () => {
  const fresh = () => {
    const bn = new CpuBatchNorm(3);
    bn.forward(x, shape, 'NCHW');
    return bn;
  };
  const snapshot = (bn: CpuBatchNorm) =>
    JSON.stringify({ ...bn.stateDict(), rm: Array.from(bn.runningMean), rv: Array.from(bn.runningSpread) });
  const refusals: [string, (bn: CpuBatchNorm) => void, new (...a: never[]) => Error][] = [
    ['x of the wrong length', (bn) => bn.forward(x.subarray(1), shape, 'NCHW'), ShapeError],
    ['C different from the module', (bn) => bn.forward(x, [4, 25, 3], 'NCL'), ShapeError],
    ['one value per channel in training', (bn) => bn.forward([1, 2, 3], [1, 3]), BatchSizeError],
    ['an empty batch', (bn) => bn.forward([], [0, 3]), BatchSizeError],
    [
      'a state dict missing a key',
      (bn) => bn.loadStateDict({ weight: [1, 1, 1], bias: [0, 0, 0], running_mean: [0, 0, 0], num_batches_tracked: 0 }),
      StateDictError,
    ],
    [
      'a state dict with an extra key',
      (bn) => bn.loadStateDict({ ...bn.stateDict(), momentum: 0.1 } as StateDictInput),
      StateDictError,
    ],
    ['a state dict with a wrong length', (bn) => bn.loadStateDict({ ...bn.stateDict(), bias: [0, 0] }), StateDictError],
    [
      'a state dict with NaN',
      (bn) => bn.loadStateDict({ ...bn.stateDict(), running_mean: [0, NaN, 0] }),
      StateDictError,
    ],
    [
      'a state dict with negative variance',
      (bn) => bn.loadStateDict({ ...bn.stateDict(), running_var: [1, -1, 1] }),
      StateDictError,
    ],
  ];
  for (const [name, f, type] of refusals) {
    it(`${name} -> ${type.name}`, () => {
      const bn = fresh();
      const before = snapshot(bn);
      expect(() => f(bn)).toThrow(type);
      expect(snapshot(bn)).toBe(before);
    });
  }
  it('state dict errors name the key', () => {
    expect(() => fresh().loadStateDict({ ...fresh().stateDict(), running_mean: [0, NaN, 0] })).toThrow(
      /'running_mean'.*index 1/,
    );
  });
  it('renorm without running statistics is refused', () => {
    expect(() => new CpuBatchNorm(3, { renorm: true, trackRunningStats: false })).toThrow(OptionError);
  });
});
