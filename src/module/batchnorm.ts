/**
 * `BatchNorm`: a module that owns gamma, beta, the running statistics, the parameter gradients and
 * its step count on a GPUDevice, with PyTorch's semantics and state-dict keys.
 *
 * Two ways to run it, both on plans (module/step.ts):
 * - `bn.plan({ shape, layout, x, y, dy, dx })` validates once and returns a BatchNormStep whose
 *   encodeForward / encodeBackward record into the caller's encoder, synchronously: a whole
 *   training step of many layers goes into one command buffer and one submit;
 * - the awaited methods (`forward`, `backward`, `stateDict`, ...) run one call at a time, each
 *   resolving once the GPU has run it, and rejecting with a typed error otherwise.
 *
 * The step count (num_batches_tracked) lives on the GPU, advanced by each training step that the
 * GPU runs (step_state.wgsl); so do the per-step momentum factor and the renorm clip. See the
 * README's "State when steps are encoded" for what a command buffer that is never submitted, or
 * fails, does to the state.
 */
import { CallOrderError, DestroyedError, LimitError, OptionError } from '../errors.js';
import { lostError, submitChecked, watchDevice } from '../device.js';
import { readFloats } from '../gpu/buffers.js';
import { constantBuffer } from '../gpu/kernel.js';
import { STEP_BYTES } from '../kernels/step.js';
import type { Layout } from '../layout.js';
import type { BatchNormOptions } from '../options.js';
import { statsByteLength } from '../plan/params.js';
import type { Plan } from '../plan/pass.js';
import { argumentKey } from '../plan/key.js';
import { DEFAULT_TABLE, KERNEL_TABLE, type KernelTable } from '../plan/table.js';
import { planFold } from '../fold/gpu.js';
import type { GpuFoldLayer } from '../fold/host.js';
import { mergeGradSums, mergeStats, type ShardGradSums, type ShardStats } from '../sync.js';
import { checkKeys, checkObject, describe } from '../validate/args.js';
import { claimBuffers, type Range, type TensorArg } from '../validate/buffers.js';
import type { StateDict, StateDictInput } from '../validate/state.js';
import { validateStep } from '../validate/step.js';
import { checkDevice, checkDtypeFeature } from '../validate/tensors.js';
import { ModuleBase } from './base.js';
import { clipAt, renormSettings, sigmaFromVariance } from './rules.js';
import { packSchedule } from './schedule.js';
import { BatchNormStep } from './step.js';
import {
  sameRange,
  type Forwarded,
  type StepTensors,
  type SyncBackwardOptions,
  type SyncForwardOptions,
} from './types.js';

/** Modules made so far, for unique names. */
let modules = 0;

export class BatchNorm extends ModuleBase {
  readonly device: GPUDevice;
  /** gamma, beta and their gradients (present with affine). */
  readonly weight: GPUBuffer;
  readonly bias: GPUBuffer;
  readonly weightGrad: GPUBuffer;
  readonly biasGrad: GPUBuffer;
  readonly runningMean: GPUBuffer;
  /** running_var, or running_std (sigma) for Batch Renorm. */
  readonly runningSpread: GPUBuffer;
  /** Saved statistics of the last forward (see statsByteLength). */
  readonly stats: GPUBuffer;
  /** (num_batches_tracked as u32, factor, rmax, dmax) of the last training step. */
  readonly stepState: GPUBuffer;
  /** @internal Momentum rule and clip schedule, read by step_state.wgsl. */
  readonly schedule: GPUBuffer;
  /** The module's name in labels and messages: bn#<n>(C), or bn-renorm#<n>(C). */
  readonly name: string;
  private readonly owned: GPUBuffer[];
  private destroyed = false;
  private tail: Promise<unknown> = Promise.resolve();
  /** What the last encoded forward bound: backward must differentiate that forward. */
  private forwarded: Forwarded | null = null;
  /** Plans made by plan() (destroyed with the module) and by the awaited methods (kept per argument set). */
  private readonly plans = new Set<BatchNormStep>();
  private readonly internal = new Map<string, BatchNormStep>();
  private readonly folds = new Set<Plan>();
  private readonly ghostBuffers = new Map<number, GPUBuffer>();
  /** False once a plan encodes a training step: the count is then only known on the GPU until read back. */
  private countKnown = true;
  /** @internal The kernels its steps take (the dev versions' tests set another). */
  readonly table: KernelTable;

