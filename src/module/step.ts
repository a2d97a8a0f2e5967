/**
 * `BatchNormStep`: one layer's step of a module on tensors validated once (validate/step.ts), from
 * `bn.plan()`. encodeForward / encodeBackward record into the caller's encoder and submit nothing;
 * the dispatches of each kind are built on first use (module/sequences.ts) and encoded as often as
 * the step is. A synchronized step also exports its shard's reductions and imports the merged
 * values (module/sync.ts).
 */
import { BatchSizeError, DestroyedError, OptionError } from '../errors.js';
import { encodeDispatches, type Dispatch } from '../gpu/kernel.js';
import type { Layout } from '../layout.js';
import type { KernelPlan, Reduced } from '../plan/sequences.js';
import type { ShardGradSums, ShardStats } from '../sync.js';
import { checkMerged } from '../validate/sync.js';
import { checkEncoder } from '../validate/tensors.js';
import type { BatchNorm } from './batchnorm.js';
import { stepSequences, type Sequences } from './sequences.js';
import { ShardPort, type Exchange } from './sync.js';
import type { StepBindings } from './types.js';

/** One layer's step on fixed tensors, from `bn.plan()`: encode forward and backward into your command encoder. */
export class BatchNormStep {
  private readonly owned: GPUBuffer[] = [];
  private readonly seqs = new Map<KernelPlan, Sequences>();
  private readonly built = new Map<string, Dispatch[]>();
  private readonly reductions = new Map<Exchange, { dispatches: Dispatch[]; reduced: Reduced }>();
  private readonly port: ShardPort;
  private destroyed = false;
  private readonly forwardPass: GPUComputePassDescriptor;
  private readonly backwardPass: GPUComputePassDescriptor;

  /** @internal */
  constructor(
    private readonly bn: BatchNorm,
    readonly label: string,
    private readonly s: KernelPlan,
    /** The plan shape of batch statistics: `s`, or its ghost-batch twin. */
    private readonly sg: KernelPlan,
    private readonly b: StepBindings,
    private readonly key: string,
  ) {
    this.forwardPass = { label: `${label}.forward` };
    this.backwardPass = { label: `${label}.backward` };
    this.port = new ShardPort(bn.device, label, bn.numFeatures, this.owned);
  }

  get shape(): readonly number[] {
    return this.s.g.shape;
  }

  get layout(): Layout {
    return this.s.g.layout;
  }

  /** The sequences of a plan shape (the step's, or its ghost twin's), built on first use. */
  private seqFor(shape: KernelPlan): Sequences {
    let q = this.seqs.get(shape);
    if (!q) this.seqs.set(shape, (q = stepSequences(this.bn, shape, this.b, this.owned, this.label)));
    return q;
  }

  /** The dispatches of one kind, built once; `ghosts`: on the batch-statistics shape. */
  private dispatches(kind: string, make: (seq: Sequences) => Dispatch[], ghosts = false): Dispatch[] {
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
      const imported = this.port.import('statistics', stats);
      d = this.dispatches(update ? 'sync-train' : 'sync-batch', (q) => q.normalise(update, imported, sync.M));
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
    this.encodeExport(encoder, 'statistics', (q) => q.statistics());
  }

  /** This shard's statistics, from the last submitted encodeStatistics: what the all-reduce sends. */
  async readStatistics(): Promise<ShardStats> {
    return this.port.read('statistics', this.s.g.M, this.destroyed);
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
    this.encodeExport(encoder, 'gradient-sums', (q) => q.gradSums());
  }

  /** This shard's gradient sums, from the last submitted encodeGradientSums: what the all-reduce sends. */
  async readGradientSums(): Promise<ShardGradSums> {
    return this.port.read('gradient-sums', this.s.g.M, this.destroyed);
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
      const imported = this.port.import('gradient-sums', sums);
      d = this.dispatches(`sync-backward-${f.batchStats}`, (q) => q.gradInput(f.batchStats, imported, sync.M));
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

  /** Encodes a reduction (built once) and the export of its partials. */
  private encodeExport(
    encoder: GPUCommandEncoder,
    what: Exchange,
    make: (q: Sequences) => { dispatches: Dispatch[]; reduced: Reduced },
  ): void {
    let r = this.reductions.get(what);
    if (!r) this.reductions.set(what, (r = make(this.seqFor(this.s))));
    this.encodePass(encoder, { label: `${this.label}.${what}` }, r.dispatches);
    this.port.encodeExport(encoder, what, r.reduced);
  }

  /** Frees the step's own buffers (uniforms, workspace). Call it once no submitted work uses it. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.owned) b.destroy();
  }
}
