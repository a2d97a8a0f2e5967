/**
 * The beyond-the-peers features against the float64 CPU path, in both layouts: per-activation
 * statistics, ... Each scenario runs training and eval steps from the same state on both paths
 * (src/conformance/compare.ts).
 */
import { describe, expect, it } from 'vitest';
import { compareGpuCpu, type Scenario } from '../../src/conformance/compare';
import { gpuDevice } from './device';
import { makeScenario } from '../util/scenarios';

/** Same bound as gpu-vs-cpu.test.ts: f32 against float64, scaled by each array's largest value. */
const TOL = 1e-5;

async function check(s: Scenario): Promise<void> {
  const errors = await compareGpuCpu(await gpuDevice(), s);
  expect(Object.keys(errors).length).toBeGreaterThan(0);
  for (const [k, e] of Object.entries(errors)) expect(e, `${k}: ${JSON.stringify(errors)}`).toBeLessThanOrEqual(TOL);
}

describe('per-activation statistics', () => {
  const SHAPES: [string, number[]][] = [
    ['2x3x4x5', [2, 3, 4, 5]],
    ['7x8x3x3 (rows path: C·H·W % 4 == 0)', [7, 8, 3, 3]],
    ['5x4x13', [5, 4, 13]],
    ['3x2x2x3x3 (5-D)', [3, 2, 2, 3, 3]],
  ];
  for (const layout of ['NCHW', 'NHWC'] as const) {
    for (const [name, shape] of SHAPES) {
      it(`${name} ${layout} train+eval`, () =>
        check(makeScenario(11, layout, shape, { perActivation: true }, [true, true, false])));
    }
    it(`renorm ${layout}`, () =>
      check(
        makeScenario(12, layout, [6, 4, 3, 3], { perActivation: true, renorm: { rmax: 1.5, dmax: 0.5 } }, [
          true,
          true,
          false,
        ]),
      ));
    it(`keras, no affine ${layout}`, () =>
      check(
        makeScenario(13, layout, [4, 3, 2, 2], { perActivation: true, convention: 'keras', affine: false }, [
          true,
          false,
        ]),
      ));
  }
});
