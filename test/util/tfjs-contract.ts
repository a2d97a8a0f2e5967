/**
 * The TF.js bridge's contract as scenarios that run in Node (Dawn) and in headless Chromium:
 * test/node/tfjs.test.ts and test/browser/tfjs.test.ts pass in the TF.js modules they loaded.
 */
import type * as TF from '@tensorflow/tfjs-core';
import type * as TFL from '@tensorflow/tfjs-layers';
import type * as Bridge from '../../src/tfjs';
import type { Layout } from '../../src/layout';
import { expect } from 'vitest';
import { kerasStep } from './keras-reference';
import { normals, rng } from './random';

export interface TfEnv {
  tf: typeof TF;
  tfl: typeof TFL;
  bridge: typeof Bridge;
}

export type LayerArgs = Bridge.BatchNormalizationArgs;

/** A small model whose every BatchNormalization is the bridge's or the stock one. */
export interface ModelSpec {
  name: string;
  /** Input shape without the batch. */
  input: number[];
  build(env: TfEnv, bn: (args: LayerArgs) => TFL.layers.Layer): TFL.Sequential;
  batch: number;
  /**
   * The stock layer trains this model (on cpu: the reference). It cannot train channels first (its
   * gradient throws) nor rank 5; there the bridge's TF.js-ops path on cpu is the reference.
   */
  stockTrains: boolean;
}

export const MODELS: ModelSpec[] = [
  {
    name: 'conv net, two BN layers, NHWC (axis -1)',
    input: [8, 8, 3],
    batch: 6,
    stockTrains: true,
    build({ tfl }, bn) {
      const m = tfl.sequential();
      m.add(tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 8, kernelSize: 3, padding: 'same' }));
      m.add(bn({}));
      m.add(tfl.layers.reLU());
      m.add(tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }));
      m.add(bn({ momentum: 0.9, epsilon: 1e-2 }));
      m.add(tfl.layers.reLU());
      m.add(tfl.layers.flatten());
      m.add(tfl.layers.dense({ units: 3 }));
      return m;
    },
  },
  {
    name: 'conv net, two BN layers, NCHW (axis 1)',
    input: [3, 8, 8],
    batch: 6,
    stockTrains: false,
    build({ tfl }, bn) {
      const m = tfl.sequential();
      m.add(
        tfl.layers.conv2d({
          inputShape: [3, 8, 8],
          filters: 8,
          kernelSize: 3,
          padding: 'same',
          dataFormat: 'channelsFirst',
        }),
      );
      m.add(bn({ axis: 1 }));
      m.add(tfl.layers.reLU());
      m.add(tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', dataFormat: 'channelsFirst' }));
      m.add(bn({ axis: 1, momentum: 0.9 }));
      m.add(tfl.layers.flatten());
      m.add(tfl.layers.dense({ units: 3 }));
      return m;
    },
  },
  {
    name: 'MLP, two BN layers after dense layers (rank 2)',
    input: [12],
    batch: 8,
    stockTrains: true,
    build({ tfl }, bn) {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [12], units: 16 }));
      m.add(bn({}));
      m.add(tfl.layers.reLU());
      m.add(tfl.layers.dense({ units: 8 }));
      m.add(bn({ momentum: 0.8 }));
      m.add(tfl.layers.dense({ units: 3 }));
      return m;
    },
  },
  {
    name: 'conv3d net, BN on rank 5 (axis -1)',
    input: [4, 4, 4, 2],
    batch: 4,
    stockTrains: false,
    build({ tfl }, bn) {
      const m = tfl.sequential();
      m.add(tfl.layers.conv3d({ inputShape: [4, 4, 4, 2], filters: 4, kernelSize: 3, padding: 'same' }));
      m.add(bn({}));
      m.add(tfl.layers.reLU());
      m.add(tfl.layers.flatten());
      m.add(tfl.layers.dense({ units: 3 }));
      return m;
    },
  },
];

