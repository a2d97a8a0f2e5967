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
import { BatchNormBase, type StateDict, type StateDictInput } from './moduleBase.js';
import { checkObject, type BatchNormOptions, type PiecewiseSchedule, type RenormClip } from './options.js';
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
  backwardDispatches,
  forwardEvalDispatches,
  forwardTrainDispatches,
  planShape,
  stepDispatch,
  type PlanShape,
} from './plan/sequences.js';
import { DEFAULT_TABLE, KERNEL_TABLE, type KernelTable } from './plan/table.js';
import { planFold, type GpuFoldLayer } from './fold.js';
import { argumentKey } from './plan/key.js';
import {
  bufferRange,
  checkNotModuleState,
  checkSharing,
  claimBuffers,
  type Range,
  type TensorArg,
} from './validate.js';

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
}

interface Forwarded {
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
    const make = (what: string, fill: number, size = C * 4) =>
      constantBuffer(device, `${name}.${what}`, new Float32Array(size / 4).fill(fill).buffer, usage);
    this.weight = make('weight', 1);
    this.bias = make('bias', 0);
    this.weightGrad = make('weight.grad', 0);
    this.biasGrad = make('bias.grad', 0);
    this.runningMean = make('running_mean', 0);
    this.runningSpread = make(this.spreadKey, 1);
    this.stats = make('saved_stats', 0, statsByteLength(C));
    this.stepState = make('step', 0, STEP_BYTES);
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
      if (!['shape', 'layout', 'x', 'y', 'dy', 'dx', 'z', 'dz'].includes(k))
        throw new OptionError(`plan() has unknown tensor '${k}'; it takes shape, layout, x, y, dy, dx, z, dz`);
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
    const shape = planShape(device, this.table, g, undefined, epilogue);
    return new BatchNormStep(
      this,
      `${this.name}.${label}`,
      shape,
      { x, y, z, grads },
      `${g.layout}:${g.shape.join('x')}`,
    );
  }

  /** @internal The sequences a step needs, built on first use. */
  sequences(s: PlanShape, b: StepBindings, owned: GPUBuffer[], label: string) {
    const whole = (buffer: GPUBuffer): Range => ({ buffer, offset: 0, size: buffer.size });
    const o = this.options;
    const params = {
      stats: whole(this.stats),
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
    return {
      /** Batch statistics; with `update`, advance the step and update the running statistics. */
      train: (update: boolean): Dispatch[] => {
        const flags =
          (update ? FinalizeFlags.UPDATE : 0) |
          (o.unbiased ? FinalizeFlags.UNBIASED : 0) |
          (o.renorm ? FinalizeFlags.RENORM : 0) |
          (o.affine ? FinalizeFlags.AFFINE : 0);
        const step = whole(this.stepState);
        const seq = forwardTrainDispatches(
          this.device,
          s,
          { ...params, ...io(), step, workspace: ws() },
          o.eps,
          flags,
          owned,
        );
        return update ? [stepDispatch(this.device, whole(this.schedule), step, owned), ...seq] : seq;
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
      backward: (batchStats: boolean): Dispatch[] => {
        if (!b.grads)
          throw new OptionError('this step was planned without dy and dx; plan it with them to run backward');
        return backwardDispatches(
          this.device,
          s,
          {
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
          },
          batchStats,
          o.affine,
          owned,
        );
      },
    };
  }

  /** @internal Called by a step as it encodes forward: checks, and records what backward will need. */
  beginForward(x: Range, y: Range | null, key: string, batchStats: boolean, byPlan: boolean): void {
    this.alive();
    if (byPlan && batchStats && this.training && this.options.trackRunningStats) this.countKnown = false;
    this.forwarded = { x, y, key, batchStats };
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
    const key = argumentKey([t.shape, t.layout, t.x, t.y, t.dy, t.dx, t.z, t.dz]);
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
    return this.serial(async () => {
      const step = this.internalStep({ shape, layout, x, y, ...(z === undefined ? {} : { z }) });
      await this.syncCount();
      const host = this.training && this.options.renorm?.kind === 'function' ? this.stepClip() : null;
      const before = this.forwarded;
      try {
        await submitChecked(this.device, `${step.label}.forward`, (enc) => {
          if (host) this.device.queue.writeBuffer(this.schedule, 0, this.scheduleData(host));
          step.encodeForward(enc, false);
        });
      } catch (e) {
        this.forwarded = before;
        throw e;
      }
      if (this.training && this.options.trackRunningStats) this.steps += 1;
    });
  }

  /**
   * Gradients of the last forward: dx, weightGrad/biasGrad (overwritten) with affine, and dz (the
   * residual's gradient) with epilogue 'add_relu'. x must be that forward's input (the same buffer
   * range); under an epilogue the relu's mask comes from that forward's output.
   */
  backward(x: TensorArg, dy: TensorArg, dx: TensorArg, dz?: TensorArg): Promise<void> {
    return this.serial(async () => {
      const f = this.forwarded;
      if (!f)
        throw new CallOrderError(
          'E_NO_FORWARD',
          'backward needs a forward first: call forward(x, y, shape, layout) with the same x',
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
      });
      await submitChecked(this.device, `${step.label}.backward`, (enc) => step.encodeBackward(enc));
    });
  }

  /** Batch Renorm's r and d from the last forward (1 and 0 in eval or plain batch norm). */
  lastCorrection(): Promise<{ r: Float32Array; d: Float32Array } | null> {
    return this.serial(async () => {
      if (!this.forwarded) return null;
      const C = this.numFeatures;
      const s = await readFloats(this.device, { buffer: this.stats }, C * 8);
      return {
        r: Float32Array.from({ length: C }, (_, c) => s[8 * c + 5]),
        d: Float32Array.from({ length: C }, (_, c) => s[8 * c + 6]),
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
    for (const b of this.owned) b.destroy();
  }
}

/** One layer's step on fixed tensors, from `bn.plan()`: encode forward and backward into your command encoder. */
export class BatchNormStep {
  private readonly owned: GPUBuffer[] = [];
  private seq: ReturnType<BatchNorm['sequences']> | null = null;
  private readonly built = new Map<string, Dispatch[]>();
  private destroyed = false;
  private readonly forwardPass: GPUComputePassDescriptor;
  private readonly backwardPass: GPUComputePassDescriptor;

  /** @internal */
  constructor(
    private readonly bn: BatchNorm,
    readonly label: string,
    private readonly s: PlanShape,
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

  private dispatches(kind: string, make: (seq: ReturnType<BatchNorm['sequences']>) => Dispatch[]): Dispatch[] {
    let d = this.built.get(kind);
    if (!d) {
      this.seq ??= this.bn.sequences(this.s, this.b, this.owned, this.label);
      this.built.set(kind, (d = make(this.seq)));
    }
    return d;
  }

  private check(encoder: unknown): asserts encoder is GPUCommandEncoder {
    if (this.destroyed) throw new DestroyedError(`step ${this.label} was destroyed; plan a new one`);
    // Nothing else about the bound buffers can change: they were unmapped when the step was made,
    // and a STORAGE buffer cannot be mapped again (MAP_READ/MAP_WRITE exclude STORAGE).
    checkEncoder(encoder);
  }

  /**
   * Records forward into `encoder`: in training mode batch statistics, the running update and the
   * step count (on the GPU); in eval mode the running statistics. Synchronous; submits nothing.
   */
  encodeForward(encoder: GPUCommandEncoder, byPlan = true): void {
    this.check(encoder);
    const o = this.bn.options;
    const batchStats = this.bn.training || !o.trackRunningStats;
    if (batchStats && this.s.g.M < 2) {
      throw new BatchSizeError(
        `training needs more than one value per channel; shape ${JSON.stringify(this.shape)} gives M = ${this.s.g.M}. Use a larger batch, or eval() mode.`,
      );
    }
    const update = this.bn.training && o.trackRunningStats;
    const d = batchStats
      ? this.dispatches(update ? 'train' : 'batch', (q) => q.train(update))
      : this.dispatches('eval', (q) => q.eval());
    this.bn.beginForward(this.b.x, this.b.y, this.key, batchStats, byPlan);
    const pass = encoder.beginComputePass(this.forwardPass);
    encodeDispatches(pass, d);
    pass.end();
  }

  /**
   * Records backward into `encoder`: dx, and the module's weightGrad/biasGrad (overwritten). The
   * last forward encoded on the module must be this step's (same x). Synchronous; submits nothing.
   */
  encodeBackward(encoder: GPUCommandEncoder): void {
    this.check(encoder);
    if (!this.b.grads)
      throw new OptionError(`step ${this.label} was planned without dy and dx; plan it with them to encode backward`);
    const f = this.bn.forwardOf(this.b.x, this.b.y, this.key);
    const d = this.dispatches(f.batchStats ? 'backward' : 'backward-constants', (q) => q.backward(f.batchStats));
    const pass = encoder.beginComputePass(this.backwardPass);
    encodeDispatches(pass, d);
    pass.end();
  }

  /** Frees the step's own buffers (uniforms, workspace). Call it once no submitted work uses it. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.owned) b.destroy();
  }
}
