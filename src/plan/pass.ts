/**
 * A plan's one compute pass: encoded on the planned buffers, or with some tensors bound elsewhere
 * (checked as when planning), bind groups cached by buffer identity.
 */
import { DestroyedError } from '../errors.js';
import { lostError, watchDevice } from '../device.js';
import { isPlaceholder } from '../gpu/buffers.js';
import { encodeDispatches, type Dispatch } from '../gpu/kernel.js';
import { checkKeys, checkObject } from '../validate/args.js';
import { bufferRange, checkNotModuleState, checkSharing, type Range, type TensorArg } from '../validate/buffers.js';
import { checkEncoder } from '../validate/tensors.js';

/**
 * An encodable plan. Its pipelines, uniforms and workspace are fixed when it is made; its tensors
 * are the buffers it was made with, or others of the same size passed to each `encode` (for
 * frameworks that pool and rotate buffers, such as TF.js). A plan keeps the bind groups of the
 * last BIND_GROUP_CACHE_SIZE buffer sets per dispatch, so steady steps create no pipelines and no
 * bind groups.
 */
export interface Plan<T extends object = Record<string, TensorArg>> {
  readonly label: string;
  /** The dispatches one encode records, in order (what `npm run bench -- --profile` times one by one). */
  readonly dispatches: readonly Dispatch[];
  /**
   * Records the plan's compute pass into `encoder`, on the planned buffers or on `tensors`, which
   * may bind any of the plan's tensors elsewhere (checked as when planning). Synchronous; submits
   * nothing.
   */
  encode(encoder: GPUCommandEncoder, tensors?: T): void;
  /** Frees the plan's own buffers (uniforms, its workspace). Call it once no submitted work uses the plan. */
  destroy(): void;
}

/** A plan's one compute pass, and the checks of what can change between encodes. */
export class PassPlan<T extends object = Record<string, TensorArg>> implements Plan<T> {
  private destroyed = false;
  /**
   * `writes` and `reads` are the plan's bindings by parameter name, as validated when it was made
   * (checkSharing's split: a binding the kernels declare read_write is a write). An encode may bind
   * any of them elsewhere but `fixed` ones and placeholders (tensors the plan was made without).
   */
  constructor(
    private readonly device: GPUDevice,
    readonly label: string,
    readonly dispatches: readonly Dispatch[],
    private readonly owned: GPUBuffer[],
    private readonly bindings: { writes: Record<string, Range>; reads: Record<string, Range> },
    private readonly fixed: readonly string[] = [],
  ) {}

  /**
   * Throws unless the plan can be encoded now: device and plan alive, a real encoder. The bound
   * buffers need no second look: they were unmapped when the plan was made, and a STORAGE buffer
   * cannot be mapped again (MAP_READ/MAP_WRITE exclude STORAGE).
   */
  check(encoder: unknown): asserts encoder is GPUCommandEncoder {
    if (this.destroyed) throw new DestroyedError(`plan ${this.label} was destroyed; make a new one`);
    const lost = watchDevice(this.device).lost;
    if (lost) throw lostError(lost);
    checkEncoder(encoder);
  }

  /** The names an encode may bind elsewhere. */
  private rebindable(): string[] {
    const { writes, reads } = this.bindings;
    return Object.entries({ ...writes, ...reads })
      .filter(([name, r]) => !this.fixed.includes(name) && !isPlaceholder(r))
      .map(([name]) => name);
  }

  /**
   * The planned ranges that `tensors` binds elsewhere, each validated as when planning (usage,
   * alignment, size, no write shared with another binding, no module's state written); null when
   * nothing moves.
   */
  private swap(tensors: unknown): Map<Range, Range> | null {
    if (tensors === undefined) return null;
    const t = checkObject<Record<string, TensorArg>>(`${this.label}.encode tensors`, tensors);
    const names = this.rebindable();
    checkKeys(`${this.label}.encode`, t, names);
    const swap = new Map<Range, Range>();
    const bind = (side: Record<string, Range>) =>
      Object.fromEntries(
        Object.entries(side).map(([name, planned]) => {
          if (t[name] === undefined) return [name, planned];
          const r = bufferRange(this.device, name, t[name], planned.size);
          if (r.buffer !== planned.buffer || r.offset !== planned.offset) swap.set(planned, r);
          return [name, r];
        }),
      );
    const writes = bind(this.bindings.writes);
    const reads = bind(this.bindings.reads);
    if (!swap.size) return null;
    // Validated as a whole again: a buffer that moved may now meet another binding.
    checkSharing(writes, reads);
    checkNotModuleState(writes);
    return swap;
  }

  encode(encoder: GPUCommandEncoder, tensors?: T): void {
    this.check(encoder);
    const swap = this.swap(tensors);
    const pass = encoder.beginComputePass({ label: this.label });
    encodeDispatches(pass, this.dispatches, swap);
    pass.end();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.owned) b.destroy();
  }
}