/** Seeded weights and data for a model, so that two builds train from the same start. */
function seeded(seed: number, shapes: number[][]): Float32Array[] {
  const r = rng(seed);
  return shapes.map((s) =>
    Float32Array.from(
      normals(
        r,
        s.reduce((a, b) => a * b, 1),
      ),
      (v) => v * 0.3,
    ),
  );
}

export interface Trained {
  names: string[];
  weights: Float32Array[];
  losses: number[];
}

/** Trains `steps` SGD steps of a model on `backend`, with the bridge's layer or the stock one. */
export async function trainModel(
  env: TfEnv,
  spec: ModelSpec,
  backend: string,
  useBridge: boolean,
  steps = 4,
): Promise<Trained> {
  const { tf, tfl, bridge } = env;
  await tf.setBackend(backend);
  const m = spec.build(env, (a) => (useBridge ? bridge.batchNormalization(a) : tfl.layers.batchNormalization(a)));
  m.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
  const shapes = m.getWeights().map((w) => w.shape);
  const init = seeded(7, shapes).map((v, i) =>
    // moving_variance starts positive, as its initializer makes it
    m.weights[i].name.endsWith('moving_variance') ? v.map((x) => 1 + Math.abs(x)) : v,
  );
  m.setWeights(init.map((v, i) => tf.tensor(v, shapes[i])));
  const [xs, ys] = seeded(11, [
    [spec.batch, ...spec.input],
    [spec.batch, 3],
  ]);
  const x = tf.tensor(xs, [spec.batch, ...spec.input]);
  const y = tf.tensor(ys, [spec.batch, 3]);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await m.trainOnBatch(x, y)) as number);
  const out = {
    // Layer names carry a process-wide counter: compare them without it.
    names: m.weights.map((w) => w.name.replace(/\d+/g, '')),
    weights: await Promise.all(m.getWeights().map(async (w) => new Float32Array(await w.data()))),
    losses,
  };
  m.dispose();
  x.dispose();
  y.dispose();
  return out;
}

/** The largest difference of two weight sets, each relative to its reference tensor's scale (at least 1e-2). */
export function worstRelative(ref: Trained, got: Trained): { name: string; err: number } {
  let worst = { name: '', err: 0 };
  ref.weights.forEach((w, i) => {
    const scale = Math.max(1e-2, ...Array.from(w, Math.abs));
    const err = Math.max(...Array.from(w, (v, j) => Math.abs(v - got.weights[i][j]))) / scale;
    if (!(err <= worst.err)) worst = { name: ref.names[i], err };
  });
  return worst;
}

/**
 * `spec` trained with the bridge on webgpu against its reference: the stock layer on cpu, or the
 * bridge on cpu where stock cannot train it. The weight names of both, and the worst difference.
 */
export async function webgpuAgainstReference(env: TfEnv, spec: ModelSpec) {
  const ref = await trainModel(env, spec, 'cpu', !spec.stockTrains);
  const ours = await trainModel(env, spec, 'webgpu', true);
  return { names: ours.names, refNames: ref.names, worst: worstRelative(ref, ours) };
}

/** On a backend without the GPU path, the bridge with stock's options runs stock's code: the worst difference of 2 steps. */
export async function stockCodeDifference(env: TfEnv, spec: ModelSpec, backend: string): Promise<number> {
  const stock = await trainModel(env, spec, backend, false, 2);
  const ours = await trainModel(env, spec, backend, true, 2);
  return worstRelative(stock, ours).err;
}

/** A BN-only check of one training step (y, moving statistics, dx, dγ, dβ) against the float64 path. */
export interface LayerCase {
  name: string;
  shape: number[];
  layout: Layout;
  args: LayerArgs;
}

