/**
 * `BatchNormalization` for TF.js: a subclass of the stock tfjs-layers layer with the same class
 * name, config keys, defaults, weights and numerics (Keras momentum; the biased batch variance in
 * the moving average, as stock TF.js stores it), that trains with the library's kernels on TF.js's
 * WebGPU backend, and adds what stock lacks: Batch Renormalization, ghost batches
 * (virtualBatchSize), center/scale false in training, and rank 5.
 *
 * Where each step runs:
 * - training on the 'webgpu' backend: the library's kernels, on TF.js's device, buffers and command
 *   encoder (gpu.ts);
 * - training elsewhere: the stock layer's own code for stock's options, TF.js ops with the kernels'
 *   semantics for the rest (ops.ts);
 * - inference: the stock layer's own code (rank 2 to 4), TF.js ops for rank 5.
 */
import * as tf from '@tensorflow/tfjs-core';
import type {
  BatchNormalization as StockBatchNormalization,
  BatchNormalizationLayerArgs,
} from '@tensorflow/tfjs-layers/dist/layers/normalization';
import type { Kwargs } from '@tensorflow/tfjs-layers/dist/types';
import type { DisposeResult } from '@tensorflow/tfjs-layers/dist/engine/topology';
import type { Shape } from '@tensorflow/tfjs-layers/dist/keras_format/common';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { BatchSizeError, LayoutError, OptionError, ShapeError } from '../errors.js';
import { checkClip } from '../validate/options.js';
import { checkObject, describe, F32_MAX } from '../validate/args.js';
import { type RenormClip } from '../options.js';
import { checkEps, checkUnit } from '../validate/args.js';
import { GpuTrainer, type StepVariables, type TrainSpec } from './gpu.js';
import { activeWebGpuBackend, checkLayersInternals, registeredClass } from './internals.js';
import { inferWithOps, trainWithOps } from './ops.js';

/** Keras's renorm_clipping: r is clipped to [rmin, rmax] and d to [-dmax, dmax]; a missing key does not clip. */
export interface RenormClipping {
  rmax?: number;
  rmin?: number;
  dmax?: number;
}

/** The stock layer's config, and the Keras options stock lacks. */
export interface BatchNormalizationArgs extends BatchNormalizationLayerArgs {
  /** Batch Renormalization (Ioffe 2017), correcting towards the layer's moving statistics. Default false. */
  renorm?: boolean;
  /** Clip of renorm's r and d; Keras's defaults (no clip) for missing keys. */
  renormClipping?: RenormClipping | null;
  /**
   * Keras's rate of its separate renorm averages. The bridge corrects towards the moving
   * statistics themselves (the paper's Algorithm 1, and the four stock weights), which move at
   * `momentum`: renormMomentum defaults to it and may not differ.
   */
  renormMomentum?: number | null;
  /** Ghost batch norm: each group of this many consecutive samples is normalised on its own. */
  virtualBatchSize?: number | null;
}

/** The stock fields this subclass reads (private in tfjs-layers' typings). */
interface StockFields {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma?: LayerVariable;
  beta?: LayerVariable;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
}

/**
 * The stock class, found when this module loads (tfjs-layers registers it on import). Where it is
 * missing, a stand-in whose constructor throws: the typed error comes at install() or at the first
 * layer made, not at import.
 */
const Stock = (registeredClass() ??
  class {
    constructor() {
      checkLayersInternals();
    }
  }) as unknown as typeof StockBatchNormalization;

interface Extra {
  renorm: boolean;
  renormClipping: Required<RenormClipping> | null;
  renormMomentum: number | null;
  virtualBatchSize: number | null;
}

