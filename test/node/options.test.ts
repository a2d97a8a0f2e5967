import { describe, expect, it } from 'vitest';
import { OptionError } from '../../src/errors';
import { newStatWeight } from '../../src/module/rules';
import { renormSchedule } from '../../src/options';
import { resolveOptions } from '../../src/validate/options';

describe('options', () => {
  it('PyTorch defaults', () => {
    expect(resolveOptions()).toMatchObject({
      eps: 1e-5,
      momentum: 0.1,
      convention: 'pytorch',
      unbiased: true,
      affine: true,
      trackRunningStats: true,
      renorm: null,
    });
  });
  it('Keras convention: momentum is the old weight, eps 1e-3, biased running variance', () => {
    const o = resolveOptions({ convention: 'keras' });
    expect(o).toMatchObject({ eps: 1e-3, momentum: 0.99, unbiased: false });
    expect(newStatWeight(o, 1)).toBeCloseTo(0.01, 15);
  });
  it('momentum null gives the cumulative average 1/num_batches_tracked', () => {
    const o = resolveOptions({ momentum: null });
    expect([1, 2, 4].map((n) => newStatWeight(o, n))).toEqual([1, 0.5, 0.25]);
  });
  const bad: [string, object][] = [
    ['eps = 0', { eps: 0 }],
    ['eps < 0', { eps: -1e-5 }],
    ['eps NaN', { eps: NaN }],
    ['eps Infinity', { eps: Infinity }],
    ['momentum < 0', { momentum: -0.1 }],
    ['momentum > 1', { momentum: 1.5 }],
    ['momentum NaN', { momentum: NaN }],
    ['keras momentum null', { convention: 'keras', momentum: null }],
    ['unknown convention', { convention: 'flax' }],
    ['unknown runningVariance', { runningVariance: 'sample' }],
    ['renorm rmax < 1', { renorm: { rmax: 0.5 } }],
    ['renorm dmax < 0', { renorm: { dmax: -1 } }],
    ['renorm rmax Infinity', { renorm: { rmax: Infinity } }],
    ['renorm dmax NaN', { renorm: { dmax: NaN } }],
  ];
  for (const [name, o] of bad)
    it(`refuses ${name} with OptionError`, () => expect(() => resolveOptions(o)).toThrow(OptionError));
});

describe('renormSchedule', () => {
  it("defaults to the paper's warm-up", () => {
    const s = renormSchedule();
    expect(s(0)).toEqual({ rmax: 1, dmax: 0 });
    expect(s(5000)).toEqual({ rmax: 1, dmax: 0 });
    expect(s(15000).dmax).toBeCloseTo(2.5, 12);
    expect(s(22500).rmax).toBeCloseTo(2, 12);
    expect(s(40000)).toEqual({ rmax: 3, dmax: 5 });
    expect(s(1e9)).toEqual({ rmax: 3, dmax: 5 });
  });
  it('takes custom ranges', () => {
    const s = renormSchedule({ rmaxSteps: [0, 10], dmaxSteps: [0, 20], rmaxEnd: 2, dmaxEnd: 1 });
    expect(s(5)).toEqual({ rmax: 1.5, dmax: 0.25 });
  });
  it('refuses a reversed range', () => expect(() => renormSchedule({ rmaxSteps: [100, 10] })).toThrow(OptionError));
  it('refuses rmaxEnd < 1 and dmaxStart < 0', () => {
    expect(() => renormSchedule({ rmaxEnd: 0.5 })).toThrow(OptionError);
    expect(() => renormSchedule({ dmaxStart: -1 })).toThrow(OptionError);
  });
});
