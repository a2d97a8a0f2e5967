/**
 * The TF.js bridge in headless Chromium: TF.js 4.22's WebGPU backend (SwiftShader), against the
 * stock layer on the cpu backend, the float64 CPU path, and the stock layer on webgl.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bridge from '../../src/tfjs';
import {
  bridgeBuffers,
  countSteps,
  LAYER_CASES,
  layerReference,
  layerStep,
  MODELS,
  relErr,
  roundTrip,
  stockCodeDifference,
  webgpuAgainstReference,
  type TfEnv,
} from '../util/tfjs-contract';

const env: TfEnv = { tf, tfl, bridge };

beforeAll(async () => {
  expect(await tf.setBackend('webgpu')).toBe(true);
});

describe('models trained with the bridge on webgpu equal the reference', () => {
  for (const spec of MODELS) {
    it(`${spec.name}${spec.stockTrains ? '' : ' (stock cannot: against the bridge on cpu)'}`, async () => {
      const r = await webgpuAgainstReference(env, spec);
      expect(r.names).toEqual(r.refNames);
      expect(r.worst.err, r.worst.name).toBeLessThan(2e-4);
    });
  }

  it('on webgl, the bridge trains stock options with stock code: the same weights bit for bit', async () => {
    expect(await stockCodeDifference(env, MODELS[0], 'webgl')).toBe(0);
  });
});

describe('one training step against the float64 CPU path', () => {
  for (const c of LAYER_CASES)
    for (const backend of ['webgpu', 'webgl']) {
      it(`${c.name} on ${backend}`, async () => {
        await tf.setBackend(backend);
        const got = await layerStep(env, c);
        const want = layerReference(c);
        // webgl computes in float32 textures with its own reductions: a looser bound there.
        const tol = backend === 'webgpu' ? 2e-5 : 2e-4;
        for (const k of ['y', 'dx', 'dgamma', 'dbeta'] as const)
          if (got[k]) expect(relErr(got[k]!, want[k]), k).toBeLessThan(tol);
        expect(relErr(got.movingMean, want.movingMean)).toBeLessThan(tol);
        expect(relErr(got.movingVariance, want.movingVariance)).toBeLessThan(tol);
      });
    }
});

describe('the bridge in a TF.js program', () => {
  it('serializes both ways', async () => {
    const r = await roundTrip(env);
    expect(r.topology).toContain('"renorm_clipping"');
    expect([r.stockIsBridge, r.oursIsBridge, r.afterUninstallIsBridge, r.installed]).toEqual([
      false,
      true,
      false,
      false,
    ]);
    expect(relErr(r.stockGot, r.want)).toBeLessThan(1e-5);
    expect(relErr(r.oursGot, r.want)).toBeLessThan(1e-5);
  });

  it('adds no submits or copies per step, keeps the tensor count, frees its buffers on dispose', async () => {
    const stock = await countSteps(env, MODELS[0], false);
    const ours = await countSteps(env, MODELS[0], true);
    expect(ours.submits).toBeLessThanOrEqual(stock.submits);
    expect(ours.copies).toBeLessThanOrEqual(stock.copies);
    expect(new Set(ours.tensors).size).toBe(1);
    const b = await bridgeBuffers(env);
    expect(b.made).toBeGreaterThan(0);
    expect(b.leaked).toEqual([]);
  });
});
