/** Seeded scenarios for the GPU-vs-CPU tests of the beyond-the-peers features (test/browser/beyond.test.ts). */
import type { BatchNormOptions } from '../../src/options';
import type { StateDictInput } from '../../src/validate/state';
import type { Scenario } from '../../src/conformance/compare';
import { normals, rng } from './random';

const f32 = (a: ArrayLike<number>) => Float64Array.from(a, Math.fround);

/** Entries of the module's per-feature state: C, or C·spatial for a per-activation module. */
export function featureCount(shape: readonly number[], o: BatchNormOptions): number {
  return o.perActivation ? shape.slice(1).reduce((a, b) => a * b, 1) : shape[1];
}

/** A scenario of `steps` (true: training) over NCHW-ordered data with per-channel scale and offset. */
export function makeScenario(
  seed: number,
  layout: 'NCHW' | 'NHWC',
  shape: number[],
  options: BatchNormOptions,
  steps: boolean[],
): Scenario {
  const r = rng(seed);
  const count = shape.reduce((a, b) => a * b, 1);
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const F = featureCount(shape, options);
  const u = (n: number, lo: number, hi: number) => f32(Array.from({ length: n }, () => lo + (hi - lo) * r()));
  const init: StateDictInput = {};
  if (options.affine !== false) {
    init.weight = u(F, 0.5, 1.5);
    init.bias = u(F, -0.5, 0.5);
  }
  if (options.trackRunningStats !== false) {
    init.running_mean = u(F, -0.5, 0.5);
    init[options.renorm ? 'running_std' : 'running_var'] = u(F, 0.5, 2);
    init.num_batches_tracked = 0;
  }
  const data = () =>
    f32(
      normals(r, count).map((v, i) => {
        const c = Math.floor(i / inner) % shape[1];
        return v * (0.5 + (c % 5) * 0.4) + (c % 3) - 1 + ((i * 7) % 5) * 0.1;
      }),
    );
  return {
    layout,
    shape,
    options,
    init,
    steps: steps.map((training) => ({
      training,
      x: data(),
      dy: f32(normals(r, count)),
      ...(options.epilogue === 'add_relu' ? { z: f32(normals(r, count)) } : {}),
    })),
  };
}
