import { describe, expect, it } from 'vitest';
import { BatchSizeError, LayoutError, ShapeError } from '../../src/errors';
import { geometry, type Layout } from '../../src/layout';
import { channelsFirstShape, permute, shapeInLayout } from '../../src/conformance/layouts';

describe('geometry: the [outer, C, inner] view', () => {
  const cases: [Layout, number[], { C: number; outer: number; inner: number }][] = [
    ['NCHW', [2, 3, 4, 5], { C: 3, outer: 2, inner: 20 }],
    ['NHWC', [2, 4, 5, 3], { C: 3, outer: 40, inner: 1 }],
    ['NCHW', [16, 12], { C: 12, outer: 16, inner: 1 }],
    ['NHWC', [16, 12], { C: 12, outer: 16, inner: 1 }],
    ['NC', [7, 5], { C: 5, outer: 7, inner: 1 }],
    ['NCL', [4, 6, 9], { C: 6, outer: 4, inner: 9 }],
    ['NLC', [4, 9, 6], { C: 6, outer: 36, inner: 1 }],
    ['NCDHW', [2, 3, 2, 3, 4], { C: 3, outer: 2, inner: 24 }],
    ['NDHWC', [2, 2, 3, 4, 3], { C: 3, outer: 48, inner: 1 }],
  ];
  for (const [layout, shape, want] of cases) {
    it(`${layout} ${shape.join('x')}`, () => {
      const g = geometry(layout, shape);
      expect({ C: g.C, outer: g.outer, inner: g.inner }).toEqual(want);
      expect(g.M).toBe(g.outer * g.inner);
      expect(g.count).toBe(shape.reduce((a, b) => a * b, 1));
    });
  }

  it('channelsFirstShape and shapeInLayout are inverse', () => {
    const g = geometry('NHWC', [2, 4, 5, 3]);
    expect(channelsFirstShape(g)).toEqual([2, 3, 4, 5]);
    expect(shapeInLayout([2, 3, 4, 5], 'NHWC')).toEqual([2, 4, 5, 3]);
    expect(shapeInLayout([2, 3, 4, 5], 'NCHW')).toEqual([2, 3, 4, 5]);
  });

  it('permute NCHW -> NHWC moves element (n,c,h,w) to (n,h,w,c) and back', () => {
    const shape = [2, 3, 2, 2];
    const data = Float64Array.from({ length: 24 }, (_, i) => i);
    const nhwc = permute(data, shape, 'NHWC');
    // (n=1, c=2, h=1, w=0): NCHW index 1*12 + 2*4 + 1*2 + 0 = 22; NHWC index ((1*2+1)*2+0)*3 + 2 = 20
    expect(nhwc[20]).toBe(22);
    expect(Array.from(permute(nhwc, shape, 'NHWC', true))).toEqual(Array.from(data));
  });
});

describe('geometry refusals', () => {
  it('unknown layout -> LayoutError', () =>
    expect(() => geometry('NWHC' as Layout, [1, 2, 3, 4])).toThrow(LayoutError));
  it('rank 1 -> ShapeError', () => expect(() => geometry('NCHW', [4])).toThrow(ShapeError));
  it('rank 6 -> ShapeError', () => expect(() => geometry('NCHW', [1, 2, 3, 4, 5, 6])).toThrow(ShapeError));
  it('fixed-rank layout with the wrong rank -> ShapeError', () =>
    expect(() => geometry('NCL', [2, 3])).toThrow(ShapeError));
  it('non-integer dimension -> ShapeError', () => expect(() => geometry('NCHW', [2, 3.5, 4, 4])).toThrow(ShapeError));
  it('empty batch -> BatchSizeError', () => expect(() => geometry('NCHW', [0, 3, 4, 4])).toThrow(BatchSizeError));
  it('zero spatial dimension -> ShapeError', () => expect(() => geometry('NHWC', [2, 0, 4, 3])).toThrow(ShapeError));
  it('messages name the argument and the fix', () => {
    expect(() => geometry('XYZ' as Layout, [1, 2])).toThrow(/layout "XYZ" is not supported; use one of NCHW, NHWC/);
  });
});
