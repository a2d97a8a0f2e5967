/** The variants trained side by side, and the settings the page's controls change. */
import { renormSchedule, type BatchNormOptions } from '../../src/options';
import type { Arch } from './model';
import type { NormMode } from './layers';
import type { Sampling } from './data';

export interface Settings {
  /** Learning rate of the ordinary variants. */
  lr: number;
  /** A learning rate at which the network without batch norm fails. */
  highLr: number;
  /** Learning rate of the convolutional network. */
  cnnLr: number;
  batchSize: number;
  /** The tiny minibatch of the renorm comparison. */
  tinyBatch: number;
  /** Learning rate at the tiny minibatch. */
  tinyLr: number;
  /** Batch-norm momentum (PyTorch convention: weight of the new statistic). */
  momentum: number;
  /**
   * Momentum of the non-i.i.d. pair: with two classes per batch, the moving averages must span many
   * batches (about 1/momentum) to approach the population's statistics.
   */
  noniidMomentum: number;
  rmax: number;
  dmax: number;
  /** Renorm warm-up: rmax and dmax rise from 1 and 0 over these steps. */
  warmupStart: number;
  warmupEnd: number;
  steps: number;
  seed: number;
}

export const DEFAULTS: Settings = {
  lr: 0.5,
  highLr: 10,
  cnnLr: 0.5,
  batchSize: 64,
  tinyBatch: 4,
  tinyLr: 0.05,
  momentum: 0.1,
  noniidMomentum: 0.01,
  rmax: 3,
  dmax: 5,
  warmupStart: 20,
  warmupEnd: 200,
  steps: 300,
  seed: 2015,
};

/** Test-set evaluations every this many steps, on the page and in the headless check. */
export const EVAL_EVERY = 25;

export interface Variant {
  name: string;
  /** What it shows. */
  note: string;
  arch: Arch;
  norm: NormMode | null;
  renorm: boolean;
  batchSize: number;
  lr: number;
  sampling: Sampling;
  momentum: number;
  /** Initial weights scaled by this against 1/sqrt(fan-in) (MLP). */
  initScale: number;
}

export function variants(s: Settings): Variant[] {
  const v = (
    name: string,
    note: string,
    arch: Arch,
    norm: NormMode | null,
    renorm: boolean,
    batchSize: number,
    lr: number,
    sampling: Sampling = 'iid',
    initScale = 1,
  ): Variant => ({
    name,
    note,
    arch,
    norm,
    renorm,
    batchSize,
    lr,
    sampling,
    momentum: sampling === 'noniid' ? s.noniidMomentum : s.momentum,
    initScale,
  });
  return [
    v('mlp no-BN', 'Figure 1 baseline', 'mlp', null, false, s.batchSize, s.lr),
    v('mlp BN', 'Figure 1 with batch norm', 'mlp', 'batch', false, s.batchSize, s.lr),
    v('mlp no-BN high-lr', 'the same rate without BN fails', 'mlp', null, false, s.batchSize, s.highLr),
    v('mlp BN high-lr', 'BN trains at a high rate', 'mlp', 'batch', false, s.batchSize, s.highLr),
    v(
      'mlp BN moving-avg',
      'BN high-lr, but normalising with the moving averages (seed §5)',
      'mlp',
      'moving',
      false,
      s.batchSize,
      s.highLr,
    ),
    v('mlp BN tiny-batch', `BN with ${s.tinyBatch} examples per batch`, 'mlp', 'batch', false, s.tinyBatch, s.tinyLr),
    v(
      'mlp renorm tiny-batch',
      `Batch Renorm with ${s.tinyBatch} examples per batch`,
      'mlp',
      'batch',
      true,
      s.tinyBatch,
      s.tinyLr,
    ),
    v('mlp BN non-iid', 'BN, each batch from two classes', 'mlp', 'batch', false, s.batchSize, s.lr, 'noniid'),
    v(
      'mlp renorm non-iid',
      'Batch Renorm, each batch from two classes',
      'mlp',
      'batch',
      true,
      s.batchSize,
      s.lr,
      'noniid',
    ),
    v('cnn no-BN', 'small conv net without BN', 'cnn', null, false, s.batchSize, s.cnnLr),
    v('cnn BN', 'small conv net with NHWC batch norm', 'cnn', 'batch', false, s.batchSize, s.cnnLr),
    v(
      'mlp no-BN init×0.1',
      'initial weights 0.1× the usual scale, without BN',
      'mlp',
      null,
      false,
      s.batchSize,
      s.lr,
      'iid',
      0.1,
    ),
    v(
      'mlp BN init×0.1',
      'the same small initialisation, with BN',
      'mlp',
      'batch',
      false,
      s.batchSize,
      s.lr,
      'iid',
      0.1,
    ),
    v(
      'mlp no-BN init×10',
      'initial weights 10× the usual scale, without BN',
      'mlp',
      null,
      false,
      s.batchSize,
      s.lr,
      'iid',
      10,
    ),
    v('mlp BN init×10', 'the same large initialisation, with BN', 'mlp', 'batch', false, s.batchSize, s.lr, 'iid', 10),
  ];
}

export function bnOptions(s: Settings, v: Variant): BatchNormOptions {
  return {
    momentum: v.momentum,
    renorm: v.renorm
      ? {
          schedule: renormSchedule({
            rmaxEnd: s.rmax,
            dmaxEnd: s.dmax,
            rmaxSteps: [s.warmupStart, s.warmupEnd],
            dmaxSteps: [s.warmupStart, s.warmupEnd],
          }),
        }
      : false,
  };
}
