/**
 * `BatchNorm`: a module that owns gamma, beta, the running statistics, the parameter gradients and
 * its step count on a GPUDevice, with PyTorch's semantics and state-dict keys.
 *
 * Two ways to run it, both on plans (plan/sequences.ts):
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
import { BatchSizeError, BufferError, CallOrderError, DestroyedError, LimitError, OptionError } from './errors.js';
import { lostError, submitChecked, watchDevice } from './device.js';
import { placeholder, readFloats } from './gpu/buffers.js';
import { constantBuffer, encodeDispatches, type Dispatch } from './gpu/kernel.js';
import type { Layout } from './layout.js';
import { BatchNormBase, checkMerged, syncBatch, type StateDict, type StateDictInput } from './moduleBase.js';
import { checkObject, describe } from './validate/args.js';
import { type BatchNormOptions, type PiecewiseSchedule, type RenormClip } from './options.js';
import { EvalFlags } from './kernels/normalise.js';
import { FinalizeFlags, SCHEDULE_BYTES, SCHEDULE_POINTS, STEP_BYTES, StepFlags } from './kernels/statistics.js';
import {
  checkDevice,
  checkEncoder,
  epilogueGradRanges,
  residualRange,
  statsByteLength,
  type Plan,
  tensorBytes,
  tensorGeometry,
  workspaceRange,
} from './plan/plans.js';
import {
  forwardEvalDispatches,
  gradInputDispatches,
  gradSumsDispatches,
  normaliseDispatches,
  planShape,
  statisticsDispatches,
  stepDispatch,
  type PlanShape,
  type Reduced,
} from './plan/sequences.js';
import { DEFAULT_TABLE, KERNEL_TABLE, type KernelTable } from './plan/table.js';
import { planFold, type GpuFoldLayer } from './fold.js';
import {
  mergeGradSums,
  mergeStats,
  gradSumsFromPartials,
  partialsFromGradSums,
  partialsFromStats,
  statsFromPartials,
  type ShardGradSums,
  type ShardStats,
} from './sync.js';
import { argumentKey } from './plan/key.js';
import { bufferRange, checkNotModuleState, checkSharing, claimBuffers, type Range, type TensorArg } from './validate/buffers.js';

/** The tensors of one layer's step: what `bn.plan()` binds. */
export interface StepTensors {
  shape: readonly number[];
  /** Required for rank 3 to 5 (the shape alone cannot tell channels-first from channels-last). */
  layout?: Layout;
  /** The input, read by forward and by backward. */
  x: TensorArg;
  /** The output of forward; a step that only encodes backward may leave it out. */
  y?: TensorArg;
  /** The upstream gradient and the input gradient: both for a step that runs backward, or neither. */
  dy?: TensorArg;
  dx?: TensorArg;
  /** With epilogue 'add_relu': the residual added before the relu (forward), and its gradient (backward). */
  z?: TensorArg;
  dz?: TensorArg;
  /**
   * Synchronized batch norm: this step is one shard of a batch of `batch` samples split along N
   * across devices. Training forward then runs as encodeStatistics → (all-reduce) →
   * encodeForward(encoder, merged), and backward as encodeGradientSums → (all-reduce) →
   * encodeBackward(encoder, merged).
   */
  sync?: { batch: number };
}

/** forwardSync's options: the whole batch, the all-reduce, and the residual of epilogue 'add_relu'. */
export interface SyncForwardOptions {
  batch: number;
  /** This shard's statistics in, every shard's out (in shard order, the same on every shard). */
  allReduce: (local: ShardStats) => Promise<readonly ShardStats[]> | readonly ShardStats[];
  z?: TensorArg;
}

/** backwardSync's options: the all-reduce of the gradient sums, and dz for epilogue 'add_relu'. */
export interface SyncBackwardOptions {
  allReduce: (local: ShardGradSums) => Promise<readonly ShardGradSums[]> | readonly ShardGradSums[];
  dz?: TensorArg;
}

