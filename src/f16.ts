/**
 * IEEE binary16 conversion for float16 tensors: the CPU path rounds through it to mirror the GPU's
 * f16 storage, and callers use it to fill or read float16 GPUBuffers (Node 20 has no Float16Array).
 */
import { ShapeError } from './errors.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bits of the binary16 nearest to `v` (round to nearest, ties to even; overflow to ±Infinity). */
export function toHalfBits(v: number): number {
  f32[0] = v;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent is correct rounding
  return sign | h;
}

/** The number a binary16 bit pattern holds. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** `v` rounded to the nearest binary16 value. */
export function roundHalf(v: number): number {
  if (typeof v !== 'number') throw new ShapeError(`roundHalf takes a number; got ${typeof v}`);
  return fromHalfBits(toHalfBits(v));
}

/** An array or typed array (not a string, not array-like lookalikes with a huge `length`). */
function checkArray(name: string, v: unknown): ArrayLike<number> {
  if (!Array.isArray(v) && !(ArrayBuffer.isView(v) && !(v instanceof DataView))) {
    throw new ShapeError(`${name} takes an array or typed array of numbers; got ${v === null ? 'null' : typeof v}`);
  }
  return v as ArrayLike<number>;
}

/** binary16 bit patterns of `values`, for writing a float16 GPUBuffer. */
export function toHalfArray(values: ArrayLike<number>): Uint16Array {
  checkArray('toHalfArray', values);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]);
  return out;
}

/** The numbers in a float16 buffer's bit patterns. */
export function fromHalfArray(bits: ArrayLike<number>): Float64Array {
  checkArray('fromHalfArray', bits);
  const out = new Float64Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fromHalfBits(bits[i]);
  return out;
}
