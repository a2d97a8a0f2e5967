/** The tensors of a module's step, the options of its synchronized calls, and what a step binds. */
import type { ShardGradSums, ShardStats } from '../sync.js';
import type { Layout } from '../layout.js';
import type { Range, TensorArg } from '../validate/buffers.js';

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

/** What the last encoded forward bound: backward must differentiate that forward. */
export interface Forwarded {
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
export interface StepBindings {
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

/** Two bindings of the same range. */
export const sameRange = (a: Range, b: Range) => a.buffer === b.buffer && a.offset === b.offset && a.size === b.size;
