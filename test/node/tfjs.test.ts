/**
 * The TF.js bridge in Node, on TF.js 4.22's WebGPU backend over Dawn (SwiftShader here), against
 * the stock layer on the cpu backend and the float64 CPU path.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/cli/nodeGpu';
import {
  LAYER_CASES,
  MODELS,
  layerReference,
  layerStep,
  relErr,
  trainModel,
  worstRelative,
  type TfEnv,
} from '../util/tfjs-contract';

let env: TfEnv;

beforeAll(async () => {
  // The backend registers itself only if navigator.gpu exists when its module is evaluated.
  (globalThis as { navigator?: unknown }).navigator = { gpu: await nodeGpu() };
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  await import('@tensorflow/tfjs-backend-webgpu');
  env = { tf, tfl: await import('@tensorflow/tfjs-layers'), bridge: await import('../../src/tfjs') };
}, 60_000);

describe('models trained with the bridge on webgpu equal the stock layer on cpu', () => {
  for (const spec of MODELS) {
    it(`${spec.name}${spec.stockTrains ? '' : ' (stock cannot: against the bridge on cpu)'}`, async () => {
      const stock = await trainModel(env, spec, 'cpu', !spec.stockTrains);
      const ours = await trainModel(env, spec, 'webgpu', true);
      expect(ours.names).toEqual(stock.names);
      const w = worstRelative(stock, ours);
      expect(w.err, `${w.name}`).toBeLessThan(2e-4);
    }, 120_000);
  }
});

it('the stock layer cannot train channels first (axis 1) or rank 5; the bridge can', async () => {
  for (const spec of MODELS.filter((m) => !m.stockTrains))
    await expect(trainModel(env, spec, 'cpu', false)).rejects.toThrow();
}, 60_000);

describe('one training step against the float64 CPU path', () => {
  for (const c of LAYER_CASES) {
    for (const backend of ['webgpu', 'cpu']) {
      it(`${c.name} on ${backend}`, async () => {
        await env.tf.setBackend(backend);
        const got = await layerStep(env, c);
        const want = layerReference(c);
        expect(relErr(got.y, want.y), 'y').toBeLessThan(2e-5);
        expect(relErr(got.dx, want.dx), 'dx').toBeLessThan(2e-5);
        if (got.dgamma) expect(relErr(got.dgamma, want.dgamma), 'dgamma').toBeLessThan(2e-5);
        if (got.dbeta) expect(relErr(got.dbeta, want.dbeta), 'dbeta').toBeLessThan(2e-5);
        expect(relErr(got.movingMean, want.movingMean), 'moving_mean').toBeLessThan(2e-6);
        expect(relErr(got.movingVariance, want.movingVariance), 'moving_variance').toBeLessThan(2e-6);
      }, 60_000);
    }
  }
});
