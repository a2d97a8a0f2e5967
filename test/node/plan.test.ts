import { describe, expect, it } from 'vitest';
import { geometry, type Layout } from '../../src/layout';
import {
  BLOCKS,
  DEFAULT_TABLE,
  finalizeTree,
  MERGE_GROUP,
  mergeLevels,
  PER_THREAD,
  ROWS,
  RUNS,
  THREAD,
  TREE_SLICES,
  TREE_WIDTH,
  type DeviceTraits,
} from '../../src/plan/table';
import { VERSIONS } from '../../dev/kernels/versions';

const GPU: DeviceTraits = { maxPerDimension: 65535, fallback: false };
const CPU: DeviceTraits = { maxPerDimension: 65535, fallback: true };

describe('the default dispatch table', () => {
  // Shape, the first stage and elementwise passes of version 5, and version 4's first stage.
  const cases: [string, Layout, number[], string, string, string][] = [
    ['NHWC 64x56x56x256', 'NHWC', [64, 56, 56, 256], ROWS.kind, 'rows', ROWS.kind],
    ['NHWC 64x112x112x64', 'NHWC', [64, 112, 112, 64], ROWS.kind, 'rows', ROWS.kind],
    ['NCHW 64x256x56x56', 'NCHW', [64, 256, 56, 56], RUNS.kind, 'vec4', RUNS.kind],
    ['NCHW 64x2048x7x7 (H·W = 49)', 'NCHW', [64, 2048, 7, 7], BLOCKS.kind, 'vec4', THREAD.kind],
    ['NCHW 3x8x3x1 (H·W = 3)', 'NCHW', [3, 8, 3, 1], BLOCKS.kind, 'vec4', THREAD.kind],
    ['NCHW C = 6, 5x5', 'NCHW', [4, 6, 5, 5], THREAD.kind, 'vec4', THREAD.kind],
    ['NCHW C = 6, 5x5, N odd', 'NCHW', [3, 6, 5, 5], THREAD.kind, 'scalar', THREAD.kind],
    ['[N,C] 4096x1024', 'NC', [4096, 1024], ROWS.kind, 'rows', ROWS.kind],
    ['NHWC C = 6', 'NHWC', [2, 3, 3, 6], THREAD.kind, 'scalar', THREAD.kind],
  ];
  for (const [name, layout, shape, kind, ew, v4kind] of cases) {
    it(`${name}: ${kind} and ${ew}, every slice non-empty, at most ${TREE_SLICES} partials for the tree finalize (v5)`, () => {
      const g = geometry(layout, shape);
      const p = DEFAULT_TABLE.reduction(g, GPU, 1);
      expect(p.stage.kind).toBe(kind);
      expect(DEFAULT_TABLE.elementwise(g, p).kind).toBe(ew);
      expect(p.tree).toBe(true);
      expect(p.levels).toEqual([]);
      expect(p.slices).toBeLessThanOrEqual(TREE_SLICES);
      expect((p.slices - 1) * p.chunk).toBeLessThan(g.M);
      // Blocks take whole samples: every slice has the same count of each of its four channels.
      if (kind === BLOCKS.kind) expect(p.chunk % g.inner).toBe(0);
      // A tree wide enough that no thread merges more than PER_THREAD partials, and no wider.
      const w = finalizeTree(p, p.slices, 1);
      if (p.slices <= PER_THREAD) expect(w).toBeNull();
      else {
        expect(Math.ceil(p.slices / w!)).toBeLessThanOrEqual(PER_THREAD);
        expect(w! === 2 || Math.ceil(p.slices / (w! / 2)) > PER_THREAD).toBe(true);
        expect(w!).toBeLessThanOrEqual(TREE_WIDTH);
      }
    });
    it(`${name}: on a fallback adapter at most ${PER_THREAD} partials, merged by the serial finalize`, () => {
      const g = geometry(layout, shape);
      const p = DEFAULT_TABLE.reduction(g, CPU, 1);
      expect(p.stage.kind).toBe(kind);
      expect(p.slices).toBeLessThanOrEqual(PER_THREAD);
      expect(finalizeTree(p, p.slices, 1)).toBeNull();
    });
    it(`${name}: version 4 leaves at most ${MERGE_GROUP} partials for its serial finalize`, () => {
      const g = geometry(layout, shape);
      const p = VERSIONS[4].reduction(g, GPU, 1);
      expect(p.stage.kind).toBe(v4kind);
      const loads = v4kind === 'runs' ? g.M / 4 : g.M;
      expect(p.slices).toBeLessThanOrEqual(loads);
      expect((p.slices - 1) * p.chunk).toBeLessThan(g.M);
      const last = p.levels.length ? p.levels[p.levels.length - 1] : p.slices;
      expect(last).toBeLessThanOrEqual(MERGE_GROUP);
      expect(VERSIONS[4].elementwise(g, p).kind).toBe(
        v4kind === 'rows'
          ? 'rows'
          : g.count % 4 === 0 && (g.inner % 4 === 0 || (g.inner === 1 && g.C % 4 === 0))
            ? 'vec4'
            : 'scalar',
      );
    });
  }

  it('merge levels divide by MERGE_GROUP, rounding up', () => {
    expect(mergeLevels(MERGE_GROUP)).toEqual([]);
    expect(mergeLevels(MERGE_GROUP + 1)).toEqual([2]);
    expect(mergeLevels(1250)).toEqual([40, 2]);
    expect(mergeLevels(65536)).toEqual([2048, 64, 2]);
  });
});