export const LAYER_CASES: LayerCase[] = [
  {
    name: 'renorm, clipped, NHWC',
    shape: [6, 3, 3, 4],
    layout: 'NHWC',
    args: { renorm: true, renormClipping: { rmax: 1.2, rmin: 0.9, dmax: 0.3 } },
  },
  {
    name: 'renorm, Keras defaults (no clip), NCHW',
    shape: [4, 3, 2, 2],
    layout: 'NCHW',
    args: { axis: 1, renorm: true },
  },
  { name: 'virtualBatchSize 2, NHWC', shape: [6, 2, 2, 3], layout: 'NHWC', args: { virtualBatchSize: 2 } },
  {
    name: 'virtualBatchSize 3 with renorm, rank 2',
    shape: [9, 5],
    layout: 'NC',
    args: { virtualBatchSize: 3, renorm: true, renormClipping: { rmax: 1.5, dmax: 0.5 } },
  },
  { name: 'center false, NHWC', shape: [4, 2, 3, 3], layout: 'NHWC', args: { center: false } },
  { name: 'scale false, NCHW', shape: [4, 3, 2, 3], layout: 'NCHW', args: { axis: 1, scale: false } },
  { name: 'center and scale false, rank 2', shape: [7, 4], layout: 'NC', args: { center: false, scale: false } },
  { name: 'rank 5, NDHWC (axis -1)', shape: [3, 2, 3, 2, 4], layout: 'NHWC', args: { momentum: 0.9 } },
  {
    name: 'rank 5, NCDHW (axis 1), ghosts and renorm',
    shape: [4, 3, 2, 2, 2],
    layout: 'NCHW',
    args: { axis: 1, virtualBatchSize: 2, renorm: true, renormClipping: { rmax: 2, dmax: 1 } },
  },
];

export interface LayerStep {
  y: Float32Array;
  dx: Float32Array;
  dgamma: Float32Array | null;
  dbeta: Float32Array | null;
  movingMean: Float32Array;
  movingVariance: Float32Array;
}

/** Seeded inputs of a layer case: x (offset per channel), dy, and the starting weights. */
export function caseData(c: LayerCase) {
  const r = rng(99);
  const n = c.shape.reduce((a, b) => a * b, 1);
  const C = c.layout === 'NCHW' ? c.shape[1] : c.shape[c.shape.length - 1];
  const x = normals(r, n).map((v, i) =>
    Math.fround(v * 1.5 + ((c.layout === 'NCHW' ? Math.floor(i / (n / c.shape[0] / C)) % C : i % C) - 1)),
  );
  const dy = normals(r, n);
  const gamma = normals(r, C).map((v) => Math.fround(1 + 0.3 * v));
  const beta = normals(r, C).map((v) => Math.fround(0.2 * v));
  const movingMean = normals(r, C).map((v) => Math.fround(0.5 * v));
  const movingVariance = normals(r, C).map((v) => Math.fround(1 + 0.5 * Math.abs(v)));
  const f = (a: Float64Array) => Float32Array.from(a);
  return {
    x: f(x),
    dy: f(dy),
    gamma: f(gamma),
    beta: f(beta),
    movingMean: f(movingMean),
    movingVariance: f(movingVariance),
    C,
  };
}

let variables = 0;

/** One training step of the bridge's layer on the current backend, through TF.js's own autodiff. */
export async function layerStep(env: TfEnv, c: LayerCase): Promise<LayerStep> {
  const { tf, bridge } = env;
  const d = caseData(c);
  const layer = bridge.batchNormalization(c.args);
  layer.build(c.shape);
  const center = c.args.center ?? true;
  const scale = c.args.scale ?? true;
  layer.setWeights([
    ...(scale ? [tf.tensor(d.gamma)] : []),
    ...(center ? [tf.tensor(d.beta)] : []),
    tf.tensor(d.movingMean),
    tf.tensor(d.movingVariance),
  ]);
  const x = tf.variable(tf.tensor(d.x, c.shape), true, `x_${++variables}`);
  const dy = tf.tensor(d.dy, c.shape);
  let y: TF.Tensor | null = null;
  const { grads } = tf.variableGrads(() => {
    y = tf.keep(layer.apply(x, { training: true }) as TF.Tensor);
    return tf.sum(tf.mul(y, dy)) as TF.Scalar;
  });
  const w = layer.getWeights();
  const read = async (t: TF.Tensor | undefined) => (t ? new Float32Array(await t.data()) : null);
  const gname = (k: string) => Object.keys(grads).find((n) => n.endsWith(k));
  const out = {
    y: (await read(y!))!,
    dx: (await read(grads[x.name]))!,
    dgamma: scale ? await read(grads[gname('gamma')!]) : null,
    dbeta: center ? await read(grads[gname('beta')!]) : null,
    movingMean: (await read(w[w.length - 2]))!,
    movingVariance: (await read(w[w.length - 1]))!,
  };
  tf.dispose([x, dy, y!, ...Object.values(grads)]);
  expect(() => layer.dispose()).toThrow(/has not been used yet/); // stock's rule for a layer outside a model; GPU state is freed
  return out;
}

