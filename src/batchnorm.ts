/**
 * `BatchNorm`: a module that owns gamma, beta, the running statistics and the parameter gradients
 * on a GPUDevice, with PyTorch's semantics and state-dict keys. Calls run in the order they are
 * made; each resolves once the GPU has run it, and rejects with a typed error otherwise. A refused
 * or failed call changes no state.
 */
import { DestroyedError, ShapeError } from './errors';
import { lostError, submitChecked, watchDevice } from './device';
import { readFloats, type TensorArg } from './gpu/buffers';
import { encodeBackward, encodeForwardEval, encodeForwardTrain, statsByteLength, workspaceByteLength } from './functional';
import type { Layout } from './layout';
import { BatchNormBase, type StateDict, type StepPlan } from './moduleBase';
import type { BatchNormOptions } from './options';

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
  /** Saved statistics of the last forward call (see functional.statsByteLength). */
  readonly stats: GPUBuffer;
  private saved: StepPlan | null = null;
  private destroyed = false;
  private tail: Promise<unknown> = Promise.resolve();
  private workspaces = new Map<string, GPUBuffer>();

  constructor(device: GPUDevice, numFeatures: number, options: BatchNormOptions = {}) {
    super(numFeatures, options);
    this.device = device;
    watchDevice(device);
    const C = numFeatures;
    const name = `bn${this.isRenorm ? '-renorm' : ''}(${C})`;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const make = (what: string, fill: number, size = C * 4) => {
      const b = device.createBuffer({ label: `${name}.${what}`, size, usage, mappedAtCreation: true });
      new Float32Array(b.getMappedRange()).fill(fill);
      b.unmap();
      return b;
    };
    this.weight = make('weight', 1);
    this.bias = make('bias', 0);
    this.weightGrad = make('weight.grad', 0);
    this.biasGrad = make('bias.grad', 0);
    this.runningMean = make('running_mean', 0);
    this.runningSpread = make(this.spreadKey, 1);
    this.stats = make('saved_stats', 0, statsByteLength(C));
  }

  /** Runs calls one after another, so each plans against the state the previous one left. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => {
      if (this.destroyed) throw new DestroyedError('this BatchNorm module was destroyed; create a new one');
      const lost = watchDevice(this.device).lost;
      if (lost) throw lostError(lost);
      return fn();
    });
    this.tail = run.catch(() => {});
    return run;
  }

  private workspace(layout: Layout, shape: readonly number[]): GPUBuffer {
    const key = `${layout}:${shape.join('x')}`;
    let ws = this.workspaces.get(key);
    if (!ws) {
      // One shape per module is the common case; keep a few and start over past that.
      if (this.workspaces.size >= 4) this.clearWorkspaces();
      const size = workspaceByteLength(this.device, layout, shape, this.options.kernelVersion);
      ws = this.device.createBuffer({ label: `${this.weight.label}.workspace(${key})`, size, usage: GPUBufferUsage.STORAGE });
      this.workspaces.set(key, ws);
    }
    return ws;
  }

  private clearWorkspaces(): void {
    for (const b of this.workspaces.values()) b.destroy();
    this.workspaces.clear();
  }

  /** Normalises x into y (train: batch statistics and running update; eval: running statistics). */
  forward(x: TensorArg, y: TensorArg, shape: readonly number[], layout: Layout = 'NCHW'): Promise<void> {
    return this.serial(async () => {
      const plan = this.plan(layout, shape);
      const o = this.options;
      const affine = o.affine ? { weight: this.weight, bias: this.bias } : {};
      await submitChecked(this.device, `${this.weight.label}.forward`, (enc) => {
        if (plan.batchStats) {
          encodeForwardTrain(this.device, enc, {
            layout, shape, x, y, stats: this.stats, ...affine,
            ...(plan.updateRunning || plan.clip ? { runningMean: this.runningMean, runningVar: this.runningSpread } : {}),
            eps: o.eps, momentum: plan.updateRunning ? plan.factor : 0, unbiased: o.unbiased,
            renorm: plan.clip ?? undefined, workspace: this.workspace(layout, shape), kernelVersion: o.kernelVersion, dtype: o.dtype,
          });
        } else {
          encodeForwardEval(this.device, enc, {
            layout, shape, x, y, stats: this.stats, ...affine,
            runningMean: this.runningMean, runningVar: this.runningSpread, eps: o.eps, runningIsStd: this.isRenorm, kernelVersion: o.kernelVersion, dtype: o.dtype,
          });
        }
      });
      this.saved = plan;
      this.commit(plan);
    });
  }

  /**
   * Gradients of the last forward call: dx, and weightGrad/biasGrad (overwritten) with affine.
   * x must be that call's input, with the same shape and layout.
   */
  backward(x: TensorArg, dy: TensorArg, dx: TensorArg): Promise<void> {
    return this.serial(async () => {
      const s = this.saved;
      if (!s) throw new ShapeError('backward needs a forward call first: call forward(x, y, shape, layout) with the same x');
      const { layout, shape } = s.geom;
      const affine = this.options.affine ? { weight: this.weight, dweight: this.weightGrad, dbias: this.biasGrad } : {};
      await submitChecked(this.device, `${this.weight.label}.backward`, (enc) => {
        encodeBackward(this.device, enc, {
          layout, shape, x, dy, dx, stats: this.stats, ...affine, batchStats: s.batchStats,
          workspace: this.workspace(layout, shape), kernelVersion: this.options.kernelVersion, dtype: this.options.dtype,
        });
      });
    });
  }

  /** Batch Renorm's r and d from the last forward call (1 and 0 in eval or plain batch norm). */
  lastCorrection(): Promise<{ r: Float32Array; d: Float32Array } | null> {
    return this.serial(async () => {
      if (!this.saved) return null;
      const s = await readFloats(this.device, { buffer: this.stats }, this.numFeatures * 8);
      const C = this.numFeatures;
      return { r: Float32Array.from({ length: C }, (_, c) => s[8 * c + 5]), d: Float32Array.from({ length: C }, (_, c) => s[8 * c + 6]) };
    });
  }

  /** Parameters and running statistics under PyTorch's keys (running_std for Batch Renorm). */
  stateDict(): Promise<Record<string, Float32Array | number>> {
    return this.serial(async () => {
      const C = this.numFeatures;
      const out: Record<string, Float32Array | number> = {};
      if (this.options.affine) {
        out.weight = await readFloats(this.device, { buffer: this.weight }, C);
        out.bias = await readFloats(this.device, { buffer: this.bias }, C);
      }
      if (this.options.trackRunningStats) {
        out.running_mean = await readFloats(this.device, { buffer: this.runningMean }, C);
        out[this.spreadKey] = await readFloats(this.device, { buffer: this.runningSpread }, C);
        out.num_batches_tracked = this.numBatchesTracked;
      }
      return Object.assign(out, this.renormSettings());
    });
  }

  /** Loads a checkpoint after validating all of it; a refused checkpoint changes nothing. */
  loadStateDict(sd: StateDict): Promise<void> {
    return this.serial(async () => {
      const p = this.parseStateDict(sd);
      const q = this.device.queue;
      const put = (b: GPUBuffer, a?: Float64Array) => { if (a) q.writeBuffer(b, 0, Float32Array.from(a)); };
      put(this.weight, p.weight);
      put(this.bias, p.bias);
      put(this.runningMean, p.runningMean);
      put(this.runningSpread, p.runningSpread);
      await submitChecked(this.device, `${this.weight.label}.load_state_dict`, () => {});
      if (p.numBatchesTracked !== undefined) this.numBatchesTracked = p.numBatchesTracked;
    });
  }

  /** Frees the module's GPU buffers; later calls reject with DestroyedError. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of [this.weight, this.bias, this.weightGrad, this.biasGrad, this.runningMean, this.runningSpread, this.stats]) b.destroy();
    this.clearWorkspaces();
  }
}
