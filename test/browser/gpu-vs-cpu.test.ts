/**
 * GPU against the float64 CPU path, parameterised over shapes × layouts × modes, plus the hard
 * cases. Test names address one combination: "<shape> <layout> <mode>".
 */
import { describe, expect, it } from 'vitest';
import { renormSchedule, type BatchNormOptions } from '../../src/options';
import { TEST_VERSIONS, versionOptions, type TestVersion } from '../util/versions';
import type { StateDictInput } from '../../src/validate/state';
import { normals, rng } from '../util/random';
import { gpuDevice } from './device';
import { compareGpuCpu, type Scenario } from '../../src/conformance/compare';

/**
 * Scaled error bound (max |gpu - cpu| / max(1, max |cpu|) per array): f32 against float64.
 * The largest seen over this file on SwiftShader was 4e-6 (dx with M = 2, where dx nearly cancels).
 */
const TOL = 1e-5;

const SHAPES: Record<string, number[]> = {
  'odd-M 3x5x7x9': [3, 5, 7, 9],
  'C1 4x1x8x8': [4, 1, 8, 8],
  'C3 2x3x16x16': [2, 3, 16, 16],
  'N1 1x6x5x7': [1, 6, 5, 7],
  'bn1d 33x10': [33, 10],
  'bn1d-L 5x4x13': [5, 4, 13],
  '5d 2x3x3x4x5': [2, 3, 3, 4, 5],
  'multi-slice 4x3x48x48': [4, 3, 48, 48],
  'wide-C 8x300': [8, 300],
  'vec4-multi-slice 16x64x12x12': [16, 64, 12, 12],
  // NCHW: blocks of four channels (H·W = 49), and vec4s across two channels (C = 6, H·W = 25).
  'blocks 6x8x7x7': [6, 8, 7, 7],
  'vec4-split 4x6x5x5': [4, 6, 5, 5],
};

const r = rng(7);
const f32 = (a: ArrayLike<number>) => Float64Array.from(a, Math.fround);
const uniform = (n: number, lo: number, hi: number) => f32(Array.from({ length: n }, () => lo + (hi - lo) * r()));

/** Per-channel scale and offset so channels differ. */
function data(shape: number[], transform?: (v: number, c: number, i: number) => number): Float64Array {
  const [, C] = shape;
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const x = normals(
    r,
    shape.reduce((a, b) => a * b, 1),
  );
  return f32(
    x.map((v, i) => {
      const c = Math.floor(i / inner) % C;
      return transform ? transform(v, c, i) : v * (0.5 + (c % 5) * 0.4) + (c % 3) - 1;
    }),
  );
}

function init(
  C: number,
  o: BatchNormOptions,
  spread: [number, number] = [0.5, 2],
  mean: [number, number] = [-0.5, 0.5],
): StateDictInput {
  const sd: StateDictInput = {};
  if (o.affine !== false) {
    sd.weight = uniform(C, 0.5, 1.5);
    sd.bias = uniform(C, -0.5, 0.5);
  }
  if (o.trackRunningStats !== false) {
    sd.running_mean = uniform(C, ...mean);
    sd[o.renorm ? 'running_std' : 'running_var'] = uniform(C, ...spread);
    sd.num_batches_tracked = 0;
  }
  return sd;
}

interface Mode {
  options: BatchNormOptions;
  steps: boolean[];
  spread?: [number, number];
  mean?: [number, number];
}
const MODES: Record<string, Mode> = {
  'train+eval': { options: {}, steps: [true, true, false] },
  eval: { options: {}, steps: [false] },
  'no-affine': { options: { affine: false }, steps: [true, false] },
  'no-running-stats': { options: { trackRunningStats: false }, steps: [true, false] },
  'momentum-null': { options: { momentum: null }, steps: [true, true, true] },
  keras: { options: { convention: 'keras' }, steps: [true, false] },
  'renorm-clipped': {
    options: { renorm: { rmax: 1.5, dmax: 0.5 } },
    steps: [true, true, false],
    spread: [0.05, 0.2],
    mean: [5, 10],
  },
  // rmax 1 -> 3 and dmax 0 -> 5 over the first two steps: the clip changes every step.
  'renorm-schedule': {
    options: { renorm: { schedule: renormSchedule({ rmaxSteps: [0, 2], dmaxSteps: [0, 2] }) } },
    steps: [true, true, true, false],
    spread: [0.3, 3],
    mean: [-2, 2],
  },
  'renorm-unclipped': {
    options: { renorm: { rmax: 3, dmax: 5 } },
    steps: [true, true, false],
    spread: [0.8, 1.2],
    mean: [-0.1, 0.1],
  },
};

