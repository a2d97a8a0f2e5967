/**
 * Typed errors. Every refusal is a `BatchNormError` subclass with a stable `code`, and its message
 * names the argument that was wrong and how to fix the call.
 */
export class BatchNormError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A tensor's rank or shape does not fit the layout, the module or another tensor. */
export class ShapeError extends BatchNormError {
  constructor(message: string) { super('E_SHAPE', message); }
}

/** The layout string is not one the library knows. */
export class LayoutError extends BatchNormError {
  constructor(message: string) { super('E_LAYOUT', message); }
}

/** An option (eps, momentum, rmax, ...) is out of range or not finite. */
export class OptionError extends BatchNormError {
  constructor(message: string) { super('E_OPTION', message); }
}

/** Training would compute statistics from fewer than two values per channel, or from none. */
export class BatchSizeError extends BatchNormError {
  constructor(message: string) { super('E_BATCH_SIZE', message); }
}

/** A GPUBuffer is too small, lacks a usage flag, or is bound at a misaligned offset. */
export class BufferError extends BatchNormError {
  constructor(code: 'E_BUFFER_SIZE' | 'E_BUFFER_USAGE' | 'E_BUFFER_ALIGNMENT' | 'E_BUFFER_MISSING' | 'E_BUFFER_ALIAS', message: string) {
    super(code, message);
  }
}

/** The tensor exceeds a limit of the device (binding size, workgroup count). */
export class LimitError extends BatchNormError {
  constructor(message: string) { super('E_LIMIT', message); }
}

/** A checkpoint passed to `loadStateDict` has missing, extra, mis-sized or non-finite entries. */
export class StateDictError extends BatchNormError {
  constructor(message: string) { super('E_STATE_DICT', message); }
}

/** The WebGPU implementation reported a validation or out-of-memory error for our commands. */
export class GpuError extends BatchNormError {
  constructor(message: string) { super('E_GPU', message); }
}

/** The GPUDevice was lost or destroyed; nothing further can run on it. */
export class DeviceLostError extends BatchNormError {
  constructor(message: string) { super('E_DEVICE_LOST', message); }
}

/** The module was destroyed; create a new one. */
export class DestroyedError extends BatchNormError {
  constructor(message: string) { super('E_DESTROYED', message); }
}

/** WebGPU is not available in this environment. */
export class UnsupportedError extends BatchNormError {
  constructor(message: string) { super('E_UNSUPPORTED', message); }
}

/** The call needs a device feature (e.g. 'shader-f16') that the device was not created with. */
export class FeatureError extends BatchNormError {
  constructor(message: string) { super('E_FEATURE', message); }
}
