/**
 * The demo's networks: the MLP of the batch-norm paper's Figure 1 (three hidden layers of 100
 * sigmoid units) and a small NHWC convolutional network, each with or without batch norm.
 */
import type { BatchNormOptions } from '../../src/options';
import { Activation, Conv2d, Dense, gaussian, Norm, type Layer, type NormMode } from './layers';
import { Act } from './kernels';
import { rng } from './data';

export type Arch = 'mlp' | 'cnn';

export interface ModelSpec {
  arch: Arch;
  norm: NormMode | null;
  bnOptions: BatchNormOptions;
  /** Weights come from this seed, so variants of one architecture start identical. */
  seed: number;
  /** Scale of the MLP's initial weights against the usual 1/sqrt(fan-in): the initialisation claim. */
  initScale?: number;
}

export interface Model {
  layers: Layer[];
  /** Index of the layer whose output feeds the last hidden sigmoid (Figure 1 b, c watch unit 0). */
  monitor: number;
  /** Features of the monitored layer's output per example. */
  monitorWidth: number;
}

export function buildModel(device: GPUDevice, spec: ModelSpec, prefix: string): Model {
  const random = rng(spec.seed);
  const layers: Layer[] = [];
  const norm = (name: string, C: number, spatial: number) => {
    if (spec.norm) layers.push(new Norm(device, `${prefix}.${name}`, C, spatial, spec.bnOptions, spec.norm));
  };
  let monitor = -1,
    monitorWidth = 0;
  if (spec.arch === 'mlp') {
    const k = spec.initScale ?? 1;
    let inputs = 784;
    for (let h = 1; h <= 3; h++) {
      // A bias before batch norm is cancelled by it (seed §2), so BN layers have none.
      layers.push(
        new Dense(
          device,
          `${prefix}.fc${h}`,
          inputs,
          100,
          !spec.norm,
          gaussian(random, inputs * 100, k / Math.sqrt(inputs)),
        ),
      );
      norm(`bn${h}`, 100, 1);
      monitor = layers.length - 1;
      monitorWidth = 100;
      layers.push(new Activation(device, `${prefix}.sigmoid${h}`, 100, Act.sigmoid));
      inputs = 100;
    }
    layers.push(new Dense(device, `${prefix}.out`, 100, 10, true, gaussian(random, 1000, k / Math.sqrt(100))));
  } else {
    const c1 = new Conv2d(
      device,
      `${prefix}.conv1`,
      28,
      28,
      1,
      8,
      3,
      2,
      1,
      gaussian(random, 3 * 3 * 1 * 8, Math.sqrt(2 / 9)),
    );
    layers.push(c1);
    norm('bn1', 8, c1.Ho * c1.Wo);
    layers.push(new Activation(device, `${prefix}.relu1`, c1.outSize, Act.relu));
    const c2 = new Conv2d(
      device,
      `${prefix}.conv2`,
      c1.Ho,
      c1.Wo,
      8,
      16,
      3,
      2,
      1,
      gaussian(random, 3 * 3 * 8 * 16, Math.sqrt(2 / 72)),
    );
    layers.push(c2);
    norm('bn2', 16, c2.Ho * c2.Wo);
    monitor = layers.length - 1;
    monitorWidth = c2.outSize;
    layers.push(new Activation(device, `${prefix}.relu2`, c2.outSize, Act.relu));
    layers.push(
      new Dense(
        device,
        `${prefix}.out`,
        c2.outSize,
        10,
        true,
        gaussian(random, c2.outSize * 10, 1 / Math.sqrt(c2.outSize)),
      ),
    );
  }
  return { layers, monitor, monitorWidth };
}