/** The float64 reference of a layer case. */
export function layerReference(c: LayerCase) {
  const d = caseData(c);
  const clip = c.args.renormClipping ?? {};
  return kerasStep({
    x: d.x,
    dy: d.dy,
    shape: c.shape,
    layout: c.layout,
    gamma: (c.args.scale ?? true) ? d.gamma : null,
    beta: (c.args.center ?? true) ? d.beta : null,
    movingMean: d.movingMean,
    movingVariance: d.movingVariance,
    eps: c.args.epsilon ?? 1e-3,
    momentum: c.args.momentum ?? 0.99,
    ...(c.args.renorm
      ? { renorm: { rmax: clip.rmax ?? Infinity, rmin: clip.rmin ?? 0, dmax: clip.dmax ?? Infinity } }
      : {}),
    ...(c.args.virtualBatchSize ? { virtualBatchSize: c.args.virtualBatchSize } : {}),
  });
}

/** Largest |got - want| over the scale of want (at least 1). */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 1,
    err = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  return want.length === got.length ? err / scale : Infinity;
}

/** Queue submits and buffer copies on TF.js's device per training step (steps 2 to 4), and live tensors after each step. */
export async function countSteps(env: TfEnv, spec: ModelSpec, useBridge: boolean) {
  const { tf, tfl, bridge } = env;
  await tf.setBackend('webgpu');
  const device = (tf.backend() as unknown as { device: GPUDevice }).device;
  const m = spec.build(env, (a) => (useBridge ? bridge.batchNormalization(a) : tfl.layers.batchNormalization(a)));
  m.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
  const x = tf.randomNormal([spec.batch, ...spec.input]);
  const y = tf.randomNormal([spec.batch, 3]);
  let submits = 0,
    copies = 0;
  const queue = device.queue;
  const submit = queue.submit;
  const proto = GPUCommandEncoder.prototype;
  const copy = proto.copyBufferToBuffer;
  queue.submit = function (this: GPUQueue, ...a: Parameters<GPUQueue['submit']>) {
    submits++;
    return submit.apply(this, a);
  };
  proto.copyBufferToBuffer = function (this: GPUCommandEncoder, ...a: unknown[]) {
    copies++;
    return (copy as (...b: unknown[]) => void).apply(this, a);
  } as GPUCommandEncoder['copyBufferToBuffer'];
  const tensors: number[] = [];
  try {
    await m.trainOnBatch(x, y);
    submits = copies = 0;
    for (let i = 0; i < 3; i++) {
      await m.trainOnBatch(x, y);
      tensors.push(tf.memory().numTensors);
    }
  } finally {
    queue.submit = submit;
    proto.copyBufferToBuffer = copy;
  }
  m.dispose();
  tf.dispose([x, y]);
  return { submits: submits / 3, copies: copies / 3, tensors };
}

