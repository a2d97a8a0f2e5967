/** The golden-file format of `conformance/README.md`, and error measurement against it. */

export type GoldenNumber = number | 'NaN' | 'Infinity' | '-Infinity';

export interface GoldenStep {
  training: boolean;
  x: GoldenNumber[];
  dy?: GoldenNumber[];
  y?: GoldenNumber[];
  dx?: GoldenNumber[];
  dgamma?: GoldenNumber[];
  dbeta?: GoldenNumber[];
  running_mean?: GoldenNumber[];
  running_var?: GoldenNumber[];
  running_std?: GoldenNumber[];
  r?: GoldenNumber[];
  d?: GoldenNumber[];
  expect_error?: boolean;
  skip_outputs?: boolean;
  /** add_relu: the residual (shaped like x) and its expected gradient. */
  z?: GoldenNumber[];
  dz?: GoldenNumber[];
}

export interface GoldenCase {
  name: string;
  op: 'batch_norm' | 'batch_renorm';
  layout: 'NCHW';
  shape: number[];
  momentum: number | null;
  eps: number;
  affine?: boolean;
  gamma: GoldenNumber[] | null;
  beta: GoldenNumber[] | null;
  running_mean_init: GoldenNumber[];
  running_var_init?: GoldenNumber[];
  running_std_init?: GoldenNumber[];
  rmax?: number;
  dmax?: number;
  expect_error?: string;
  /** Extension fields (conformance/README.md). */
  epilogue?: 'relu' | 'add_relu';
  virtual_batch_size?: number;
  per_activation?: boolean;
  shards?: number;
  steps: GoldenStep[];
}

export interface GoldenFile {
  generator?: string;
  set?: string;
  cases: GoldenCase[];
}

export function decode(a: readonly GoldenNumber[]): Float64Array {
  return Float64Array.from(a, (v) => (typeof v === 'number' ? v : Number(v)));
}

export function encode(a: ArrayLike<number>): GoldenNumber[] {
  return Array.from(a, (v) => (Number.isFinite(v) ? v : (String(v) as GoldenNumber)));
}

/**
 * Largest error of `got` against `expected`, relative to the array's scale:
 * max|got - exp| / max(1, max|exp|). Non-finite expected values must be matched exactly (NaN by
 * NaN); a mismatch there, or a length mismatch, is reported as Infinity.
 */
export function scaledError(got: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (got.length !== expected.length) return Infinity;
  let scale = 1,
    err = 0;
  for (let i = 0; i < expected.length; i++)
    if (Number.isFinite(expected[i])) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i],
      g = got[i];
    if (!Number.isFinite(e)) {
      if (!(Object.is(e, g) || (Number.isNaN(e) && Number.isNaN(g)))) return Infinity;
    } else if (!Number.isFinite(g)) {
      return Infinity;
    } else {
      err = Math.max(err, Math.abs(g - e));
    }
  }
  return err / scale;
}