  constructor(device: GPUDevice, numFeatures: number, options: BatchNormOptions = {}) {
    super(numFeatures, options);
    checkDevice(device);
    // Refused now, not at the first forward: the module could never run on this device.
    checkDtypeFeature(device, this.options.dtype);
    this.device = device;
    this.table = (options as { [KERNEL_TABLE]?: KernelTable })[KERNEL_TABLE] ?? DEFAULT_TABLE;
    const C = numFeatures;
    const limit = Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize);
    if (statsByteLength(C) > limit) {
      throw new LimitError(
        `numFeatures ${C} needs ${statsByteLength(C)}-byte buffers, above this device's maxBufferSize/maxStorageBufferBindingSize (${limit}); use fewer channels or a device with higher limits`,
      );
    }
    const name = `bn${this.isRenorm ? '-renorm' : ''}#${++modules}(${C})`;
    this.name = name;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const make = (what: string, fill: number, size = C * 4, extra = 0) =>
      constantBuffer(device, `${name}.${what}`, new Float32Array(size / 4).fill(fill).buffer, usage | extra);
    this.weight = make('weight', 1);
    this.bias = make('bias', 0);
    this.weightGrad = make('weight.grad', 0);
    this.biasGrad = make('bias.grad', 0);
    this.runningMean = make('running_mean', 0);
    this.runningSpread = make(this.spreadKey, 1);
    this.stats = make('saved_stats', 0, statsByteLength(C));
    // Written by step_state.wgsl, read by forward_finalize.wgsl as a uniform.
    this.stepState = make('step', 0, STEP_BYTES, GPUBufferUsage.UNIFORM);
    this.schedule = constantBuffer(
      device,
      `${name}.schedule`,
      packSchedule(this.options, null),
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    );
    this.owned = [
      this.weight,
      this.bias,
      this.weightGrad,
      this.biasGrad,
      this.runningMean,
      this.runningSpread,
      this.stats,
      this.stepState,
      this.schedule,
    ];
    claimBuffers(name, this.owned);
  }

  /** Throws unless the module and its device are usable. */
  private alive(): void {
    if (this.destroyed) throw new DestroyedError('this BatchNorm module was destroyed; create a new one');
    const lost = watchDevice(this.device).lost;
    if (lost) throw lostError(lost);
  }

  /**
   * A step of this module on fixed tensors, validated once: its encodeForward and encodeBackward
   * record into your encoder and submit nothing. dy and dx may be left out for a forward-only step.
   * Needs a renorm schedule the GPU evaluates (fixed, renormSchedule(), or breakpoints).
   */
  plan(tensors: StepTensors): BatchNormStep {
    this.alive();
    if (this.options.renorm?.kind === 'function') {
      throw new OptionError(
        "this module's renorm schedule is a function, which runs on the host before each awaited step; plans encode steps ahead of time, so give the schedule as renormSchedule({...}) or breakpoints { rmax: [[step, value], ...], dmax: [...] }",
      );
    }
    const step = this.makeStep(tensors, 'plan');
    this.plans.add(step);
    return step;
  }

  private makeStep(tensors: Partial<StepTensors>, label: string): BatchNormStep {
    const c = validateStep(this, tensors);
    const stats = c.ghosts > 1 ? this.ghostStats(c.ghosts) : null;
    return new BatchNormStep(this, `${this.name}.${label}`, c.shape, c.ghostShape, { ...c.bindings, stats }, c.key);
  }

  /**
   * The saved statistics of `ghosts` ghost batches (G·C entries), shared by every step of that
   * ghost count, as the module's own `stats` is by the others: backward reads what forward saved.
   */
  private ghostStats(ghosts: number): Range {
    let b = this.ghostBuffers.get(ghosts);
    if (!b) {
      const bytes = statsByteLength(this.numFeatures) * ghosts;
      const { maxBufferSize, maxStorageBufferBindingSize } = this.device.limits;
      if (bytes > Math.min(maxBufferSize, maxStorageBufferBindingSize))
        throw new LimitError(
          `${ghosts} ghost batches need ${bytes} bytes of saved statistics, above this device's limits; use a larger virtualBatchSize`,
        );
      b = this.device.createBuffer({
        label: `${this.name}.saved_stats.ghosts${ghosts}`,
        size: bytes,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
      });
      this.ghostBuffers.set(ghosts, b);
      claimBuffers(this.name, [b]);
    }
    return { buffer: b, offset: 0, size: b.size };
  }

  /** @internal Called by a step as it encodes forward: checks, and records what backward will need. */
  beginForward(
    x: Range,
    y: Range | null,
    key: string,
    batchStats: boolean,
    byPlan: boolean,
    batch: number | null,
    stats: Range | null,
    ghosts: number,
  ): void {
    this.alive();
    if (byPlan && batchStats && this.training && this.options.trackRunningStats) this.countKnown = false;
    this.forwarded = {
      x,
      y,
      key,
      batchStats,
      batch,
      stats: stats ?? { buffer: this.stats, offset: 0, size: this.stats.size },
      ghosts,
    };
  }

  /** @internal Called by a step as it encodes backward: the forward it differentiates. */
  forwardOf(x: Range, y: Range | null, key: string): Forwarded {
    this.alive();
    const f = this.forwarded;
    if (!f)
      throw new CallOrderError(
        'E_NO_FORWARD',
        'backward needs a forward first: encode (or await) forward on the same x, then backward',
      );
    if (!sameRange(f.x, x) || f.key !== key) {
      throw new CallOrderError(
        'E_INPUT_MISMATCH',
        `backward got x = ${x.buffer.label || 'a buffer'} at offset ${x.offset} (shape ${key}), but the last forward read ${f.x.buffer.label || 'a buffer'} at offset ${f.x.offset} (shape ${f.key}); backward must differentiate the last forward, with the same x`,
      );
    }
    if (this.options.epilogue && !(y && f.y && sameRange(y, f.y))) {
      throw new CallOrderError(
        'E_INPUT_MISMATCH',
        `with epilogue '${this.options.epilogue}', backward reads the relu's mask from the last forward's output; this step's y is not that output`,
      );
    }
    return f;
  }

  /** Runs calls one after another, so each plans against the state the previous one left. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => {
      this.alive();
      return fn();
    });
    this.tail = run.catch(() => {});
    return run;
  }

  /** The plan the awaited methods use for these tensors (kept per argument set; the oldest destroyed past 8). */
  private internalStep(t: Partial<StepTensors>): BatchNormStep {
    const key = argumentKey([t.shape, t.layout, t.x, t.y, t.dy, t.dx, t.z, t.dz, t.sync]);
    let step = this.internal.get(key);
    if (!step) {
      step = this.makeStep(t, 'call');
      if (this.internal.size >= 8) {
        const [oldest, s] = this.internal.entries().next().value!;
        this.internal.delete(oldest);
        s.destroy(); // awaited calls have completed, so nothing pending uses it
      }
      this.internal.set(key, step);
    }
    return step;
  }

  /** The step count from the GPU, when plans may have advanced it. */
  private async syncCount(): Promise<void> {
    if (this.countKnown) return;
    this.steps = new Uint32Array((await readFloats(this.device, { buffer: this.stepState }, 1)).buffer)[0];
    this.countKnown = true;
  }

  /**
   * Normalises x into y (train: batch statistics and running update; eval: running statistics),
   * and resolves once the GPU has run it. Pass `layout` for rank 3 to 5, and z (the residual)
   * with epilogue 'add_relu'.
   */
  forward(x: TensorArg, y: TensorArg, shape: readonly number[], layout?: Layout, z?: TensorArg): Promise<void> {
    return this.runForward({ shape, layout, x, y, ...(z === undefined ? {} : { z }) }, null);
  }

  /**
   * Synchronized forward of this device's shard of a batch of `sync.batch` samples (split along
   * N): in training, this shard's statistics go to `sync.allReduce`, which must resolve to every
   * shard's, in the same order on every shard (the caller's transport); their merge normalises
   * x and updates the running statistics, as the whole batch would on one device. In eval mode
   * allReduce is not called (running statistics need none).
   */
  forwardSync(
    x: TensorArg,
    y: TensorArg,
    shape: readonly number[],
    layout: Layout | undefined,
    sync: SyncForwardOptions,
  ): Promise<void> {
    const o = checkObject<SyncForwardOptions>('sync', sync);
    checkKeys("forwardSync's sync", o, ['batch', 'allReduce', 'z']);
    if (typeof o.allReduce !== 'function')
      throw new OptionError(
        `sync.allReduce must be a function (local stats) => every shard's stats; got ${describe(o.allReduce)}`,
      );
    return this.runForward(
      { shape, layout, x, y, sync: { batch: o.batch as number }, ...(o.z === undefined ? {} : { z: o.z }) },
      o.allReduce,
    );
  }

  private runForward(
    t: Partial<StepTensors>,
    allReduce: ((local: ShardStats) => Promise<readonly ShardStats[]> | readonly ShardStats[]) | null,
  ): Promise<void> {
    return this.serial(async () => {
      const step = this.internalStep(t);
      // A function schedule is evaluated here, from the host's count: such modules cannot be
      // planned, so their count is always known.
      const host =
        this.training && this.options.renorm?.kind === 'function' ? clipAt(this.options.renorm, this.steps) : null;
      const before = this.forwarded;
      try {
        let merged: ShardStats | undefined;
        if (allReduce && (this.training || !this.options.trackRunningStats)) {
          await submitChecked(this.device, `${step.label}.statistics`, (enc) => step.encodeStatistics(enc));
          merged = mergeStats(await allReduce(await step.readStatistics()));
        }
        await submitChecked(this.device, `${step.label}.forward`, (enc) => {
          if (host) this.device.queue.writeBuffer(this.schedule, 0, packSchedule(this.options, host));
          step.encodeForward(enc, merged, false);
        });
      } catch (e) {
        this.forwarded = before;
        throw e;
      }
      // Only a step that ran moves the count (a refused one leaves even the host's view as it was).
      if (this.training && this.options.trackRunningStats) {
        if (this.countKnown) this.steps += 1;
        else await this.syncCount();
      }
    });
  }

  /**
   * Gradients of the last forward: dx, weightGrad/biasGrad (overwritten) with affine, and dz (the
   * residual's gradient) with epilogue 'add_relu'. x must be that forward's input (the same buffer
   * range); under an epilogue the relu's mask comes from that forward's output.
   */
  backward(x: TensorArg, dy: TensorArg, dx: TensorArg, dz?: TensorArg): Promise<void> {
    return this.runBackward(x, dy, dx, dz, null);
  }

  /**
   * Backward of a forwardSync: in training, this shard's gradient sums go to `sync.allReduce`
   * (every shard's, in order, as for forwardSync); dx is then exact for the whole batch, and
   * weightGrad/biasGrad are the whole batch's on every shard (do not all-reduce them again).
   */
  backwardSync(x: TensorArg, dy: TensorArg, dx: TensorArg, sync: SyncBackwardOptions): Promise<void> {
    const o = checkObject<SyncBackwardOptions>('sync', sync);
    checkKeys("backwardSync's sync", o, ['allReduce', 'dz']);
    if (typeof o.allReduce !== 'function')
      throw new OptionError(
        `sync.allReduce must be a function (local gradient sums) => every shard's; got ${describe(o.allReduce)}`,
      );
    return this.runBackward(x, dy, dx, o.dz, o.allReduce);
  }

  private runBackward(
    x: TensorArg,
    dy: TensorArg,
    dx: TensorArg,
    dz: TensorArg | undefined,
    allReduce: ((local: ShardGradSums) => Promise<readonly ShardGradSums[]> | readonly ShardGradSums[]) | null,
  ): Promise<void> {
    return this.serial(async () => {
      const f = this.forwarded;
      if (!f)
        throw new CallOrderError(
          'E_NO_FORWARD',
          'backward needs a forward first: call forward(x, y, shape, layout) with the same x',
        );
      if ((f.batch !== null) !== (allReduce !== null))
        throw new CallOrderError(
          'E_INPUT_MISMATCH',
          f.batch !== null
            ? 'the last forward was synchronized (forwardSync): differentiate it with backwardSync'
            : 'the last forward was not synchronized: differentiate it with backward',
        );
      const [layout, dims] = f.key.split(':');
      const step = this.internalStep({
        shape: dims.split('x').map(Number),
        layout: layout as Layout,
        x,
        dy,
        dx,
        ...(this.options.epilogue && f.y ? { y: f.y } : {}),
        ...(dz === undefined ? {} : { dz }),
        ...(f.batch === null ? {} : { sync: { batch: f.batch } }),
      });
      let merged: ShardGradSums | undefined;
      if (allReduce) {
        await submitChecked(this.device, `${step.label}.gradient_sums`, (enc) => step.encodeGradientSums(enc));
        merged = mergeGradSums(await allReduce(await step.readGradientSums()));
      }
      await submitChecked(this.device, `${step.label}.backward`, (enc) => step.encodeBackward(enc, merged));
    });
  }

  /** Batch Renorm's r and d from the last forward (1 and 0 in eval or plain batch norm). */
  lastCorrection(): Promise<{ r: Float32Array; d: Float32Array } | null> {
    return this.serial(async () => {
      if (!this.forwarded) return null;
      // One (r, d) per channel, or per ghost batch and channel (ghost-major).
      const n = this.numFeatures * this.forwarded.ghosts;
      const s = await readFloats(this.device, this.forwarded.stats, n * 8);
      return {
        r: Float32Array.from({ length: n }, (_, v) => s[8 * v + 5]),
        d: Float32Array.from({ length: n }, (_, v) => s[8 * v + 6]),
      };
    });
  }

  /**
   * Parameters, running statistics and num_batches_tracked under PyTorch's keys (running_std for
   * Batch Renorm), read from the GPU after everything submitted before the call.
   */
  stateDict(): Promise<StateDict> {
    return this.serial(async () => {
      const C = this.numFeatures;
      const out: StateDict = {};
      if (this.options.affine) {
        out.weight = await readFloats(this.device, { buffer: this.weight }, C);
        out.bias = await readFloats(this.device, { buffer: this.bias }, C);
      }
      if (this.options.trackRunningStats) {
        out.running_mean = await readFloats(this.device, { buffer: this.runningMean }, C);
        out[this.spreadKey] = await readFloats(this.device, { buffer: this.runningSpread }, C);
        this.countKnown = false;
        await this.syncCount();
        out.num_batches_tracked = this.steps;
      }
      return Object.assign(out, renormSettings(this.options.renorm, this.steps));
    });
  }

  /** Loads a checkpoint after validating all of it; a refused checkpoint changes nothing. */
  loadStateDict(sd: StateDictInput): Promise<void> {
    return this.serial(async () => {
      const p = this.parseStateDict(sd);
      const q = this.device.queue;
      const put = (b: GPUBuffer, a?: Float64Array) => {
        if (a) q.writeBuffer(b, 0, Float32Array.from(a));
      };
      put(this.weight, p.weight);
      put(this.bias, p.bias);
      put(this.runningMean, p.runningMean);
      if (p.runningSpread) {
        const { key, values } = p.runningSpread;
        put(
          this.runningSpread,
          this.isRenorm && key === 'running_var' ? sigmaFromVariance(values, this.options.eps) : values,
        );
      }
      if (p.numBatchesTracked !== undefined) q.writeBuffer(this.stepState, 0, new Uint32Array([p.numBatchesTracked]));
      await submitChecked(this.device, `${this.name}.load_state_dict`, () => {});
      if (p.numBatchesTracked !== undefined) {
        this.steps = p.numBatchesTracked;
        this.countKnown = true;
      }
    });
  }

  /**
   * Plans folding this module (in eval semantics) into the layer that feeds it: encode() writes the
   * folded weight and bias (see fold.ts). The plan reads the module's state when its command buffer
   * runs, and is destroyed with the module.
   */
  planFold(layer: GpuFoldLayer): Plan {
    this.alive();
    const p = planFold(this, layer);
    this.folds.add(p);
    return p;
  }

  /** Folds this module into the layer that feeds it, and resolves once the GPU has written weightOut and biasOut. */
  fold(layer: GpuFoldLayer): Promise<void> {
    return this.serial(async () => {
      const p = planFold(this, layer);
      try {
        await submitChecked(this.device, p.label, (enc) => p.encode(enc));
      } finally {
        p.destroy();
      }
    });
  }

  /** Frees the module's GPU buffers and those of its plans; later calls reject with DestroyedError. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const s of [...this.plans, ...this.internal.values(), ...this.folds]) s.destroy();
    for (const b of [...this.owned, ...this.ghostBuffers.values()]) b.destroy();
  }
}