interface Forwarded {
  /** The whole batch of a synchronized forward (null otherwise). */
  readonly batch: number | null;
  /** Where the forward saved its statistics, and for how many ghost batches. */
  readonly stats: Range;
  readonly ghosts: number;
  readonly x: Range;
  /** The output, whose sign backward reads under an epilogue. */
  readonly y: Range | null;
  readonly key: string;
  readonly batchStats: boolean;
}

/** What a step binds: its input, output (absent for a backward-only step without epilogue), residual and gradients. */
interface StepBindings {
  x: Range;
  y: Range | null;
  /** The residual (a placeholder without add_relu); null for an add_relu step planned without z. */
  z: Range | null;
  grads: { dy: Range; dx: Range; dz: Range } | null;
  /** A synchronized step's whole batch and its value count per channel. */
  sync: { batch: number; M: number } | null;
  /** The step's own saved statistics, for ghost batches (G·C entries); null: the module's. */
  stats: Range | null;
}

const sameRange = (a: Range, b: Range) => a.buffer === b.buffer && a.offset === b.offset && a.size === b.size;

/** Modules made so far, for unique names. */
let modules = 0;

export class BatchNorm extends BatchNormBase {
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
  /** Momentum rule and clip schedule, read by step_state.wgsl. */
  private readonly schedule: GPUBuffer;
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
  private readonly table: KernelTable;