function scenario(
  layout: 'NCHW' | 'NHWC',
  shape: number[],
  mode: Mode,
  x: (i: number) => Float64Array = () => data(shape),
): Scenario {
  return {
    layout,
    shape,
    options: mode.options,
    init: init(shape[1], mode.options, mode.spread, mode.mean),
    steps: mode.steps.map((training, i) => ({ training, x: x(i), dy: data(shape, (v) => v) })),
  };
}

async function check(s: Scenario, tol: Partial<Record<string, number>> = {}): Promise<void> {
  const errors = await compareGpuCpu(await gpuDevice(), s);
  expect(Object.keys(errors).length).toBeGreaterThan(0);
  for (const [k, e] of Object.entries(errors))
    expect(e, `${k}: ${JSON.stringify(errors)}`).toBeLessThanOrEqual(tol[k] ?? TOL);
}

const withVersion = (m: Mode, v: TestVersion): Mode => ({ ...m, options: versionOptions(v, m.options) });

/**
 * dγ = invstd·r·Σdy·(x − mean): an f32 error δ in the batch mean (a few ulps of |x|) adds
 * δ·invstd·r·Σdy to it. With renorm-schedule's data (means up to ±2, σ down to 0.3) and one
 * channel of 256 values, that reaches 1.1e-5 of the scale under one merge order of the partials
 * (version 5's tree on a GPU) and stays under 1e-5 under others; the float32 floor, not a kernel's.
 */
const MODE_TOL: Record<string, Partial<Record<string, number>>> = { 'renorm-schedule': { dgamma: 2e-5 } };

for (const version of TEST_VERSIONS) {
  for (const [shapeName, shape] of Object.entries(SHAPES)) {
    for (const layout of ['NCHW', 'NHWC'] as const) {
      describe(`v${version} ${shapeName} ${layout}`, () => {
        for (const [modeName, mode] of Object.entries(MODES)) {
          it(`v${version} ${shapeName} ${layout} ${modeName}`, () =>
            check(scenario(layout, shape, withVersion(mode, version)), MODE_TOL[modeName]));
        }
      });
    }
  }
}

for (const version of TEST_VERSIONS)
  describe(`v${version} hard cases`, () => {
    const train = withVersion(MODES['train+eval'], version);
    for (const layout of ['NCHW', 'NHWC'] as const) {
      it(`offset 1e4 ${layout}`, () =>
        check(scenario(layout, [4, 6, 9, 7], train, () => data([4, 6, 9, 7], (v) => 1e4 + v))));
      it(`offset 1e4, tiny variance ${layout}`, () =>
        check(scenario(layout, [4, 5, 8, 8], train, () => data([4, 5, 8, 8], (v, c) => 1e4 + v * 10 ** -(c % 3)))));
      it(`constant channel ${layout}`, () =>
        check(scenario(layout, [3, 4, 6, 6], train, () => data([3, 4, 6, 6], (v, c) => (c === 1 ? 3 : v)))));
      it(`all channels constant ${layout}`, () =>
        check(scenario(layout, [2, 3, 5, 5], train, () => data([2, 3, 5, 5], (_v, c) => c - 1))));
      it(`M = 257 (workgroup + 1) ${layout}`, () => check(scenario(layout, [257, 5], train)));
      it(`M = 1025, C = 7 ${layout}`, () => check(scenario(layout, [5, 7, 5, 41], train)));
      it(`N = 1, H·W = 2 ${layout}`, () => check(scenario(layout, [1, 3, 1, 2], train)));
      // With two values per channel, x - mean = ±σ and dx = A·dy + B·(x - mean) + D cancels to a
      // value far below its terms (|A·dy| ~ γ·|dy|/σ): f32 rounding of the terms, not the kernels,
      // sets the floor. Measured up to 1.2e-5 of the dx scale, depending on the data.
      it(`M = 2 per channel ${layout}`, () => check(scenario(layout, [2, 9], train), { dx: 5e-5 }));
      it(`large values 1e6 scale ${layout}`, () =>
        check(scenario(layout, [4, 3, 4, 4], train, () => data([4, 3, 4, 4], (v) => v * 1e6))));
      it(`eval at offset 1e4 ${layout}`, () =>
        check(
          scenario(
            layout,
            [2, 4, 5, 5],
            { options: versionOptions(version), steps: [false], mean: [9999, 10001] },
            () => data([2, 4, 5, 5], (v) => 1e4 + v),
          ),
        ));
      it(`vec4 path, C = 8, odd rows ${layout}`, () => check(scenario(layout, [3, 8, 7, 5], train)));
      it(`vec4 in both layouts (C = 8, H·W = 64), offset 1e4 ${layout}`, () =>
        check(scenario(layout, [4, 8, 8, 8], train, () => data([4, 8, 8, 8], (v) => 1e4 + v))));
      it(`many slices (M = 20000, C = 4: two v4 merge levels in NHWC) ${layout}`, () =>
        check(scenario(layout, [8, 4, 50, 50], train)));
      it(`vec4 path, C = 68 (lanes not filled), offset 1e4 ${layout}`, () =>
        check(scenario(layout, [5, 68, 3, 3], train, () => data([5, 68, 3, 3], (v) => 1e4 + v))));
    }
  });

