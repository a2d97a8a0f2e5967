/**
 * fast-check arbitraries for the randomised tests: shapes, layouts, module options and value
 * distributions, from which a GPU-vs-CPU scenario is built. fast-check shrinks a failing case to a
 * minimal one (fewer dimensions, smaller sizes, simpler options) and reports the seed and path that
 * replay it: BN_PROPERTY_SEED=... BN_PROPERTY_PATH=... npm test.
 */
import fc from 'fast-check';
import type { BatchNormOptions } from '../../src/options';
import type { StateDictInput } from '../../src/validate/state';
import type { Scenario } from '../../src/conformance/compare';
import { TEST_VERSIONS, versionOptions } from './versions';
import { rng } from './random';

export type Dist =
  'normal' | 'offset-1e4' | 'constant-channel' | 'tiny-variance' | 'huge-variance' | 'subnormal' | 'mixed';
export const DISTS: Dist[] = [
  'normal',
  'offset-1e4',
  'constant-channel',
  'tiny-variance',
  'huge-variance',
  'subnormal',
  'mixed',
];
export type Mode = 'train' | 'eval' | 'no-affine' | 'no-running-stats' | 'momentum-null' | 'keras' | 'renorm';

/** [N, C, ...spatial] of rank 2 to 5 with at least two values per channel. */
export const shapeArb = fc
  .tuple(
    fc.integer({ min: 2, max: 5 }),
    fc.constantFrom(1, 2, 3, 4, 7, 16),
    fc.constantFrom(1, 2, 3, 4, 5, 8, 12, 31, 64),
    fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 3, maxLength: 3 }),
  )
  .map(([rank, N, C, dims]) => {
    const spatial = dims.slice(0, rank - 2).map((d) => (rank === 5 ? Math.min(d, 4) : d));
    const values = N * spatial.reduce((a, b) => a * b, 1);
    return [values < 2 ? N + 1 : N, C, ...spatial];
  });

export const layoutArb = fc.constantFrom('NCHW' as const, 'NHWC' as const);
export const modeArb = fc.constantFrom<Mode>(
  'train',
  'eval',
  'no-affine',
  'no-running-stats',
  'momentum-null',
  'keras',
  'renorm',
);
export const distArb = fc.constantFrom(...DISTS);
export const epsArb = fc.constantFrom(1e-5, 1e-3, 0.1);
export const versionArb = fc.constantFrom(...TEST_VERSIONS);

/** The module options of a mode (on a kernel version, for the dev tables). */
export function modeOptions(mode: Mode, eps: number, clip: { rmax: number; dmax: number }): BatchNormOptions {
  return {
    eps,
    ...(mode === 'no-affine' ? { affine: false } : {}),
    ...(mode === 'no-running-stats' ? { trackRunningStats: false } : {}),
    ...(mode === 'momentum-null' ? { momentum: null } : {}),
    ...(mode === 'keras' ? { convention: 'keras' as const } : {}),
    ...(mode === 'renorm' ? { renorm: clip } : {}),
  };
}

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
}

/** One value of channel c under distribution d. */
function value(r: () => number, d: Dist, c: number): number {
  const z = gauss(r);
  switch (d === 'mixed' ? DISTS[c % 6] : d) {
    case 'offset-1e4':
      return 1e4 + z;
    case 'constant-channel':
      return c % 3 === 0 ? 0.75 : z;
    case 'tiny-variance':
      return 1 + z * 1e-5;
    case 'huge-variance':
      return z * 1e12;
    case 'subnormal':
      return z * 1e-40;
    default:
      return z * (1 + c) - c;
  }
}

export interface Drawn {
  /** What the case is, for a failure's report. */
  name: string;
  scenario: Scenario;
}

/** A GPU-vs-CPU scenario: the structure from the arbitraries, the tensors from a data seed. */
export const scenarioArb = fc
  .record({
    shape: shapeArb,
    layout: layoutArb,
    mode: modeArb,
    dist: distArb,
    eps: epsArb,
    version: versionArb,
    clip: fc.record({
      rmax: fc.double({ min: 1, max: 4, noNaN: true }),
      dmax: fc.double({ min: 0, max: 5, noNaN: true }),
    }),
    data: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })
  .map(({ shape, layout, mode, dist, eps, version, clip, data }): Drawn => {
    const r = rng(data);
    const C = shape[1];
    const count = shape.reduce((a, b) => a * b, 1);
    const inner = shape.slice(2).reduce((a, b) => a * b, 1);
    const tensor = () =>
      Float64Array.from({ length: count }, (_, i) => Math.fround(value(r, dist, Math.floor(i / inner) % C)));
    const init: StateDictInput = {};
    if (mode !== 'no-affine') {
      init.weight = Float64Array.from({ length: C }, () => Math.fround(0.5 + r()));
      init.bias = Float64Array.from({ length: C }, () => Math.fround(gauss(r)));
    }
    if (mode !== 'no-running-stats') {
      init.running_mean = Float64Array.from({ length: C }, () => Math.fround(gauss(r)));
      init[mode === 'renorm' ? 'running_std' : 'running_var'] = Float64Array.from({ length: C }, () =>
        Math.fround(0.2 + 2 * r()),
      );
      init.num_batches_tracked = 0;
    }
    const steps = (mode === 'eval' ? [false] : [true, true, false]).map((training) => ({
      training,
      x: tensor(),
      dy: Float64Array.from({ length: count }, () => Math.fround(gauss(r))),
    }));
    return {
      name: `${layout} [${shape}] ${mode} ${dist} eps ${eps} v${version} data ${data}`,
      scenario: { layout, shape, options: versionOptions(version, modeOptions(mode, eps, clip)), init, steps },
    };
  });
