/** Getting a device whose limits fit large tensors, and watching it for loss. */
import { DeviceLostError, GpuError, OptionError, UnsupportedError } from './errors.js';
import { checkObject, describe } from './validate/args.js';

export interface DeviceRequest {
  /** Passed to requestAdapter; default high-performance. */
  powerPreference?: GPUPowerPreference;
  /** Extra features to request when the adapter has them (e.g. 'shader-f16'). */
  optionalFeatures?: GPUFeatureName[];
  /** Defaults to navigator.gpu; pass the `webgpu` package's GPU object in Node. */
  gpu?: GPU;
}

/**
 * Requests an adapter and a device with the adapter's largest storage-binding and buffer limits,
 * so tensors above the 128 MiB default fit. Throws UnsupportedError where WebGPU is missing.
 */
export async function requestBatchNormDevice(options: DeviceRequest = {}): Promise<GPUDevice> {
  const o = checkObject<DeviceRequest>('requestBatchNormDevice options', options);
  for (const k of Object.keys(o)) {
    if (!['powerPreference', 'optionalFeatures', 'gpu'].includes(k))
      throw new OptionError(
        `requestBatchNormDevice has no option '${k}'; it takes powerPreference, optionalFeatures, gpu`,
      );
  }
  if (
    o.powerPreference !== undefined &&
    o.powerPreference !== 'high-performance' &&
    o.powerPreference !== 'low-power'
  ) {
    throw new OptionError(
      `powerPreference must be 'high-performance' or 'low-power'; got ${describe(o.powerPreference)}`,
    );
  }
  if (
    o.optionalFeatures !== undefined &&
    (!Array.isArray(o.optionalFeatures) || o.optionalFeatures.some((f) => typeof f !== 'string'))
  ) {
    throw new OptionError(`optionalFeatures must be an array of feature names; got ${describe(o.optionalFeatures)}`);
  }
  if (
    o.gpu !== undefined &&
    (typeof o.gpu !== 'object' || o.gpu === null || typeof (o.gpu as GPU).requestAdapter !== 'function')
  ) {
    throw new OptionError(
      `gpu must be a GPU object (navigator.gpu, or the webgpu package's create([])); got ${describe(o.gpu)}`,
    );
  }
  const gpu = o.gpu ?? (typeof navigator !== 'undefined' ? navigator.gpu : undefined);
  if (!gpu)
    throw new UnsupportedError(
      "WebGPU is not available here (navigator.gpu is undefined); use a browser with WebGPU enabled, or pass the Node `webgpu` package's GPU as { gpu }",
    );
  const adapter = await gpu.requestAdapter({ powerPreference: o.powerPreference ?? 'high-performance' });
  if (!adapter)
    throw new UnsupportedError('requestAdapter() returned null: no WebGPU adapter is available on this system');
  const l = adapter.limits;
  const requiredFeatures = (o.optionalFeatures ?? []).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    label: 'webgpu-batchnorm',
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
  });
  keepAlive.set(device, gpu);
  return device;
}

/**
 * dawn.node (the `webgpu` package) frees its Dawn instance when the GPU object from create() is
 * garbage-collected, yet devices made from it keep pumping events through that instance: a
 * use-after-free that kills the process (docs/node-runtime.md). Each device made here keeps its GPU
 * object reachable for as long as the device is.
 */
const keepAlive = new WeakMap<GPUDevice, GPU>();

interface Watch {
  lost: GPUDeviceLostInfo | null;
  waiters: Set<(info: GPUDeviceLostInfo) => void>;
}
const watches = new WeakMap<GPUDevice, Watch>();

/** Records a device's loss once, for every module on it, and tells whoever waits. */
export function watchDevice(device: GPUDevice): Watch {
  let w = watches.get(device);
  if (!w) {
    const watch: Watch = { lost: null, waiters: new Set() };
    device.lost.then((info) => {
      watch.lost = info;
      for (const f of watch.waiters) f(info);
      watch.waiters.clear();
    });
    watches.set(device, (w = watch));
  }
  return w;
}

/**
 * A promise that rejects with DeviceLostError if the device is lost before `done` is called.
 * Racing each call against device.lost itself would leave one reaction per call on that
 * long-pending promise, a leak in a long training loop; a waiter is removed when its call ends.
 */
function untilLost(w: Watch): { promise: Promise<never>; done: () => void } {
  let fail!: (info: GPUDeviceLostInfo) => void;
  const promise = new Promise<never>((_, reject) => {
    fail = (info) => reject(lostError(info));
  });
  promise.catch(() => {}); // only raced
  if (w.lost) fail(w.lost);
  else w.waiters.add(fail);
  return {
    promise,
    done: () => {
      w.waiters.delete(fail);
    },
  };
}

export function lostError(info: GPUDeviceLostInfo): DeviceLostError {
  return new DeviceLostError(
    `the GPUDevice was lost (${info.reason}${info.message ? ': ' + info.message : ''}); create a new device and new modules, then load their state`,
  );
}

/**
 * Submits `encode`'s commands inside validation and out-of-memory error scopes and resolves once
 * the GPU has run them. Rejects with GpuError for an error the implementation reported, and with
 * DeviceLostError if the device is lost first, never hangs on a lost device.
 */
export async function submitChecked(
  device: GPUDevice,
  label: string,
  encode: (e: GPUCommandEncoder) => void,
): Promise<void> {
  const w = watchDevice(device);
  if (w.lost) throw lostError(w.lost);
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let refused: unknown = null;
  try {
    const encoder = device.createCommandEncoder({ label });
    encode(encoder);
    device.queue.submit([encoder.finish({ label })]);
  } catch (e) {
    refused = e;
  }
  await settle(device, label, w, refused);
}

async function settle(device: GPUDevice, label: string, w: Watch, refused: unknown): Promise<void> {
  const lost = untilLost(w);
  try {
    // The scopes are popped whatever happened, so a refusal never leaves them unbalanced.
    const [validation, oom] = await Promise.race([
      Promise.all([device.popErrorScope(), device.popErrorScope()]),
      lost.promise,
    ]);
    if (refused) throw refused;
    const err = validation ?? oom;
    if (err) throw new GpuError(`${label}: the WebGPU implementation refused the commands: ${err.message}`);
    await Promise.race([device.queue.onSubmittedWorkDone(), lost.promise]);
  } finally {
    lost.done();
  }
}