/** The config checks stock does not make, and the extra options, resolved; throws before the layer exists. */
function checkArgs(args: unknown): Extra {
  const a = checkObject<BatchNormalizationArgs>('BatchNormalization config', args);
  const axis = a.axis ?? -1;
  if (typeof axis !== 'number' || !Number.isSafeInteger(axis))
    throw new OptionError(
      `axis must be one integer (-1: channels last, 1: channels first); got ${describe(axis)}. Lists of axes are not supported`,
    );
  if (axis === 0)
    throw new LayoutError('axis 0 is the batch axis; normalise over the channels: axis -1 (channels last) or 1');
  const momentum = checkUnit('momentum', a.momentum ?? 0.99, "the weight of the old moving value, Keras's momentum");
  checkEps(a.epsilon ?? 1e-3);
  for (const k of ['center', 'scale', 'renorm'] as const)
    if (a[k] !== undefined && typeof a[k] !== 'boolean')
      throw new OptionError(`${k} must be true or false; got ${describe(a[k])}`);
  const renorm = a.renorm ?? false;
  const clipArg = checkObject<RenormClipping>('renormClipping', a.renormClipping ?? undefined);
  for (const k of Object.keys(clipArg))
    if (!['rmax', 'rmin', 'dmax'].includes(k))
      throw new OptionError(`renormClipping has unknown key '${k}'; it takes rmax, rmin and dmax`);
  // Keras: a missing rmax, rmin or dmax is inf, 0, inf.
  const clip = checkClip(
    { rmax: clipArg.rmax ?? F32_MAX, rmin: clipArg.rmin ?? 0, dmax: clipArg.dmax ?? F32_MAX },
    ' (renormClipping)',
    true,
  ) as Required<RenormClip>;
  let renormMomentum: number | null = null;
  if (a.renormMomentum !== undefined && a.renormMomentum !== null) {
    renormMomentum = checkUnit('renormMomentum', a.renormMomentum, 'the rate of the renorm averages');
    if (renormMomentum !== momentum)
      throw new OptionError(
        `renormMomentum ${renormMomentum} differs from momentum ${momentum}: this layer corrects towards its moving statistics (Ioffe 2017, Alg. 1), which move at momentum; leave renormMomentum out or set it to momentum`,
      );
  }
  if (!renorm && (a.renormClipping != null || renormMomentum !== null))
    throw new OptionError('renormClipping and renormMomentum belong to renorm: true');
  const k = a.virtualBatchSize ?? null;
  if (k !== null && (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1))
    throw new OptionError(`virtualBatchSize must be a positive integer or null; got ${describe(k)}`);
  return {
    renorm,
    renormClipping: renorm ? clip : null,
    renormMomentum: renorm ? momentum : null,
    virtualBatchSize: k,
  };
}

export class BatchNormalization extends Stock {
  static override className = 'BatchNormalization';
  readonly renorm: boolean;
  readonly renormClipping: Required<RenormClipping> | null;
  readonly renormMomentum: number | null;
  readonly virtualBatchSize: number | null;
  /** The plans and buffers of training on a WebGPU backend (made on the first such step). */
  private trainer: GpuTrainer | null = null;

  constructor(args: BatchNormalizationArgs = {}) {
    checkLayersInternals();
    const extra = checkArgs(args);
    super(args);
    this.renorm = extra.renorm;
    this.renormClipping = extra.renormClipping;
    this.renormMomentum = extra.renormMomentum;
    this.virtualBatchSize = extra.virtualBatchSize;
  }

  private get stock(): StockFields {
    return this as unknown as StockFields;
  }

  /** What a step on an input of `shape` computes, after checking the rank and the axis. */
  private spec(shape: readonly (number | null)[]): TrainSpec {
    const rank = shape.length;
    if (rank < 2 || rank > 5)
      throw new ShapeError(
        `BatchNormalization takes inputs of rank 2 to 5 ([N, C] up to [N, D, H, W, C]); got shape ${JSON.stringify(shape)}`,
      );
    const axis = this.stock.axis < 0 ? this.stock.axis + rank : this.stock.axis;
    if (axis !== 1 && axis !== rank - 1)
      throw new LayoutError(
        `axis ${this.stock.axis} of a rank-${rank} input is neither the channels-last axis (-1) nor the channels-first one (1); transpose the input, or use axis -1 or 1`,
      );
    const C = shape[axis] ?? 0;
    const N = shape[0] ?? 0;
    const k = this.virtualBatchSize;
    return {
      shape: shape as number[],
      layout: rank === 2 ? 'NC' : axis === 1 ? 'NCHW' : 'NHWC',
      C,
      eps: this.stock.epsilon,
      factor: 1 - this.stock.momentum,
      renorm: this.renormClipping,
      ghosts: k === null || N % k !== 0 ? 1 : N / k,
      scale: this.stock.scale,
      center: this.stock.center,
    };
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    this.spec(shape);
    super.build(shape);
  }