/** The buffers the bridge creates for a model (TF.js's own carry no label), and which were destroyed after dispose(). */
export async function bridgeBuffers(env: TfEnv) {
  const { tf, tfl, bridge } = env;
  await tf.setBackend('webgpu');
  const device = (tf.backend() as unknown as { device: GPUDevice }).device;
  const made: GPUBuffer[] = [];
  const destroyed = new Set<GPUBuffer>();
  const create = device.createBuffer;
  const destroy = GPUBuffer.prototype.destroy;
  device.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
    const b = create.call(this, d);
    if (d.label && !d.label.startsWith('bn.placeholder')) made.push(b);
    return b;
  };
  GPUBuffer.prototype.destroy = function (this: GPUBuffer) {
    destroyed.add(this);
    return destroy.call(this);
  };
  try {
    const spec = MODELS[0];
    const m = spec.build(env, (a) => bridge.batchNormalization({ ...a, center: false }));
    m.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
    const x = tf.randomNormal([spec.batch, ...spec.input]);
    const y = tf.randomNormal([spec.batch, 3]);
    await m.trainOnBatch(x, y);
    await m.trainOnBatch(x, y);
    const before = made.length;
    m.dispose();
    tf.dispose([x, y]);
    void tfl;
    return { made: before, leaked: made.filter((b) => !destroyed.has(b)).map((b) => b.label) };
  } finally {
    device.createBuffer = create;
    GPUBuffer.prototype.destroy = destroy;
  }
}

/** Saved model artifacts (JSON topology and weights), through a memory handler. */
async function saveToMemory(env: TfEnv, m: TFL.LayersModel) {
  let saved: TF.io.ModelArtifacts | null = null;
  await m.save(
    env.tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return saved! as TF.io.ModelArtifacts;
}

/** A model with the bridge trained a step, saved, loaded by stock TF.js (uninstalled); and back. */
export async function roundTrip(env: TfEnv) {
  const { tf, tfl, bridge } = env;
  await tf.setBackend('webgpu');
  bridge.install();
  const m = tfl.sequential();
  m.add(tfl.layers.dense({ inputShape: [5], units: 4 }));
  m.add(bridge.batchNormalization({ renorm: true, renormClipping: { rmax: 3, dmax: 5 }, virtualBatchSize: 2 }));
  m.add(tfl.layers.dense({ units: 2 }));
  m.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
  const x = tf.randomNormal([6, 5]);
  await m.fit(x, tf.randomNormal([6, 2]), { epochs: 2, batchSize: 6, verbose: 0 });
  const want = await (m.predict(x) as TF.Tensor).data();
  const artifacts = await saveToMemory(env, m);
  const topology = JSON.stringify(artifacts.modelTopology);
  bridge.uninstall();
  const stock = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
  const stockLayer = stock.layers[1];
  const stockGot = await (stock.predict(x) as TF.Tensor).data();
  // Back: a model saved by stock TF.js loads into the bridge.
  const stockArtifacts = await saveToMemory(env, stock);
  bridge.install();
  const ours = await tfl.loadLayersModel(tf.io.fromMemory(stockArtifacts));
  const ourLayer = ours.layers[1];
  const oursGot = await (ours.predict(x) as TF.Tensor).data();
  // The bridge's own save keeps its options.
  const again = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
  const againConfig = (again.layers[1] as InstanceType<typeof bridge.BatchNormalization>).getConfig();
  bridge.uninstall();
  const fromJson = await tfl.models.modelFromJSON(JSON.parse(JSON.stringify(artifacts.modelTopology)));
  const afterUninstall = fromJson.layers[1];
  const result = {
    topology,
    want,
    stockGot,
    oursGot,
    stockIsBridge: stockLayer instanceof bridge.BatchNormalization,
    oursIsBridge: ourLayer instanceof bridge.BatchNormalization,
    afterUninstallIsBridge: afterUninstall instanceof bridge.BatchNormalization,
    ourConfig: (ourLayer as InstanceType<typeof bridge.BatchNormalization>).getConfig(),
    againConfig,
    installed: bridge.isInstalled(),
  };
  for (const model of [m, stock, ours, again, fromJson]) model.dispose();
  x.dispose();
  return result;
}
