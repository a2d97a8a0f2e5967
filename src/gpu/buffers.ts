/** Checks on the caller's buffers, the per-device placeholder buffer, and readback. */
import { fromHalfArray } from '../cpu/f16';
import { BufferError, LimitError } from '../errors';
import type { BufferSlice } from './kernel';

/** A GPUBuffer, or a byte range of one. */
export type TensorArg = GPUBuffer | BufferSlice;

function isBuffer(t: unknown): t is GPUBuffer {
  return typeof t === 'object' && t !== null && 'mapState' in t && 'usage' in t && 'size' in t;
}

/**
 * Validates `arg` as a storage binding of exactly `bytes` bytes and returns that range. Refuses
 * missing buffers, missing STORAGE usage, misaligned offsets, short buffers and bindings beyond the
 * device's limit, each with a typed error that says how to fix the call.
 */
export function storageRange(device: GPUDevice, name: string, arg: TensorArg | undefined | null, bytes: number): Required<BufferSlice> {
  if (!arg) throw new BufferError('E_BUFFER_MISSING', `${name} is required: pass a GPUBuffer or { buffer, offset }`);
  const slice: BufferSlice = isBuffer(arg) ? { buffer: arg } : arg;
  if (!isBuffer(slice.buffer)) throw new BufferError('E_BUFFER_MISSING', `${name} must be a GPUBuffer or { buffer: GPUBuffer, offset?, size? }`);
  const { buffer } = slice;
  const offset = slice.offset ?? 0;
  const label = buffer.label ? ` ('${buffer.label}')` : '';
  if (!(buffer.usage & GPUBufferUsage.STORAGE)) {
    throw new BufferError('E_BUFFER_USAGE', `${name}${label} lacks GPUBufferUsage.STORAGE; create it with usage including STORAGE`);
  }
  const align = device.limits.minStorageBufferOffsetAlignment;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % align !== 0) {
    throw new BufferError('E_BUFFER_ALIGNMENT', `${name} offset ${offset} must be a non-negative multiple of minStorageBufferOffsetAlignment (${align} on this device)`);
  }
  const available = slice.size ?? buffer.size - offset;
  if (offset + available > buffer.size || available < bytes) {
    throw new BufferError('E_BUFFER_SIZE', `${name}${label} holds ${Math.max(0, Math.min(available, buffer.size - offset))} bytes from offset ${offset} but ${bytes} are needed; pass a larger buffer`);
  }
  const max = device.limits.maxStorageBufferBindingSize;
  if (bytes > max) {
    throw new LimitError(`${name} needs a ${bytes}-byte binding, above this device's maxStorageBufferBindingSize (${max}); request a device with a higher limit (requestBatchNormDevice does) or split the batch`);
  }
  return { buffer, offset, size: bytes };
}

type Range = Required<BufferSlice>;

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
        throw new BufferError('E_BUFFER_ALIAS', `${wn} and ${rn} are in the same GPUBuffer, but WebGPU forbids a dispatch to read a buffer it writes; pass ${wn} in a separate buffer (in-place operation is not supported)`);
      }
    }
  }
  for (let i = 0; i < w.length; i++) {
    for (let j = i + 1; j < w.length; j++) {
      const [an, a] = w[i], [bn, b] = w[j];
      if (a.buffer === b.buffer && a.offset < b.offset + b.size && b.offset < a.offset + a.size) {
        throw new BufferError('E_BUFFER_ALIAS', `${an} and ${bn} overlap in the same GPUBuffer; pass non-overlapping ranges`);
      }
    }
  }
}

const placeholders = new WeakMap<GPUDevice, GPUBuffer[]>();

/**
 * A 16-byte per-device buffer for a binding the kernel does not touch (gamma without affine, say).
 * Each role has its own buffer, since one dispatch may not read and write the same buffer.
 */
export function placeholder(device: GPUDevice, role: number): Range {
  let list = placeholders.get(device);
  if (!list) placeholders.set(device, (list = []));
  list[role] ??= device.createBuffer({ label: `bn.placeholder${role}`, size: 16, usage: GPUBufferUsage.STORAGE });
  return { buffer: list[role], offset: 0, size: 16 };
}

/** Copies a buffer range back to the CPU. */
export async function readFloats(device: GPUDevice, src: BufferSlice, count: number): Promise<Float32Array> {
  return new Float32Array(await readBytes(device, src, count * 4));
}

/** Reads `count` float16 values (binary16 bit patterns) from a GPU buffer range, as numbers. */
export async function readHalfs(device: GPUDevice, src: BufferSlice, count: number): Promise<Float64Array> {
  return fromHalfArray(new Uint16Array(await readBytes(device, src, Math.ceil(count / 2) * 4), 0, count));
}

async function readBytes(device: GPUDevice, src: BufferSlice, bytes: number): Promise<ArrayBuffer> {
  const size = Math.max(4, bytes);
  const staging = device.createBuffer({ label: 'bn.readback', size, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  const enc = device.createCommandEncoder({ label: 'bn.readback' });
  enc.copyBufferToBuffer(src.buffer, src.offset ?? 0, staging, 0, bytes);
  device.queue.submit([enc.finish({ label: 'bn.readback' })]);
  try {
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0, bytes);
  } finally {
    staging.destroy();
  }
}
