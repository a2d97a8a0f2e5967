import { describe, expect, it } from 'vitest';
import { geometry, type Layout } from '../../src/layout';
import { MERGE_GROUP, mergeLevels } from '../../src/kernels/merge';
import { reductionKind, threadPlan } from '../../src/kernels/plan';

describe('version 4 reduction plans', () => {
  const cases: [string, Layout, number[], string][] = [
    ['NHWC 64x56x56x256', 'NHWC', [64, 56, 56, 256], 'rows'],
    ['NHWC 64x112x112x64', 'NHWC', [64, 112, 112, 64], 'rows'],
    ['NCHW 64x256x56x56', 'NCHW', [64, 256, 56, 56], 'runs'],
    ['NCHW 64x2048x7x7 (H·W = 49)', 'NCHW', [64, 2048, 7, 7], 'thread'],
    ['[N,C] 4096x1024', 'NC', [4096, 1024], 'rows'],
    ['NHWC C = 6', 'NHWC', [2, 3, 3, 6], 'thread'],
  ];
  for (const [name, layout, shape, kind] of cases) {
    it(`${name}: ${kind}, every slice non-empty, at most ${MERGE_GROUP} partials left for the finalize pass`, () => {
      const g = geometry(layout, shape);
      const k = reductionKind(g, 4);
      expect(k).toBe(kind);
      const p = threadPlan(g, k as 'rows' | 'runs' | 'thread', 65535, true);
      const loads = k === 'runs' ? g.M / 4 : g.M;
      expect(p.slices).toBeLessThanOrEqual(loads);
      expect((p.slices - 1) * p.chunk).toBeLessThan(g.M);
      const last = p.levels.length ? p.levels[p.levels.length - 1] : p.slices;
      expect(last).toBeLessThanOrEqual(MERGE_GROUP);
    });
  }

  it('merge levels divide by MERGE_GROUP, rounding up', () => {
    expect(mergeLevels(MERGE_GROUP)).toEqual([]);
    expect(mergeLevels(MERGE_GROUP + 1)).toEqual([2]);
    expect(mergeLevels(1250)).toEqual([40, 2]);
    expect(mergeLevels(65536)).toEqual([2048, 64, 2]);
  });
});
