/**
 * Checks of plain arguments, shared by every entry point (GPU and CPU alike): objects, keys,
 * booleans, numbers in range. Each refusal is an OptionError that names the argument and the fix.
 */
import { OptionError } from '../errors.js';
import { safeJson } from '../layout.js';

/** Largest float32: values bound for the GPU must stay below it to stay finite. */
export const F32_MAX = 3.4028234663852886e38;

/** Smallest normal float32: GPUs may flush smaller (subnormal) values to zero. */
export const F32_MIN_NORMAL = 2 ** -126;

/** eps: a finite number the GPU holds as a normal f32 (a flushed eps would make a constant channel divide by zero). */
export function checkEps(eps: unknown): number {
  if (typeof eps !== 'number' || !Number.isFinite(eps) || !(eps >= F32_MIN_NORMAL) || eps > 3.4e38) {
    throw new OptionError(
      `eps must be a finite number from 1.2e-38 (float32's smallest normal number; GPUs flush smaller ones to zero) up; got ${String(eps)}. Pass e.g. 1e-5.`,
    );
  }
  return eps;
}

/** A plain object (or undefined), never an array, function or primitive. */
export function checkObject<T extends object>(name: string, v: unknown): Partial<T> {
  if (v === undefined) return {};
  if (
    typeof v !== 'object' ||
    v === null ||
    Array.isArray(v) ||
    (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null)
  ) {
    throw new OptionError(`${name} must be a plain object ({ ... }) or left out; got ${describe(v)}`);
  }
  return v as Partial<T>;
}

/** Refuses keys of `obj` outside `known`: `${what} has unknown ${noun} 'k'; it takes ...`. */
export function checkKeys(what: string, obj: object, known: readonly string[], noun = 'key'): void {
  for (const k of Object.keys(obj))
    if (!known.includes(k)) throw new OptionError(`${what} has unknown ${noun} '${k}'; it takes ${known.join(', ')}`);
}

/** A short description of a value for a message. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${safeJson(v)}`;
}

export function finite(name: string, v: unknown, fix: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > F32_MAX) {
    throw new OptionError(`${name} must be a finite number that float32 can hold; got ${describe(v)}. ${fix}`);
  }
  return v;
}

/** A number in [0, 1]. */
export function checkUnit(name: string, v: unknown, what: string): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1))
    throw new OptionError(`${name} must be a number in [0, 1] (${what}); got ${String(v)}`);
  return v;
}

export function checkBoolean(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new OptionError(`${name} must be true or false; got ${safeJson(v)}`);
  return v;
}

/** A positive safe integer. */
export function checkPositiveInteger(name: string, v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new OptionError(`${name} must be a positive integer (${what}); got ${describe(v)}`);
  return v;
}