  constructor(device: GPUDevice, numFeatures: number, options: BatchNormOptions = {}) {
    super(numFeatures, options);
    checkDevice(device);
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
      this.scheduleData(null),
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

  /** The Schedule struct of step_state.wgsl: the momentum rule, and the clip's breakpoints (or a host-computed clip). */
  private scheduleData(hostClip: RenormClip | null): ArrayBuffer {
    const o = this.options;
    const buf = new ArrayBuffer(SCHEDULE_BYTES);
    const u = new Uint32Array(buf),
      f = new Float32Array(buf);
    u[0] = (o.momentum === null ? StepFlags.CUMULATIVE : 0) | (o.convention === 'keras' ? StepFlags.KERAS : 0);
    f[1] = o.momentum ?? 0;
    const points: PiecewiseSchedule = hostClip
      ? { rmax: [[0, hostClip.rmax]], dmax: [[0, hostClip.dmax]] }
      : o.renorm?.kind === 'points'
        ? o.renorm.points
        : { rmax: [[0, 1]], dmax: [[0, 0]] };
    u[2] = points.rmax.length;
    u[3] = points.dmax.length;
    points.rmax.forEach(([s, v], i) => {
      f[4 + 2 * i] = s;
      f[5 + 2 * i] = v;
    });
    points.dmax.forEach(([s, v], i) => {
      f[4 + 2 * (SCHEDULE_POINTS + i)] = s;
      f[5 + 2 * (SCHEDULE_POINTS + i)] = v;
    });
    return buf;
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
    const t = checkObject<StepTensors>('plan tensors', tensors);
    for (const k of Object.keys(t))
      if (!['shape', 'layout', 'x', 'y', 'dy', 'dx', 'z', 'dz', 'sync'].includes(k))
        throw new OptionError(`plan() has unknown tensor '${k}'; it takes shape, layout, x, y, dy, dx, z, dz, sync`);
    const device = this.device;
    const { dtype, epilogue } = this.options;
    const g = this.features(tensorGeometry(device, t.layout, t.shape, dtype));
    const bytes = tensorBytes(g);
    const x = bufferRange(device, 'x', t.x, bytes);
    const y = t.y === undefined ? null : bufferRange(device, 'y', t.y, bytes);
    if ((t.dy === undefined) !== (t.dx === undefined))
      throw new OptionError('pass dy and dx together (a step with backward), or neither (forward only)');
    if (!y && t.dy === undefined)
      throw new OptionError('plan() needs y (to encode forward), dy and dx (to encode backward), or all three');
    if (epilogue && t.dy !== undefined && !y)
      throw new OptionError(
        `with epilogue '${epilogue}', backward reads the forward's output y (its sign is the relu's mask): plan the step with y`,
      );
    // A step that only runs backward (the awaited backward's) needs no residual.
    const z = epilogue === 'add_relu' && t.z === undefined ? null : residualRange(device, epilogue, t.z, bytes);
    const e = t.dy === undefined ? null : epilogueGradRanges(device, epilogue, epilogue ? t.y : undefined, t.dz, bytes);
    if (t.dy === undefined && t.dz !== undefined)
      throw new OptionError('dz belongs to a step with backward: pass it with dy and dx');
    const grads =
      t.dy === undefined
        ? null
        : { dy: bufferRange(device, 'dy', t.dy, bytes), dx: bufferRange(device, 'dx', t.dx, bytes), dz: e!.dz };
    const outputs = {
      ...(y ? { y } : {}),
      ...(grads ? { dx: grads.dx } : {}),
      ...(epilogue === 'add_relu' && grads ? { dz: grads.dz } : {}),
    };
    const inputs = { x, ...(grads ? { dy: grads.dy } : {}), ...(z && epilogue === 'add_relu' ? { z } : {}) };
    checkSharing(outputs, inputs);
    checkNotModuleState(outputs, { ...inputs, ...outputs }, this.name);
    const sync = t.sync === undefined ? null : syncBatch(t.sync, g);
    const k = this.options.virtualBatchSize;
    if (sync && k !== null)
      throw new OptionError(
        'ghost batches (virtualBatchSize) are per device: a synchronized step normalises the whole batch; use one or the other',
      );
    // Ghost batches exist only where N is a multiple of k; elsewhere the step can still run in inference.
    const ghosts = k !== null && g.shape[0] % k === 0 ? g.shape[0] / k : 1;
    const shape = planShape(device, this.table, g, undefined, epilogue);
    const ghostShape = ghosts > 1 ? planShape(device, this.table, g, undefined, epilogue, ghosts) : shape;
    const stats = ghosts > 1 ? this.ghostStats(ghosts) : null;
    return new BatchNormStep(
      this,
      `${this.name}.${label}`,
      shape,
      ghostShape,
      { x, y, z, grads, sync, stats },
      `${g.layout}:${g.shape.join('x')}`,
    );
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

  /** @internal The sequences a step needs, built on first use. */
  sequences(s: PlanShape, b: StepBindings, owned: GPUBuffer[], label: string) {
    const whole = (buffer: GPUBuffer): Range => ({ buffer, offset: 0, size: buffer.size });
    const o = this.options;
    const params = {
      stats: b.stats ?? whole(this.stats),
      gamma: whole(this.weight),
      beta: whole(this.bias),
      runningMean: whole(this.runningMean),
      runningSpread: whole(this.runningSpread),
    };
    const io = () => {
      if (!b.y) throw new OptionError('this step was made for backward only');
      if (!b.z)
        throw new BufferError(
          'E_BUFFER_MISSING',
          "z is required: epilogue 'add_relu' adds the residual z before the relu (pass it to forward, or plan the step with it)",
        );
      return { x: b.x, y: b.y, z: b.z };
    };
    let workspace: Range | null = null;
    const ws = () => (workspace ??= workspaceRange(this.device, s, undefined, owned, label));
    const grads = () => {
      if (!b.grads) throw new OptionError('this step was planned without dy and dx; plan it with them to run backward');
      return {
        x: b.x,
        dy: b.grads.dy,
        dx: b.grads.dx,
        y: o.epilogue ? b.y! : placeholder(this.device, 6),
        dz: b.grads.dz,
        stats: params.stats,
        gamma: params.gamma,
        dgamma: whole(this.weightGrad),
        dbeta: whole(this.biasGrad),
        workspace: ws(),
      };
    };
    const seq = {
      /** The statistics reduction (what a synchronized step exports). */
      statistics: () => statisticsDispatches(this.device, s, b.x, ws(), owned),
      /**
       * From reduced statistics over M values: with `update`, advance the step and update the
       * running statistics; coefficients; apply.
       */
      normalise: (update: boolean, reduced: Reduced, M: number): Dispatch[] => {
        const flags =
          (update ? FinalizeFlags.UPDATE : 0) |
          (o.unbiased ? FinalizeFlags.UNBIASED : 0) |
          (o.renorm ? FinalizeFlags.RENORM : 0) |
          (o.affine ? FinalizeFlags.AFFINE : 0);
        const step = whole(this.stepState);
        const out = { runningMeanOut: placeholder(this.device, 8), runningSpreadOut: placeholder(this.device, 9) };
        const d = normaliseDispatches(
          this.device,
          s,
          { ...params, ...io(), ...out, step },
          reduced,
          M,
          o.eps,
          flags,
          owned,
        );
        return update ? [stepDispatch(this.device, whole(this.schedule), step, owned), ...d] : d;
      },
      eval: (): Dispatch[] =>
        forwardEvalDispatches(
          this.device,
          s,
          { ...params, ...io() },
          o.eps,
          (o.affine ? EvalFlags.AFFINE : 0) | (this.isRenorm ? EvalFlags.SPREAD_IS_STD : 0),
          owned,
        ),
      /** The gradient-sums reduction (what a synchronized step exports). */
      gradSums: () => gradSumsDispatches(this.device, s, grads(), owned),
      /** From reduced gradient sums over M values: dγ, dβ and dx. */
      gradInput: (batchStats: boolean, reduced: Reduced, M: number): Dispatch[] =>
        gradInputDispatches(this.device, s, grads(), reduced, M, batchStats, o.affine, owned),
    };
    return {
      ...seq,
      train: (update: boolean): Dispatch[] => {
        const st = seq.statistics();
        return [...st.dispatches, ...seq.normalise(update, st.reduced, s.g.M / s.r.ghosts)];
      },
      backward: (batchStats: boolean): Dispatch[] => {
        const gs = seq.gradSums();
        return [...gs.dispatches, ...seq.gradInput(batchStats, gs.reduced, s.g.M / s.r.ghosts)];
      },
    };
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
    for (const k of Object.keys(o))
      if (!['batch', 'allReduce', 'z'].includes(k))
        throw new OptionError(`forwardSync's sync has unknown key '${k}'; it takes batch, allReduce, z`);
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
      const host = this.training && this.options.renorm?.kind === 'function' ? this.stepClip() : null;
      const before = this.forwarded;
      try {
        let merged: ShardStats | undefined;
        if (allReduce && (this.training || !this.options.trackRunningStats)) {
          await submitChecked(this.device, `${step.label}.statistics`, (enc) => step.encodeStatistics(enc));
          merged = mergeStats(await allReduce(await step.readStatistics()));
        }
        await submitChecked(this.device, `${step.label}.forward`, (enc) => {
          if (host) this.device.queue.writeBuffer(this.schedule, 0, this.scheduleData(host));
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
    for (const k of Object.keys(o))
      if (!['allReduce', 'dz'].includes(k))
        throw new OptionError(`backwardSync's sync has unknown key '${k}'; it takes allReduce, dz`);
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
      return Object.assign(out, this.renormSettings(this.steps));
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
      put(this.runningSpread, p.runningSpread);
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

/** One layer's step on fixed tensors, from `bn.plan()`: encode forward and backward into your command encoder. */
export class BatchNormStep {
  private readonly owned: GPUBuffer[] = [];
  private readonly seqs = new Map<PlanShape, ReturnType<BatchNorm['sequences']>>();
  private readonly built = new Map<string, Dispatch[]>();
  private readonly reductions = new Map<string, { dispatches: Dispatch[]; reduced: Reduced }>();
  private readonly syncBuffers = new Map<string, GPUBuffer>();
  private destroyed = false;
  private readonly forwardPass: GPUComputePassDescriptor;
  private readonly backwardPass: GPUComputePassDescriptor;

  /** @internal */
  constructor(
    private readonly bn: BatchNorm,
    readonly label: string,
    private readonly s: PlanShape,
    /** The plan shape of batch statistics: `s`, or its ghost-batch twin. */
    private readonly sg: PlanShape,
    private readonly b: StepBindings,
    private readonly key: string,
  ) {
    this.forwardPass = { label: `${label}.forward` };
    this.backwardPass = { label: `${label}.backward` };
  }

  get shape(): readonly number[] {
    return this.s.g.shape;
  }

  get layout(): Layout {
    return this.s.g.layout;
  }

  /** The sequences of a plan shape (the step's, or its ghost twin's), built on first use. */
  private seqFor(shape: PlanShape): ReturnType<BatchNorm['sequences']> {
    let q = this.seqs.get(shape);
    if (!q) this.seqs.set(shape, (q = this.bn.sequences(shape, this.b, this.owned, this.label)));
    return q;
  }

  /** The dispatches of one kind, built once; `ghosts`: on the batch-statistics shape. */
  private dispatches(
    kind: string,
    make: (seq: ReturnType<BatchNorm['sequences']>) => Dispatch[],
    ghosts = false,
  ): Dispatch[] {
    let d = this.built.get(kind);
    if (!d) this.built.set(kind, (d = make(this.seqFor(ghosts ? this.sg : this.s))));
    return d;
  }

  private check(encoder: unknown): asserts encoder is GPUCommandEncoder {
    if (this.destroyed) throw new DestroyedError(`step ${this.label} was destroyed; plan a new one`);
    // Nothing else about the bound buffers can change: they were unmapped when the step was made,
    // and a STORAGE buffer cannot be mapped again (MAP_READ/MAP_WRITE exclude STORAGE).
    checkEncoder(encoder);
  }

  /** Batch statistics in this forward (training, or no running statistics), checked for enough values. */
  private batchStats(): boolean {
    const o = this.bn.options;
    const batchStats = this.bn.training || !o.trackRunningStats;
    if (!batchStats) return false;
    const k = o.virtualBatchSize;
    if (k !== null && this.s.g.shape[0] % k !== 0)
      throw new BatchSizeError(
        `virtualBatchSize ${k} must divide the batch: shape ${JSON.stringify(this.shape)} has N = ${this.s.g.shape[0]}; plan a step with N a multiple of ${k} (inference takes any N)`,
      );
    const ghosts = this.sg.r.ghosts;
    const M = this.b.sync?.M ?? this.s.g.M / ghosts;
    if (M < 2) {
      throw new BatchSizeError(
        `training needs more than one value per channel; shape ${JSON.stringify(this.shape)} gives M = ${M}${this.b.sync ? ' over the whole batch' : ghosts > 1 ? ' in each ghost batch' : ''}. Use a larger batch, or eval() mode.`,
      );
    }
    return true;
  }

  /**
   * Records forward into `encoder`: in training mode batch statistics, the running update and the
   * step count (on the GPU); in eval mode the running statistics. Synchronous; submits nothing.
   *
   * A synchronized step in training takes the whole batch's statistics, `merged` (mergeStats of
   * every shard's readStatistics()), after encodeStatistics: it writes them to the GPU now
   * (queue.writeBuffer), so submit this encoder before encoding the same step again.
   */
  encodeForward(encoder: GPUCommandEncoder, merged?: ShardStats): void;
  /** @internal The awaited forward passes byPlan = false. */
  encodeForward(encoder: GPUCommandEncoder, merged: ShardStats | undefined, byPlan: boolean): void;
  encodeForward(encoder: GPUCommandEncoder, merged?: ShardStats, byPlan = true): void {
    this.check(encoder);
    const o = this.bn.options;
    const batchStats = this.batchStats();
    const update = this.bn.training && o.trackRunningStats;
    const sync = this.b.sync;
    let d: Dispatch[];
    if (sync && batchStats) {
      const stats = checkMerged(merged, this.bn.numFeatures, sync.M, 'mergeStats', ['mean', 'm2']);
      const imported = this.syncBuffer('stats.import', 16 * this.bn.numFeatures, false);
      this.bn.device.queue.writeBuffer(imported.buffer, 0, partialsFromStats(stats));
      d = this.dispatches(update ? 'sync-train' : 'sync-batch', (q) =>
        q.normalise(update, { partials: imported, slices: 1, ghosts: 1 }, sync.M),
      );
    } else {
      if (merged !== undefined)
        throw new OptionError(
          sync
            ? 'in eval mode a synchronized step normalises with its running statistics: encodeForward(encoder) takes no merged statistics'
            : 'merged statistics are for synchronized steps: plan the step with sync: { batch }',
        );
      d = batchStats
        ? this.dispatches(update ? 'train' : 'batch', (q) => q.train(update), true)
        : this.dispatches('eval', (q) => q.eval());
    }
    this.bn.beginForward(
      this.b.x,
      this.b.y,
      this.key,
      batchStats,
      byPlan,
      sync?.batch ?? null,
      this.b.stats,
      batchStats ? this.sg.r.ghosts : 1,
    );
    this.encodePass(encoder, this.forwardPass, d);
  }

  /**
   * Synchronized steps in training: records this shard's statistics pass, and a copy of its
   * partials that readStatistics() reads once the encoder has been submitted. Changes no state.
   */
  encodeStatistics(encoder: GPUCommandEncoder): void {
    this.check(encoder);
    this.requireSync('encodeStatistics');
    if (!this.batchStats())
      throw new OptionError(
        'in eval mode a synchronized step normalises with its running statistics: no all-reduce, just encodeForward(encoder)',
      );
    this.io();
    this.encodeExport(encoder, 'statistics', (q) => q.statistics(), 16);
  }

  /** This shard's statistics, from the last submitted encodeStatistics: what the all-reduce sends. */
  async readStatistics(): Promise<ShardStats> {
    const { parts, slices } = await this.readExport('statistics', 16);
    return statsFromPartials(parts, this.bn.numFeatures, slices, this.s.g.M);
  }

  /**
   * Synchronized steps: records this shard's gradient-sums pass, and a copy that
   * readGradientSums() reads once the encoder has been submitted. Changes no state. (After an
   * eval-mode forward too: dx needs no all-reduce then, but dγ and dβ are the whole batch's.)
   */
  encodeGradientSums(encoder: GPUCommandEncoder): void {
    this.check(encoder);
    this.requireSync('encodeGradientSums');
    this.backwardOf();
    this.encodeExport(encoder, 'gradient-sums', (q) => q.gradSums(), 8);
  }

  /** This shard's gradient sums, from the last submitted encodeGradientSums: what the all-reduce sends. */
  async readGradientSums(): Promise<ShardGradSums> {
    const { parts, slices } = await this.readExport('gradient-sums', 8);
    return gradSumsFromPartials(parts, this.bn.numFeatures, slices, this.s.g.M);
  }

  /**
   * Records backward into `encoder`: dx, and the module's weightGrad/biasGrad (overwritten). The
   * last forward encoded on the module must be this step's (same x). Synchronous; submits nothing.
   *
   * A synchronized step takes the whole batch's gradient sums, `merged` (mergeGradSums of every
   * shard's readGradientSums()); weightGrad and biasGrad are then the whole batch's on every shard.
   */
  encodeBackward(encoder: GPUCommandEncoder, merged?: ShardGradSums): void {
    this.check(encoder);
    const f = this.backwardOf();
    const sync = this.b.sync;
    let d: Dispatch[];
    if (sync) {
      const sums = checkMerged(merged, this.bn.numFeatures, sync.M, 'mergeGradSums', ['sumDy', 'sumDyXmu']);
      const imported = this.syncBuffer('sums.import', 16 * this.bn.numFeatures, false);
      this.bn.device.queue.writeBuffer(imported.buffer, 0, partialsFromGradSums(sums));
      d = this.dispatches(`sync-backward-${f.batchStats}`, (q) =>
        q.gradInput(f.batchStats, { partials: imported, slices: 1, ghosts: 1 }, sync.M),
      );
    } else {
      if (merged !== undefined)
        throw new OptionError('merged gradient sums are for synchronized steps: plan the step with sync: { batch }');
      d = this.dispatches(
        f.batchStats ? 'backward' : 'backward-constants',
        (q) => q.backward(f.batchStats),
        f.batchStats,
      );
    }
    this.encodePass(encoder, this.backwardPass, d);
  }

  private encodePass(encoder: GPUCommandEncoder, desc: GPUComputePassDescriptor, d: Dispatch[]): void {
    const pass = encoder.beginComputePass(desc);
    encodeDispatches(pass, d);
    pass.end();
  }

  private io(): void {
    if (!this.b.y) throw new OptionError(`step ${this.label} was planned without y; plan it with y to encode forward`);
  }

  private backwardOf() {
    if (!this.b.grads)
      throw new OptionError(`step ${this.label} was planned without dy and dx; plan it with them to encode backward`);
    return this.bn.forwardOf(this.b.x, this.b.y, this.key);
  }

  private requireSync(what: string): void {
    if (!this.b.sync)
      throw new OptionError(`${what} is for synchronized steps: plan the step with sync: { batch: <whole batch N> }`);
  }

  /** A step-owned buffer of the synchronized passes (made on first use). */
  private syncBuffer(what: string, bytes: number, readable: boolean): Range {
    let b = this.syncBuffers.get(what);
    if (!b) {
      b = this.bn.device.createBuffer({
        label: `${this.label}.${what}`,
        size: Math.max(16, bytes),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | (readable ? GPUBufferUsage.COPY_SRC : 0),
      });
      this.owned.push(b);
      this.syncBuffers.set(what, b);
    }
    return { buffer: b, offset: 0, size: b.size };
  }

  /** Encodes a reduction and copies its partials (slices × C of `unit` bytes) to the export buffer. */
  private encodeExport(
    encoder: GPUCommandEncoder,
    what: 'statistics' | 'gradient-sums',
    make: (q: ReturnType<BatchNorm['sequences']>) => { dispatches: Dispatch[]; reduced: Reduced },
    unit: number,
  ): void {
    let r = this.reductions.get(what);
    if (!r) {
      this.reductions.set(what, (r = make(this.seqFor(this.s))));
    }
    const bytes = r.reduced.slices * this.bn.numFeatures * unit;
    const out = this.syncBuffer(`${what}.export`, bytes, true);
    this.encodePass(encoder, { label: `${this.label}.${what}` }, r.dispatches);
    encoder.copyBufferToBuffer(r.reduced.partials.buffer, r.reduced.partials.offset, out.buffer, 0, bytes);
  }

  private async readExport(
    what: 'statistics' | 'gradient-sums',
    unit: number,
  ): Promise<{ parts: Float32Array; slices: number }> {
    if (this.destroyed) throw new DestroyedError(`step ${this.label} was destroyed; plan a new one`);
    const r = this.reductions.get(what);
    const b = this.syncBuffers.get(`${what}.export`);
    if (!r || !b)
      throw new CallOrderError(
        'E_NO_FORWARD',
        `read${what === 'statistics' ? 'Statistics' : 'GradientSums'}() needs encode${what === 'statistics' ? 'Statistics' : 'GradientSums'}(encoder) first, submitted`,
      );
    const slices = r.reduced.slices;
    const parts = await readFloats(this.bn.device, { buffer: b }, (slices * this.bn.numFeatures * unit) / 4);
    return { parts, slices };
  }

  /** Frees the step's own buffers (uniforms, workspace). Call it once no submitted work uses it. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.owned) b.destroy();
  }
}
