/**
 * Moving NCHW-ordered host data (the vectors' order) into a layout and back: what the conformance
 * runner and the tests do to feed one case to every layout. The kernels never transpose.
 */
import { LayoutError, ShapeError } from '../errors.js';
import { channelsLast, geometry, isLayout, safeJson, type Geometry, type Layout } from '../layout.js';

/** The NCHW-ordered shape [N, C, ...spatial] of a tensor given in `layout`. */
export function channelsFirstShape(g: Geometry): number[] {
  return g.channelsLast ? [g.shape[0], g.C, ...g.shape.slice(1, -1)] : [...g.shape];
}

/** The shape that holds the same [N, C, ...spatial] tensor in `layout`. */
export function shapeInLayout(nchwShape: readonly number[], layout: Layout): number[] {
  geometry('NCHW', nchwShape);
  if (!isLayout(layout))
    throw new LayoutError(
      `layout ${safeJson(layout)} is not supported; use one of NCHW, NHWC, NC, NCL, NLC, NCDHW, NDHWC`,
    );
  const [n, c, ...spatial] = nchwShape;
  return channelsLast(layout) ? [n, ...spatial, c] : [...nchwShape];
}

/**
 * Reorders a channels-first array ([N, C, S]) into `layout` order, or back with `inverse`.
 * Used by tests and the conformance runner; the kernels never transpose.
 */
export function permute<T extends ArrayLike<number>>(
  data: T,
  nchwShape: readonly number[],
  layout: Layout,
  inverse = false,
): Float64Array {
  const g = geometry('NCHW', nchwShape);
  if (!isLayout(layout))
    throw new LayoutError(
      `layout ${safeJson(layout)} is not supported; use one of NCHW, NHWC, NC, NCL, NLC, NCDHW, NDHWC`,
    );
  const ok = Array.isArray(data) || (ArrayBuffer.isView(data) && !(data instanceof DataView));
  if (!ok || data.length !== g.count) {
    throw new ShapeError(
      `permute: data must be an array of ${g.count} numbers for shape ${safeJson(nchwShape)}; got ${ok ? `${data.length} values` : typeof data}`,
    );
  }
  const [n, c] = nchwShape;
  const s = nchwShape.slice(2).reduce((a, b) => a * b, 1);
  const out = new Float64Array(data.length);
  if (!channelsLast(layout)) {
    out.set(data);
    return out;
  }
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < s; i++) {
        const first = (b * c + ch) * s + i;
        const last = (b * s + i) * c + ch;
        if (inverse) out[first] = data[last];
        else out[last] = data[first];
      }
    }
  }
  return out;
}
