/**
 * Float16 tensors. Where the adapter has 'shader-f16', every case of src/conformance/f16.ts must
 * meet its tolerance against the float64 CPU path; where it does not (SwiftShader), every float16
 * call must be refused with a FeatureError before it touches any state.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../src/module/batchnorm';
import { requestBatchNormDevice } from '../../src/device';
import { FeatureError, OptionError } from '../../src/errors';
import { encodeBackward, encodeForwardEval, encodeForwardTrain } from '../../src/functional';
import { statsByteLength, tensorByteLength } from '../../src/plan/params';
import { compareGpuCpu } from '../../src/conformance/compare';
import { f16Cases, f16Failures } from '../../src/conformance/f16';

const device = await requestBatchNormDevice({ optionalFeatures: ['shader-f16'] });
const hasF16 = device.features.has('shader-f16');

const buf = (size: number) =>
  device.createBuffer({
    label: 'test.f16',
    size: Math.max(16, size),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });

describe('float16 tensor sizes', () => {
  it('tensorByteLength rounds float16 bindings up to 4 bytes', () => {
    expect(tensorByteLength(5, 'float16')).toBe(12);
    expect(tensorByteLength(6, 'float16')).toBe(12);
    expect(tensorByteLength(6)).toBe(24);
  });
});

if (hasF16) {
  describe(`float16 on ${device.adapterInfo.vendor} ${device.adapterInfo.architecture}: GPU against the float64 CPU path`, () => {
    for (const c of f16Cases()) {
      it(c.name, async () => {
        const errors = await compareGpuCpu(device, c.scenario);
        expect(Object.keys(errors).length).toBeGreaterThan(0);
        expect(f16Failures(errors), JSON.stringify(errors)).toEqual([]);
      });
    }
  });
} else {
  describe('float16 where the adapter lacks shader-f16', () => {
    const shape = [2, 4, 3, 3];
    const n = 72;
    const common = {
      layout: 'NCHW' as const,
      shape,
      x: buf(tensorByteLength(n, 'float16')),
      stats: buf(statsByteLength(4)),
      dtype: 'float16' as const,
    };
    const expectFeatureError = (f: () => void) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(FeatureError);
        expect((e as FeatureError).code).toBe('E_FEATURE');
        expect((e as Error).message).toMatch(/shader-f16/);
        return;
      }
      throw new Error('expected a FeatureError');
    };
    it('forward (train) refuses with FeatureError', () =>
      expectFeatureError(() =>
        encodeForwardTrain(device, device.createCommandEncoder(), { ...common, y: buf(n * 2) }),
      ));
    it('forward (eval) refuses with FeatureError', () =>
      expectFeatureError(() =>
        encodeForwardEval(device, device.createCommandEncoder(), {
          ...common,
          y: buf(n * 2),
          runningMean: buf(16),
          runningVar: buf(16),
        }),
      ));
    it('backward refuses with FeatureError', () =>
      expectFeatureError(() =>
        encodeBackward(device, device.createCommandEncoder(), { ...common, dy: buf(n * 2), dx: buf(n * 2) }),
      ));
    it('the module refuses when it is made, not at its first forward', () =>
      expectFeatureError(() => new BatchNorm(device, 4, { dtype: 'float16' })));
  });
}

describe('dtype values', () => {
  it('an unknown dtype is an OptionError', () => {
    expect(() => new BatchNorm(device, 4, { dtype: 'bfloat16' as never })).toThrow(OptionError);
    expect(() =>
      encodeForwardTrain(device, device.createCommandEncoder(), {
        layout: 'NCHW',
        shape: [2, 4, 2, 2],
        x: buf(64),
        y: buf(64),
        stats: buf(statsByteLength(4)),
        dtype: 'int8' as never,
      }),
    ).toThrow(OptionError);
  });
});