/**
 * Out-of-range data has one meaning on the GPU and the CPU path (src/cpu/reference.ts, RANGE): a
 * channel with ±Inf, NaN, or a value more than 2^47 from its first value gets NaN statistics, so
 * NaN outputs, NaN r and d, and keeps its running statistics; the other channels are untouched.
 * Each shipped path (rows, runs, thread) in both layouts, with an upstream gradient beyond range in
 * one channel too.
 */
describe('extreme data: the GPU and the CPU path agree', () => {
  const DISTORT: Record<string, (v: number, c: number, i: number) => number> = {
    '+Inf in channel 1': (v, c, i) => (c === 1 && i % 7 === 3 ? Infinity : v),
    '±Inf in channel 2': (v, c, i) => (c === 2 && i % 11 === 5 ? (i % 2 ? Infinity : -Infinity) : v),
    'NaN in channel 0': (v, c, i) => (c === 0 && i % 13 === 1 ? NaN : v),
    'values near ±3e38 in channel 3': (v, c) => (c === 3 ? Math.fround(v * 1e38) : v),
    'a spread of 1e15 in channel 1': (v, c) => (c === 1 ? Math.fround(v * 1e15) : v),
  };
  const SHAPES: [string, number[]][] = [
    ['rows (C = 8)', [4, 8, 3, 5]],
    ['runs (H·W = 16)', [3, 8, 4, 4]],
    ['thread (C = 6, H·W = 7)', [4, 6, 7, 1]],
    ['blocks (C = 8, H·W = 9)', [4, 8, 3, 3]],
  ];
  for (const [shapeName, shape] of SHAPES) {
    for (const layout of ['NCHW', 'NHWC'] as const) {
      for (const [name, distort] of Object.entries(DISTORT)) {
        for (const renorm of [false, true]) {
          const mode: Mode = renorm ? { ...MODES['renorm-clipped'], steps: [true, true, false] } : MODES['train+eval'];
          it(`${shapeName} ${layout}: ${name}${renorm ? ', renorm' : ''}`, () =>
            check(
              scenario(layout, shape, mode, (step) =>
                data(shape, (v, c, i) => (step === 0 ? distort(v, c, i) : v * (0.5 + (c % 5) * 0.4) + (c % 3) - 1)),
              ),
            ));
        }
      }
      it(`${shapeName} ${layout}: an upstream gradient beyond 2^47 in channel 1`, () => {
        const s = scenario(layout, shape, MODES['train+eval']);
        s.steps[0].dy = s.steps[0].dy.map((v, i) =>
          Math.floor(i / shape.slice(2).reduce((a, b) => a * b, 1)) % shape[1] === 1 ? Math.fround(v * 1e30) : v,
        );
        return check(s);
      });
    }
  }
});
