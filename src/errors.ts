/**
 * Typed errors. Every refusal is a `BatchNormError` subclass with a stable `code`, and its message
 * names the argument that was wrong and how to fix the call. Each class names itself, so `name`
 * survives any minifier.
 */
export class BatchNormError extends Error {
  override readonly name: string = 'BatchNormError';
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** A tensor's rank or shape does not fit the layout, the module or another tensor. */
export class ShapeError extends BatchNormError {
  override readonly name = 'ShapeError';
  constructor(message: string) {
    super('E_SHAPE', message);
  }
}

/** The layout is unknown, or missing where the shape could be read both ways. */
export class LayoutError extends BatchNormError {
  override readonly name = 'LayoutError';
  constructor(message: string) {
    super('E_LAYOUT', message);
  }
}

/** An option (eps, momentum, rmax, ...) has the wrong type, is out of range or is not finite. */
export class OptionError extends BatchNormError {
  override readonly name = 'OptionError';
  constructor(message: string) {
    super('E_OPTION', message);
  }
}

/** Training would compute statistics from fewer than two values per channel, or from none. */
export class BatchSizeError extends BatchNormError {
  override readonly name = 'BatchSizeError';
  constructor(message: string) {
    super('E_BATCH_SIZE', message);
  }
}

export type BufferErrorCode =
  'E_BUFFER_SIZE' | 'E_BUFFER_USAGE' | 'E_BUFFER_ALIGNMENT' | 'E_BUFFER_MISSING' | 'E_BUFFER_ALIAS' | 'E_BUFFER_MAPPED';

/** A GPUBuffer is missing, too small, lacks a usage flag, is mapped, misaligned, or overlaps another binding. */
export class BufferError extends BatchNormError {
  override readonly name = 'BufferError';
  declare readonly code: BufferErrorCode;
  constructor(code: BufferErrorCode, message: string) {
    super(code, message);
  }
}

/** The tensor exceeds a limit of the device (binding size, buffer size, workgroup count). */
export class LimitError extends BatchNormError {
  override readonly name = 'LimitError';
  constructor(message: string) {
    super('E_LIMIT', message);
  }
}

/** A checkpoint passed to `loadStateDict` has missing, extra, mistyped, mis-sized or non-finite entries. */
export class StateDictError extends BatchNormError {
  override readonly name = 'StateDictError';
  constructor(message: string) {
    super('E_STATE_DICT', message);
  }
}

export type CallOrderCode = 'E_NO_FORWARD' | 'E_INPUT_MISMATCH';

/**
 * Backward without a forward to differentiate (E_NO_FORWARD), or with an x that is not the
 * forward's input (E_INPUT_MISMATCH).
 */
export class CallOrderError extends BatchNormError {
  override readonly name = 'CallOrderError';
  declare readonly code: CallOrderCode;
  constructor(code: CallOrderCode, message: string) {
    super(code, message);
  }
}

/** The WebGPU implementation reported a validation or out-of-memory error for our commands. */
export class GpuError extends BatchNormError {
  override readonly name = 'GpuError';
  constructor(message: string) {
    super('E_GPU', message);
  }
}

/** The GPUDevice was lost or destroyed; nothing further can run on it. */
export class DeviceLostError extends BatchNormError {
  override readonly name = 'DeviceLostError';
  constructor(message: string) {
    super('E_DEVICE_LOST', message);
  }
}

/** The module (or plan) was destroyed; create a new one. */
export class DestroyedError extends BatchNormError {
  override readonly name = 'DestroyedError';
  constructor(message: string) {
    super('E_DESTROYED', message);
  }
}

/** WebGPU is not available in this environment. */
export class UnsupportedError extends BatchNormError {
  override readonly name = 'UnsupportedError';
  constructor(message: string) {
    super('E_UNSUPPORTED', message);
  }
}

/** The call needs a device feature (e.g. 'shader-f16') that the device was not created with. */
export class FeatureError extends BatchNormError {
  override readonly name = 'FeatureError';
  constructor(message: string) {
    super('E_FEATURE', message);
  }
}
