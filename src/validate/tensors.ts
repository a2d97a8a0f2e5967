/**
 * Checks of a GPU call's device, encoder and tensors: the device alive and real, dtype against its
 * features, the geometry, the optional bindings of the epilogues and of γ/β, the ghost split of a
 * batch, a synchronized shard's batch and the merged values it is given. GPU side: the float64 CPU
 * path makes its own checks of the same rules.
 */
import { BatchSizeError, FeatureError, LimitError, OptionError, UnsupportedError } from '../errors.js';
import { lostError, watchDevice } from '../device.js';
import { placeholder } from '../gpu/buffers.js';
import { geometry, type Geometry, type Layout } from '../layout.js';
import type { Epilogue } from '../options.js';
import { describe } from './args.js';
import { bufferRange, type Range, type TensorArg } from './buffers.js';

/** A GPUDevice, or an OptionError: every entry point checks this first. */
export function checkDevice(device: unknown): asserts device is GPUDevice {
  if (
    typeof device !== 'object' ||
    device === null ||
    typeof (device as GPUDevice).createBuffer !== 'function' ||
    typeof (device as GPUDevice).limits !== 'object'
  ) {
    throw new OptionError(
      `device must be a GPUDevice (from requestBatchNormDevice() or adapter.requestDevice()); got ${describe(device)}`,
    );
  }
  // Node has no WebGPU globals until the `webgpu` package's are installed; without them the first
  // buffer usage flag would be a ReferenceError.
  if (typeof GPUBufferUsage === 'undefined')
    throw new UnsupportedError(
      "the WebGPU globals (GPUBufferUsage, GPUMapMode, ...) are not defined here: in Node, import { globals } from 'webgpu' and Object.assign(globalThis, globals) before using the library",
    );
  const lost = watchDevice(device as GPUDevice).lost;
  if (lost) throw lostError(lost);
}

/** The float16 storage a module or call asks for is possible on this device. */
export function checkDtypeFeature(device: GPUDevice, dtype: unknown): void {
  if (dtype === 'float16' && !device.features.has('shader-f16')) {
    throw new FeatureError(
      "dtype 'float16' needs the device feature 'shader-f16', which this device was not created with; request it (requestBatchNormDevice({ optionalFeatures: ['shader-f16'] })) on an adapter that has it, or use float32",
    );
  }
}

/** A GPUCommandEncoder, or an OptionError. */
export function checkEncoder(encoder: unknown): asserts encoder is GPUCommandEncoder {
  const real =
    typeof GPUCommandEncoder === 'function'
      ? encoder instanceof GPUCommandEncoder
      : typeof (encoder as GPUCommandEncoder)?.beginComputePass === 'function';
  if (typeof encoder !== 'object' || encoder === null || !real) {
    throw new OptionError(
      `encoder must be a GPUCommandEncoder (device.createCommandEncoder()); got ${describe(encoder)}`,
    );
  }
}

/** The geometry of a call's tensors in storage, after checking dtype against the device. */
export function tensorGeometry(device: GPUDevice, layout: unknown, shape: unknown, dtype: unknown): Geometry {
  if (dtype !== undefined && dtype !== 'float32' && dtype !== 'float16')
    throw new OptionError(`dtype must be 'float32' or 'float16'; got ${describe(dtype)}`);
  checkDtypeFeature(device, dtype);
  return geometry(layout as Layout | undefined, shape as number[], dtype === 'float16' ? 'f16' : 'f32');
}

/** Bytes of a tensor binding of geometry `g` (float16 rounded up to 4). */
export const tensorBytes = (g: Geometry): number => (g.dtype === 'f16' ? Math.ceil(g.count / 2) * 4 : g.count * 4);

/** A workspace of `bytes` fits this device (checked before a plan allocates its own). */
export function checkWorkspaceLimit(device: GPUDevice, bytes: number): void {
  const { maxBufferSize, maxStorageBufferBindingSize } = device.limits;
  if (bytes > Math.min(maxBufferSize, maxStorageBufferBindingSize)) {
    throw new LimitError(
      `the reductions need a ${bytes}-byte workspace, above this device's maxBufferSize (${maxBufferSize}) or maxStorageBufferBindingSize (${maxStorageBufferBindingSize}); split the batch`,
    );
  }
}

/** gamma and beta, both or neither; placeholders (roles 0, 1) without affine. */
export function affineRanges(device: GPUDevice, C: number, weight: unknown, bias: unknown) {
  if ((weight === undefined) !== (bias === undefined))
    throw new OptionError('pass weight and bias together (affine), or neither');
  if (weight === undefined) return { affine: false, gamma: placeholder(device, 0), beta: placeholder(device, 1) };
  return {
    affine: true,
    gamma: bufferRange(device, 'weight', weight as TensorArg, C * 4),
    beta: bufferRange(device, 'bias', bias as TensorArg, C * 4),
  };
}

/**
 * The residual binding of a forward: z for 'add_relu' (required), a placeholder otherwise (where
 * z is refused: it would be silently ignored).
 */
export function residualRange(device: GPUDevice, epilogue: Epilogue | null, z: unknown, bytes: number): Range {
  if (epilogue === 'add_relu') return bufferRange(device, 'z', z as TensorArg, bytes);
  if (z !== undefined)
    throw new OptionError(`z is the residual of epilogue 'add_relu'; this call's epilogue is ${epilogue ?? 'none'}`);
  return placeholder(device, 6);
}

/**
 * The epilogue's bindings of a backward: the forward's output y (required with an epilogue) and
 * dz (required with 'add_relu', refused otherwise); placeholders where there is no epilogue.
 */
export function epilogueGradRanges(
  device: GPUDevice,
  epilogue: Epilogue | null,
  y: unknown,
  dz: unknown,
  bytes: number,
): { y: Range; dz: Range } {
  if (!epilogue && y !== undefined)
    throw new OptionError('y (the forward output) is read by backward only with an epilogue, to mask dy');
  if (epilogue !== 'add_relu' && dz !== undefined)
    throw new OptionError(
      `dz is the residual's gradient of epilogue 'add_relu'; this call's epilogue is ${epilogue ?? 'none'}`,
    );
  return {
    y: epilogue ? bufferRange(device, 'y', y as TensorArg, bytes) : placeholder(device, 6),
    dz: epilogue === 'add_relu' ? bufferRange(device, 'dz', dz as TensorArg, bytes) : placeholder(device, 7),
  };
}

/** A positive virtualBatchSize that divides N, as a ghost count (1 without one). */
export function ghostCount(k: unknown, g: Geometry): number {
  if (k === undefined) return 1;
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1)
    throw new OptionError(`virtualBatchSize must be a positive integer; got ${describe(k)}`);
  const N = g.shape[0];
  if (N % k !== 0)
    throw new BatchSizeError(
      `virtualBatchSize ${k} must divide the batch: shape ${JSON.stringify(g.shape)} has N = ${N}; pass N = a multiple of ${k}`,
    );
  return N / k;
}

/** Batch statistics need more than one value per channel (in each ghost batch). */
export function checkBatchValues(g: Geometry, ghosts: number, what: string): void {
  const M = g.M / ghosts;
  if (M < 2)
    throw new BatchSizeError(
      `${what} needs more than one value per channel; shape ${JSON.stringify(g.shape)} gives M = ${M}${ghosts > 1 ? ' in each ghost batch' : ''}. Use a larger batch, or inference mode.`,
    );
}
