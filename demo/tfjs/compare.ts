/**
 * The TF.js comparison: one TF.js CNN trained twice on Fashion-MNIST on TF.js's WebGPU backend,
 * from the same initial weights on the same batches, once with TF.js's own BatchNormalization and
 * once with webgpu-batchnorm/tfjs's. The steps alternate, so both see the same machine state; each
 * `trainOnBatch` is timed on the wall clock.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { batchNormalization } from '../../src/tfjs';
import { PIXELS, rng, Sampler, type Dataset } from '../engine/data';
import type { Comparison, Side } from './result';

export interface CompareSettings {
  steps: number;
  batchSize: number;
  lr: number;
  /** Called after each pair of steps. */
  onStep?: (step: number, c: Comparison) => void;
  /** Stops early when it returns true. */
  stopped?: () => boolean;
}

/** Test images the accuracy is measured on. */
const TEST = 1000;

function cnn(bn: () => tfl.layers.Layer): tfl.Sequential {
  const m = tfl.sequential();
  m.add(tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 3, padding: 'same' }));
  m.add(bn());
  m.add(tfl.layers.reLU());
  m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tfl.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same' }));
  m.add(bn());
  m.add(tfl.layers.reLU());
  m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 10, activation: 'softmax' }));
  return m;
}

async function accuracy(m: tfl.LayersModel, data: Dataset): Promise<number> {
  const n = Math.min(TEST, data.testY.length);
  const x = tf.tensor4d(data.testX.subarray(0, n * PIXELS), [n, 28, 28, 1]);
  const pred = tf.tidy(() => tf.argMax(m.predict(x) as tf.Tensor, 1));
  const p = await pred.data();
  tf.dispose([x, pred]);
  let right = 0;
  for (let i = 0; i < n; i++) if (p[i] === data.testY[i]) right++;
  return right / n;
}

export async function compare(data: Dataset, s: CompareSettings): Promise<Comparison> {
  await tf.setBackend('webgpu');
  await tf.ready();
  const info = (tf.backend() as unknown as { device: GPUDevice }).device.adapterInfo;
  const models = {
    // Momentum 0.9: with Keras's 0.99 the moving statistics need ~500 steps before inference is fair.
    stock: cnn(() => tfl.layers.batchNormalization({ momentum: 0.9 })),
    bridge: cnn(() => batchNormalization({ momentum: 0.9 })),
  };
  models.bridge.setWeights(models.stock.getWeights());
  for (const m of Object.values(models)) m.compile({ optimizer: tf.train.sgd(s.lr), loss: 'categoricalCrossentropy' });
  const side = (): Side => ({ losses: [], stepMs: [], testAccuracy: NaN });
  const c: Comparison = {
    adapter: `${info.vendor} ${info.architecture} ${info.description}`.trim(),
    steps: 0,
    batchSize: s.batchSize,
    stock: side(),
    bridge: side(),
  };
  const sampler = new Sampler(data, 'iid', rng(2026));
  const xb = new Float32Array(s.batchSize * PIXELS);
  const yb = new Float32Array(s.batchSize);
  for (let step = 1; step <= s.steps && !s.stopped?.(); step++) {
    sampler.next(s.batchSize, xb, yb);
    const x = tf.tensor4d(xb, [s.batchSize, 28, 28, 1]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from(yb), 'int32'), 10));
    for (const k of ['stock', 'bridge'] as const) {
      const t0 = performance.now();
      const loss = (await models[k].trainOnBatch(x, y)) as number;
      c[k].stepMs.push(performance.now() - t0);
      c[k].losses.push(loss);
    }
    tf.dispose([x, y]);
    c.steps = step;
    s.onStep?.(step, c);
  }
  for (const k of ['stock', 'bridge'] as const) {
    c[k].testAccuracy = await accuracy(models[k], data);
    models[k].dispose();
  }
  return c;
}