  private variables(): StepVariables {
    const s = this.stock;
    return {
      gamma: s.scale && s.gamma ? s.gamma.read() : null,
      beta: s.center && s.beta ? s.beta.read() : null,
      movingMean: s.movingMean.read(),
      movingVariance: s.movingVariance.read(),
      update: (mean, variance) => {
        s.movingMean.write(mean);
        s.movingVariance.write(variance);
      },
    };
  }

  /**
   * Options the stock layer trains with its own code: not renorm, ghosts, center/scale false or rank
   * 5, which it lacks, nor channels first, whose gradient it gets wrong (its FusedBatchNorm gradient
   * reshapes the broadcast statistics to the wrong size and throws).
   */
  private stockTrains(s: TrainSpec): boolean {
    const o = this.stock;
    return (
      !this.renorm &&
      this.virtualBatchSize === null &&
      o.center &&
      o.scale &&
      s.shape.length <= 4 &&
      s.layout !== 'NCHW'
    );
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const s = this.spec(x.shape);
    const training = kwargs['training'] === true;
    if (!training) {
      // Stock infers ranks 2 to 4; its gradient of channels first throws, as in training.
      if (x.rank <= 4 && s.layout !== 'NCHW') return super.call(inputs, kwargs);
      return inferWithOps(s, x, this.variables());
    }
    const k = this.virtualBatchSize;
    if (k !== null && s.shape[0] % k !== 0)
      throw new BatchSizeError(
        `virtualBatchSize ${k} must divide the batch in training: shape ${JSON.stringify(x.shape)} has N = ${s.shape[0]}; use a batch size that is a multiple of ${k} (inference takes any N)`,
      );
    return tf.tidy(() => {
      const v = this.variables();
      const be = activeWebGpuBackend();
      const onGpu =
        be !== null &&
        x.dtype === 'float32' &&
        x.size / s.C / s.ghosts >= 2 &&
        [x, v.gamma, v.beta, v.movingMean, v.movingVariance].every((t) => t === null || be.tensorMap.has(t.dataId));
      if (onGpu) {
        if (this.trainer?.be !== be) {
          this.releaseGpu();
          this.trainer = new GpuTrainer(be, this.name);
        }
        return this.trainer.train(s, x, v);
      }
      if (this.stockTrains(s)) return super.call(inputs, kwargs);
      return trainWithOps(s, x, v);
    });
  }

  /** Stock's config, and the extra options where they are set (stock ignores them when loading). */
  override getConfig(): tf.serialization.ConfigDict {
    const config = super.getConfig();
    if (this.renorm)
      Object.assign(config, {
        renorm: true,
        renormClipping: { ...this.renormClipping },
        renormMomentum: this.renormMomentum,
      });
    if (this.virtualBatchSize !== null) config.virtualBatchSize = this.virtualBatchSize;
    return config;
  }

  /**
   * Disposes the weights as stock does, and the GPU plans and buffers the bridge made (also where
   * stock then refuses: a layer only ever applied to tensors, never to a model's inputs).
   */
  override dispose(): DisposeResult {
    const unused = (this as unknown as { _refCount: number | null })._refCount === null;
    if (unused) this.releaseGpu();
    const r = super.dispose();
    if (r.refCountAfterDispose === 0) this.releaseGpu();
    return r;
  }

  private releaseGpu(): void {
    this.trainer?.destroy();
    this.trainer = null;
  }
}

/** A new bridge layer, as `tf.layers.batchNormalization(args)` makes a stock one. */
export function batchNormalization(args?: BatchNormalizationArgs): BatchNormalization {
  return new BatchNormalization(args);
}

/** Makes models built from JSON (modelFromJSON, loadLayersModel) use the bridge's layer. */
export function install(): void {
  checkLayersInternals();
  tf.serialization.registerClass(BatchNormalization);
}

/** Registers the stock layer again. */
export function uninstall(): void {
  tf.serialization.registerClass(
    Stock as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
  );
}

/** Whether models built from JSON get the bridge's layer. */
export function isInstalled(): boolean {
  return registeredClass() === (BatchNormalization as unknown);
}
