import { describe, expect, it } from 'vitest';
import { fromHalfBits, roundHalf, toHalfBits } from '../../src/f16';

describe('binary16 conversion', () => {
  const cases: [string, number, number][] = [
    ['1', 1, 0x3c00],
    ['-2', -2, 0xc000],
    ['65504 (max)', 65504, 0x7bff],
    ['65520 rounds to Infinity', 65520, 0x7c00],
    ['2^-14 (min normal)', 2 ** -14, 0x0400],
    ['2^-24 (min subnormal)', 2 ** -24, 0x0001],
    ['2^-25 ties to even (0)', 2 ** -25, 0x0000],
    ['1 + 2^-11 ties to even (1)', 1 + 2 ** -11, 0x3c00],
    ['1 + 3·2^-11 ties to even (1 + 2^-9)', 1 + 3 * 2 ** -11, 0x3c02],
    ['-0', -0, 0x8000],
    ['Infinity', Infinity, 0x7c00],
    ['1e4', 1e4, 0x70e2],
  ];
  for (const [name, v, bits] of cases) it(`${name} -> 0x${bits.toString(16)}`, () => expect(toHalfBits(v)).toBe(bits));

  it('NaN stays NaN', () => expect(Number.isNaN(fromHalfBits(toHalfBits(NaN)))).toBe(true));

  it('every finite pattern round-trips, and rounding is to the nearest value', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = fromHalfBits(h);
      if (!Number.isFinite(v)) continue;
      expect(toHalfBits(v) === h || (v === 0 && (h & 0x7fff) === 0)).toBe(true);
    }
    for (const v of [0.1, 3.14159, -123.456, 1e-5, 9999.7]) {
      const r = roundHalf(v);
      const bits = toHalfBits(v);
      const up = fromHalfBits(bits + 1),
        down = fromHalfBits(bits - 1);
      expect(Math.abs(r - v)).toBeLessThanOrEqual(Math.min(Math.abs(up - v), Math.abs(down - v)));
    }
  });
});
