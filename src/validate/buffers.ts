/**
 * Checks of the GPU buffers a caller binds: usage, mapping, alignment, size and limits, no write
 * shared with another binding, no module's state overwritten. Plans run these when they are made,
 * and again for tensors bound at encode time.
 */
import { BufferError, LimitError, OptionError } from '../errors.js';
import type { BufferSlice } from '../gpu/kernel.js';

/** A GPUBuffer, or a byte range of one. */
export type TensorArg = GPUBuffer | BufferSlice;

/** A validated binding: buffer, offset and size all known. */
export type Range = Required<BufferSlice>;

/** A real GPUBuffer (where the WebGPU globals exist, as they must for the library to run at all). */
export function isBuffer(t: unknown): t is GPUBuffer {
  if (typeof GPUBuffer === 'function') return t instanceof GPUBuffer;
  return typeof t === 'object' && t !== null && 'mapState' in t && 'usage' in t && 'size' in t && 'destroy' in t;
}

/**
 * Validates `arg` as a storage binding of exactly `bytes` bytes and returns that range. Refuses
 * missing buffers, missing STORAGE usage, mapped buffers, misaligned offsets, short buffers and
 * bindings beyond the device's limit.
 */
export function bufferRange(device: GPUDevice, name: string, arg: TensorArg | undefined | null, bytes: number): Range {
  if (!arg) throw new BufferError('E_BUFFER_MISSING', `${name} is required: pass a GPUBuffer or { buffer, offset }`);
  const slice: BufferSlice = isBuffer(arg) ? { buffer: arg } : arg;
  if (!isBuffer(slice.buffer))
    throw new BufferError('E_BUFFER_MISSING', `${name} must be a GPUBuffer or { buffer: GPUBuffer, offset?, size? }`);
  const { buffer } = slice;
  const offset = slice.offset ?? 0;
  const label = buffer.label ? ` ('${buffer.label}')` : '';
  if (!(buffer.usage & GPUBufferUsage.STORAGE)) {
    throw new BufferError(
      'E_BUFFER_USAGE',
      `${name}${label} lacks GPUBufferUsage.STORAGE; create it with usage including STORAGE`,
    );
  }
  if (buffer.mapState !== 'unmapped') {
    throw new BufferError(
      'E_BUFFER_MAPPED',
      `${name}${label} is ${buffer.mapState === 'mapped' ? 'mapped' : 'being mapped'}; unmap it (buffer.unmap()) before the GPU may use it`,
    );
  }
  const align = device.limits.minStorageBufferOffsetAlignment;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % align !== 0) {
    throw new BufferError(
      'E_BUFFER_ALIGNMENT',
      `${name} offset ${String(offset)} must be a non-negative multiple of minStorageBufferOffsetAlignment (${align} on this device)`,
    );
  }
  const available = slice.size ?? buffer.size - offset;
  if (!Number.isSafeInteger(available) || available < 0 || offset + available > buffer.size || available < bytes) {
    throw new BufferError(
      'E_BUFFER_SIZE',
      `${name}${label} holds ${Math.max(0, Math.min(Number(available) || 0, buffer.size - offset))} bytes from offset ${offset} but ${bytes} are needed; pass a larger buffer`,
    );
  }
  const max = device.limits.maxStorageBufferBindingSize;
  if (bytes > max) {
    throw new LimitError(
      `${name} needs a ${bytes}-byte binding, above this device's maxStorageBufferBindingSize (${max}); request a device with a higher limit (requestBatchNormDevice does) or split the batch`,
    );
  }
  return { buffer, offset, size: bytes };
}

const overlap = (a: Range, b: Range) =>
  a.buffer === b.buffer && a.offset < b.offset + b.size && b.offset < a.offset + a.size;

/**
 * WebGPU synchronises storage access per buffer within a dispatch: a buffer that a dispatch writes
 * may not also be read by it, and written ranges may not overlap. Refuses both up front, with the
 * argument names, instead of letting the submission fail.
 */
export function checkSharing(writes: Record<string, Range>, reads: Record<string, Range>): void {
  const w = Object.entries(writes);
  for (const [wn, wr] of w) {
    for (const [rn, rr] of Object.entries(reads)) {
      if (wr.buffer === rr.buffer) {
        throw new BufferError(
          'E_BUFFER_ALIAS',
          `${wn} and ${rn} are in the same GPUBuffer, but WebGPU forbids a dispatch to read a buffer it writes; pass ${wn} in a separate buffer (in-place operation is not supported)`,
        );
      }
    }
  }
  for (let i = 0; i < w.length; i++) {
    for (let j = i + 1; j < w.length; j++) {
      const [an, a] = w[i],
        [bn, b] = w[j];
      if (overlap(a, b))
        throw new BufferError(
          'E_BUFFER_ALIAS',
          `${an} and ${bn} overlap in the same GPUBuffer; pass non-overlapping ranges`,
        );
    }
  }
}

/** Buffers that BatchNorm modules own, with the module's name. */
const moduleBuffers = new WeakMap<GPUBuffer, string>();

/** Marks `buffers` as state of the module `owner`: no caller's output may be bound to them. */
export function claimBuffers(owner: string, buffers: readonly GPUBuffer[]): void {
  for (const b of buffers) moduleBuffers.set(b, owner);
}

/**
 * Refuses bindings in a module's own buffers: `outputs` in any module's (writing them would
 * corrupt its state), and `all` in the module `self` (a step's tensors are never its own state).
 */
export function checkNotModuleState(
  outputs: Record<string, Range>,
  all: Record<string, Range> = {},
  self?: string,
): void {
  const check = (name: string, r: Range, only?: string) => {
    const owner = moduleBuffers.get(r.buffer);
    if (owner === undefined || (only !== undefined && owner !== only)) return;
    throw new BufferError(
      'E_BUFFER_ALIAS',
      `${name} is ${r.buffer.label || 'a buffer'}, state of the BatchNorm module ${owner}; binding it here would overwrite that state. Pass a buffer of your own`,
    );
  };
  for (const [name, r] of Object.entries(outputs)) check(name, r);
  if (self !== undefined) for (const [name, r] of Object.entries(all)) check(name, r, self);
}

/** Threads per workgroup for the kernels that take an override, within the device's limits. */
export function checkWorkgroupSize(device: GPUDevice, wg: unknown): number | undefined {
  if (wg === undefined) return undefined;
  const max = Math.min(device.limits.maxComputeWorkgroupSizeX, device.limits.maxComputeInvocationsPerWorkgroup);
  if (typeof wg !== 'number' || !Number.isSafeInteger(wg) || wg < 1 || wg > max)
    throw new OptionError(`workgroupSize must be an integer in [1, ${max}] on this device; got ${String(wg)}`);
  return wg;
}
