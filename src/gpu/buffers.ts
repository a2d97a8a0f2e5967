/** The per-device placeholder buffers, and reading buffers back to the host. */
import { fromHalfArray } from '../f16.js';
import { BufferError, OptionError } from '../errors.js';
import type { TensorDtype } from '../layout.js';
import { describe } from '../validate/args.js';
import { isBuffer, type Range } from '../validate/buffers.js';
import type { BufferSlice } from './kernel.js';

const placeholders = new WeakMap<GPUDevice, GPUBuffer[]>();
const placeholderBuffers = new WeakSet<GPUBuffer>();

/**
 * A per-device buffer for a binding the kernel does not touch (gamma without affine, say): 16
 * bytes, or `bytes` where the binding's struct needs more. Each role has its own buffer, since one
 * dispatch may not read and write the same buffer.
 */
export function placeholder(device: GPUDevice, role: number, bytes = 16): Range {
  let list = placeholders.get(device);
  if (!list) placeholders.set(device, (list = []));
  if (!list[role]) {
    list[role] = device.createBuffer({ label: `bn.placeholder${role}`, size: bytes, usage: GPUBufferUsage.STORAGE });
    placeholderBuffers.add(list[role]);
  }
  return { buffer: list[role], offset: 0, size: list[role].size };
}

/** True for a placeholder's range: a binding the call did not pass. */
export const isPlaceholder = (r: Range): boolean => placeholderBuffers.has(r.buffer);

/** Copies `bytes` bytes of a buffer range back to the host (through a staging buffer it destroys). */
async function readBytes(device: GPUDevice, src: BufferSlice, bytes: number): Promise<ArrayBuffer> {
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const staging = device.createBuffer({
    label: 'bn.readback',
    size,
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
  });
  try {
    const enc = device.createCommandEncoder({ label: 'bn.readback' });
    enc.copyBufferToBuffer(src.buffer, src.offset ?? 0, staging, 0, size);
    device.queue.submit([enc.finish({ label: 'bn.readback' })]);
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0, bytes);
  } finally {
    staging.destroy();
  }
}

/** Reads `count` float32 values from a buffer range. */
export async function readFloats(device: GPUDevice, src: BufferSlice, count: number): Promise<Float32Array> {
  return new Float32Array(await readBytes(device, src, count * 4));
}

/** Reads `count` float16 values (binary16 bit patterns) from a buffer range, as numbers. */
export async function readHalfs(device: GPUDevice, src: BufferSlice, count: number): Promise<Float64Array> {
  return fromHalfArray(new Uint16Array(await readBytes(device, src, Math.ceil(count / 2) * 4), 0, count));
}

/**
 * Reads a tensor or parameter buffer back to the host: `count` values (default: the whole range)
 * of `dtype` (default float32; float16 values come back as numbers in a Float64Array). The buffer
 * needs COPY_SRC usage. Everything queued before the call is done before the values are read.
 */
export async function readBuffer(
  device: GPUDevice,
  src: GPUBuffer | BufferSlice,
  count?: number,
  dtype: TensorDtype = 'float32',
): Promise<Float32Array | Float64Array> {
  const slice: BufferSlice = isBuffer(src) ? { buffer: src } : src;
  if (!slice || !isBuffer(slice.buffer))
    throw new BufferError(
      'E_BUFFER_MISSING',
      `readBuffer needs a GPUBuffer or { buffer, offset }; got ${describe(src)}`,
    );
  if (!(slice.buffer.usage & GPUBufferUsage.COPY_SRC))
    throw new BufferError(
      'E_BUFFER_USAGE',
      `readBuffer: ${slice.buffer.label || 'the buffer'} lacks GPUBufferUsage.COPY_SRC; create it with COPY_SRC to read it back`,
    );
  if (slice.buffer.mapState !== 'unmapped')
    throw new BufferError(
      'E_BUFFER_MAPPED',
      `readBuffer: ${slice.buffer.label || 'the buffer'} is ${slice.buffer.mapState === 'mapped' ? 'mapped' : 'being mapped'}; unmap it first`,
    );
  const offset = slice.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % 4 !== 0)
    throw new BufferError(
      'E_BUFFER_ALIGNMENT',
      `readBuffer: offset ${String(offset)} must be a non-negative multiple of 4`,
    );
  if (dtype !== 'float32' && dtype !== 'float16')
    throw new OptionError(`readBuffer: dtype must be 'float32' or 'float16'; got ${describe(dtype)}`);
  const unit = dtype === 'float16' ? 2 : 4;
  const available = Math.floor((slice.size ?? slice.buffer.size - offset) / unit);
  const n = count ?? available;
  if (
    !Number.isSafeInteger(n) ||
    n < 0 ||
    n > available ||
    offset + Math.ceil((n * unit) / 4) * 4 > slice.buffer.size
  ) {
    throw new BufferError(
      'E_BUFFER_SIZE',
      `readBuffer: ${String(count)} values of ${dtype} do not fit in the ${available} the range holds`,
    );
  }
  return dtype === 'float16'
    ? readHalfs(device, { buffer: slice.buffer, offset }, n)
    : readFloats(device, { buffer: slice.buffer, offset }, n);
}
