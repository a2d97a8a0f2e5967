/**
 * Layouts and the [outer, C, inner] view that every kernel works on.
 *
 * Any supported tensor is a row-major [outer, C, inner] block: channels-first shapes
 * ([N,C], [N,C,L], [N,C,H,W], [N,C,D,H,W]) have outer = N and inner = the spatial size;
 * channels-last shapes ([N,L,C], [N,H,W,C], [N,D,H,W,C]) have outer = N·spatial and inner = 1.
 * The statistics of channel c are taken over the M = outer·inner values of that channel.
 */
import { BatchSizeError, LayoutError, ShapeError } from './errors.js';

/** `NCHW`/`NHWC` name the channels-first/-last family for ranks 2 to 5; the others fix the rank. */
export type Layout = 'NCHW' | 'NHWC' | 'NC' | 'NCL' | 'NLC' | 'NCDHW' | 'NDHWC';

const LAYOUTS: Record<Layout, { channelsLast: boolean; rank?: number }> = {
  NCHW: { channelsLast: false },
  NHWC: { channelsLast: true },
  NC: { channelsLast: false, rank: 2 },
  NCL: { channelsLast: false, rank: 3 },
  NLC: { channelsLast: true, rank: 3 },
  NCDHW: { channelsLast: false, rank: 5 },
  NDHWC: { channelsLast: true, rank: 5 },
};

/** Storage type of a tensor's elements; arithmetic is f32 (GPU) or f64 (CPU) either way. */
export type StorageType = 'f32' | 'f16';

/** Element type of x, y, dy and dx in the public API; parameters and statistics are float32 always. */
export type TensorDtype = 'float32' | 'float16';

export interface Geometry {
  readonly layout: Layout;
  /** Element type in storage: 'f32', or 'f16' for the GPU path's float16 tensors. */
  readonly dtype: StorageType;
  readonly shape: readonly number[];
  readonly channelsLast: boolean;
  /** Number of channels (features). */
  readonly C: number;
  /** Blocks before the channel axis in the [outer, C, inner] view. */
  readonly outer: number;
  /** Contiguous run after the channel axis (1 for channels-last). */
  readonly inner: number;
  /** Values per channel: outer·inner. */
  readonly M: number;
  /** Total elements: M·C. */
  readonly count: number;
}

/** Whether `layout` keeps channels last. */
export const channelsLast = (layout: Layout): boolean => LAYOUTS[layout].channelsLast;

export function isLayout(layout: unknown): layout is Layout {
  return typeof layout === 'string' && Object.prototype.hasOwnProperty.call(LAYOUTS, layout);
}

/**
 * Validates `shape` for `layout` and returns its [outer, C, inner] view of `dtype` elements. A
 * layout may be left out only for [N, C], the one rank that reads the same channels-first and
 * channels-last; for rank 3 to 5 the caller says which it is (a wrong guess would be silent).
 */
export function geometry(layout: Layout | undefined, shape: readonly number[], dtype: StorageType = 'f32'): Geometry {
  if (!Array.isArray(shape) || shape.length < 2 || shape.length > 5) {
    throw new ShapeError(
      `shape ${safeJson(shape)} must be an array of rank 2 to 5 ([N,C] up to [N,C,D,H,W]); got ${Array.isArray(shape) ? `rank ${shape.length}` : typeof shape}`,
    );
  }
  if (layout === undefined) {
    if (shape.length !== 2) {
      throw new LayoutError(
        `shape ${safeJson(shape)} can be read channels-first or channels-last; pass layout 'NCHW' or 'NHWC' (or a fixed-rank name such as '${shape.length === 3 ? 'NCL' : 'NCDHW'}')`,
      );
    }
    layout = 'NC';
  }
  if (!isLayout(layout)) {
    throw new LayoutError(`layout ${safeJson(layout)} is not supported; use one of ${Object.keys(LAYOUTS).join(', ')}`);
  }
  const spec = LAYOUTS[layout];
  if (spec.rank !== undefined && shape.length !== spec.rank) {
    throw new ShapeError(`layout ${layout} needs a rank-${spec.rank} shape; got ${safeJson(shape)}`);
  }
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new ShapeError(`shape ${safeJson(shape)} must hold non-negative integers`);
    }
  }
  if (shape[0] === 0)
    throw new BatchSizeError(`shape ${safeJson(shape)} is an empty batch (N = 0); pass at least one sample`);
  if (shape.includes(0))
    throw new ShapeError(`shape ${safeJson(shape)} has a zero dimension; every dimension must be at least 1`);
  const channelsLast = spec.channelsLast;
  const C = channelsLast ? shape[shape.length - 1] : shape[1];
  const spatial = channelsLast ? shape.slice(1, -1) : shape.slice(2);
  const S = spatial.reduce((a, b) => a * b, 1);
  const outer = channelsLast ? shape[0] * S : shape[0];
  const inner = channelsLast ? 1 : S;
  const M = outer * inner;
  if (!Number.isSafeInteger(M * C))
    throw new ShapeError(`shape ${safeJson(shape)} has more elements than a number can count exactly`);
  return { layout, dtype, shape: [...shape], channelsLast, C, outer, inner, M, count: M * C };
}

/** JSON for a message, or String() where JSON has none (a Symbol, a BigInt, a cycle). */
export function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
