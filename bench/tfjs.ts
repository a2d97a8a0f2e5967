/**
 * The TF.js bridge against TF.js's own BatchNormalization on TF.js's WebGPU backend (the same
 * adapter, the same process), timed on the wall clock after two warm-up steps, median step:
 * - a BN-only training step at several shapes: the layer's training forward (moving statistics
 *   included) and its gradients of x, γ and β for a given upstream gradient (`tf.grads` seeded with
 *   dy: no loss, no optimizer), until dγ is read back (TF.js submits everything queued first);
 * - a whole small CNN's training step with two BN layers: `await model.trainOnBatch(x, y)`
 *   (forward, gradients, SGD update, loss read back). Its row also gives the speed-up the BN
 *   layers' share of the stock step predicts (Amdahl, from BN-only steps at the CNN's BN shape).
 */
import type * as TF from '@tensorflow/tfjs-core';
import type * as TFL from '@tensorflow/tfjs-layers';
import type * as Bridge from '../src/tfjs';
import { median } from './timer';

export interface TfjsEnv {
  tf: typeof TF;
  tfl: typeof TFL;
  bridge: typeof Bridge;
}

export interface TfjsRow {
  model: string;
  shape: string;
  stock_ms: number;
  bridge_ms: number;
  speedup: number;
  /** CNN rows: the speed-up predicted from the BN layers' share of the stock step. */
  predicted_speedup: number | null;
}

export const TFJS_HEADER = 'tfjs: model                shape            stock ms  bridge ms  speed-up  (predicted)';

/** BN-only models: [N, H, W, C] (channels last) and [N, C]. */
const BN_SHAPES = {
  quick: [
    [4, 8, 8, 32],
    [8, 16, 16, 64],
    [256, 256],
  ],
  full: [
    [4, 8, 8, 32],
    [8, 16, 16, 64],
    [16, 32, 32, 64],
    [512, 1024],
  ],
};
const CNN = { input: [16, 16, 8], batch: 8, filters: 32 };

async function bnOnly(env: TfjsEnv, shape: number[], bridge: boolean, steps: number): Promise<number> {
  const { tf, tfl } = env;
  const layer = bridge ? env.bridge.batchNormalization({}) : tfl.layers.batchNormalization({});
  layer.build(shape);
  const [gamma, beta] = layer.trainableWeights.map((w) => w.read());
  const x = tf.randomNormal(shape);
  const dy = tf.randomNormal(shape);
  const grads = tf.grads((a: TF.Tensor) => layer.apply(a, { training: true }) as TF.Tensor);
  const step = async () => {
    const g = grads([x, gamma, beta], dy);
    await g[1].data();
    tf.dispose(g);
  };
  for (let i = 0; i < 2; i++) await step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  tf.dispose([x, dy]);
  return median(times);
}

async function cnn(env: TfjsEnv, bridge: boolean, steps: number): Promise<number> {
  const { tf, tfl } = env;
  const bn = () => (bridge ? env.bridge.batchNormalization({}) : tfl.layers.batchNormalization({}));
  const m = tfl.sequential();
  m.add(tfl.layers.conv2d({ inputShape: CNN.input, filters: CNN.filters, kernelSize: 3, padding: 'same' }));
  m.add(bn());
  m.add(tfl.layers.reLU());
  m.add(tfl.layers.conv2d({ filters: CNN.filters, kernelSize: 3, padding: 'same' }));
  m.add(bn());
  m.add(tfl.layers.reLU());
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 10 }));
  m.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
  const x = tf.randomNormal([CNN.batch, ...CNN.input]);
  const y = tf.randomNormal([CNN.batch, 10]);
  for (let i = 0; i < 2; i++) await m.trainOnBatch(x, y);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await m.trainOnBatch(x, y);
    times.push(performance.now() - t0);
  }
  m.dispose();
  tf.dispose([x, y]);
  return median(times);
}

/** Runs every row on the current backend (set it to 'webgpu' first). */
export async function runTfjsBench(env: TfjsEnv, quick: boolean, log: (s: string) => void): Promise<TfjsRow[]> {
  const steps = quick ? 5 : 10;
  const rows: TfjsRow[] = [];
  const row = (r: TfjsRow) => {
    rows.push(r);
    log(
      `tfjs: ${r.model.padEnd(20)} ${r.shape.padEnd(16)} ${r.stock_ms.toFixed(1).padStart(8)} ${r.bridge_ms.toFixed(1).padStart(10)} ${r.speedup.toFixed(1).padStart(8)}x${r.predicted_speedup === null ? '' : `  (${r.predicted_speedup.toFixed(1)}x)`}`,
    );
  };
  for (const shape of quick ? BN_SHAPES.quick : BN_SHAPES.full) {
    const stock = await bnOnly(env, shape, false, steps);
    const ours = await bnOnly(env, shape, true, steps);
    row({
      model: 'BN only',
      shape: shape.join('x'),
      stock_ms: stock,
      bridge_ms: ours,
      speedup: stock / ours,
      predicted_speedup: null,
    });
  }
  // The CNN's two BN layers both see [batch, 16, 16, filters]: their stock and bridge cost, alone.
  const bnShape = [CNN.batch, CNN.input[0], CNN.input[1], CNN.filters];
  const bnStock = 2 * (await bnOnly(env, bnShape, false, steps));
  const bnOurs = 2 * (await bnOnly(env, bnShape, true, steps));
  const stock = await cnn(env, false, steps);
  const ours = await cnn(env, true, steps);
  // Amdahl: the step minus the BN layers' stock time plus their bridge time.
  const predicted = stock / Math.max(stock - bnStock + bnOurs, 1e-9);
  row({
    model: 'CNN, 2 conv + 2 BN',
    shape: `${CNN.batch}x${CNN.input.join('x')}`,
    stock_ms: stock,
    bridge_ms: ours,
    speedup: stock / ours,
    predicted_speedup: predicted,
  });
  return rows;
}
