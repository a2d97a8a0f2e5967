/**
 * The TF.js internals the bridge relies on, each checked before it is used: a version that lacks
 * one gets an UnsupportedError naming the supported range, never a wrong result.
 *
 * Read in the sources of @tensorflow/tfjs-core, -layers and -backend-webgpu 4.22.0 (and checked by
 * test/node/tfjs.test.ts):
 * - `tf.backend()` on 'webgpu' has `device`, and `tensorMap.get(dataId).resource` is the tensor's
 *   own GPUBuffer (exactly 4·size bytes, STORAGE | COPY_SRC | COPY_DST) once `uploadToGPU(dataId)`
 *   has put CPU-held values there;
 * - outputs come from `makeTensorInfo` + `uploadToGPU` (a pooled buffer) and
 *   `engine().makeTensorFromTensorInfo`;
 * - TF.js records into its own `commandEncoder` with a compute pass left open, and submits it every
 *   15 dispatches and on reads: work recorded into that encoder after `endComputePassEncoder()` is
 *   ordered with TF.js's own and adds no submit;
 * - a dataId in `commandQueueOwnedIds` keeps its buffer out of the pool until that encoder is
 *   submitted, so a tensor disposed before then cannot have its buffer reused under our reads.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { UnsupportedError } from '../errors.js';

/** The TF.js versions whose internals the bridge was written against. */
export const SUPPORTED_TFJS = '>=4.22.0 <5.0.0';

const unsupported = (what: string) =>
  new UnsupportedError(
    `webgpu-batchnorm/tfjs supports TF.js ${SUPPORTED_TFJS}; this TF.js (tfjs-core ${tf.version_core}, tfjs-layers ${tfl.version_layers}) lacks ${what}. Install @tensorflow/tfjs@^4.22, or call uninstall() and use the stock layer`,
  );

/** Whether a version string is in SUPPORTED_TFJS. */
export function supportedVersion(version: unknown): boolean {
  const m = typeof version === 'string' ? /^(\d+)\.(\d+)\./.exec(version) : null;
  return !!m && Number(m[1]) === 4 && Number(m[2]) >= 22;
}

/** The class registered as 'BatchNormalization' (the stock one until install()), or undefined. */
export function registeredClass(): StockClass | undefined {
  const map = tf.serialization?.SerializationMap?.getMap?.()?.classNameMap as
    Record<string, [StockClass, unknown] | undefined> | undefined;
  const cls = map?.BatchNormalization?.[0];
  return typeof cls === 'function' ? cls : undefined;
}

/** What the bridge needs of tfjs-core and tfjs-layers (at install() and when a layer is made). */
export function checkLayersInternals(): void {
  if (!supportedVersion(tf.version_core) || !supportedVersion(tfl.version_layers))
    throw unsupported('a supported version number');
  if (!registeredClass()) throw unsupported("a registered 'BatchNormalization' layer class");
  if (typeof tf.serialization.registerClass !== 'function') throw unsupported('serialization.registerClass');
  if (typeof tf.customGrad !== 'function') throw unsupported('customGrad');
  if (typeof tf.engine().makeTensorFromTensorInfo !== 'function')
    throw unsupported('engine().makeTensorFromTensorInfo');
}

/** A layer class, as the serialization map holds it. */
export type StockClass = new (args?: object) => object;

interface TensorData {
  resource?: unknown;
}

/** The parts of the WebGPU backend the bridge uses. */
export interface WebGpuBackend {
  readonly device: GPUDevice;
  readonly tensorMap: { get(dataId: tf.DataId): TensorData | undefined; has(dataId: tf.DataId): boolean };
  readonly commandEncoder: GPUCommandEncoder | null;
  readonly commandQueueOwnedIds: WeakSet<tf.DataId>;
  uploadToGPU(dataId: tf.DataId): void;
  makeTensorInfo(shape: number[], dtype: 'float32'): tf.TensorInfo;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** `be` as the WebGPU backend the bridge uses, or an UnsupportedError naming what it lacks. */
export function checkWebGpuBackend(be: object): WebGpuBackend {
  const b = be as Partial<WebGpuBackend>;
  if (typeof b.device?.createBuffer !== 'function') throw unsupported("the webgpu backend's device");
  if (typeof b.tensorMap?.get !== 'function' || typeof b.tensorMap.has !== 'function')
    throw unsupported("the webgpu backend's tensorMap");
  if (!(b.commandQueueOwnedIds instanceof WeakSet)) throw unsupported("the webgpu backend's commandQueueOwnedIds");
  if (!('commandEncoder' in b)) throw unsupported("the webgpu backend's commandEncoder");
  for (const m of [
    'uploadToGPU',
    'makeTensorInfo',
    'ensureCommandEncoderReady',
    'endComputePassEncoder',
    'submitQueue',
  ] as const)
    if (typeof b[m] !== 'function') throw unsupported(`the webgpu backend's ${m}()`);
  return b as WebGpuBackend;
}

/** The active backend when it is TF.js's WebGPU backend (checked on every call: it costs a few typeofs), else null. */
export function activeWebGpuBackend(): WebGpuBackend | null {
  return tf.getBackend() === 'webgpu' ? checkWebGpuBackend(tf.backend()) : null;
}

/** The tensor's own GPUBuffer on `be` (uploaded first where its values are on the CPU), or null. */
export function bufferOf(be: WebGpuBackend, t: tf.Tensor): GPUBuffer | null {
  if (!be.tensorMap.has(t.dataId)) return null;
  be.uploadToGPU(t.dataId);
  const r = be.tensorMap.get(t.dataId)?.resource;
  return r instanceof GPUBuffer ? r : null;
}

/** A new float32 tensor on a pooled buffer of `be`, and that buffer. */
export function newTensor(be: WebGpuBackend, shape: number[]): { tensor: tf.Tensor; buffer: GPUBuffer } {
  const info = be.makeTensorInfo(shape, 'float32');
  be.uploadToGPU(info.dataId);
  const tensor = tf.engine().makeTensorFromTensorInfo(info);
  const buffer = be.tensorMap.get(info.dataId)?.resource;
  if (!(buffer instanceof GPUBuffer)) throw unsupported('GPUBuffer-backed outputs');
  return { tensor, buffer };
}

/**
 * Records `encode` into TF.js's own command encoder, after its open compute pass, and keeps the
 * buffers of `tensors` out of TF.js's pool until that encoder is submitted.
 */
export function recordInto(be: WebGpuBackend, tensors: readonly tf.Tensor[], encode: (e: GPUCommandEncoder) => void) {
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  if (!be.commandEncoder) throw unsupported("the webgpu backend's commandEncoder");
  encode(be.commandEncoder);
  for (const t of tensors) be.commandQueueOwnedIds.add(t.dataId);
}

/** Submits what TF.js has recorded but not submitted (before buffers it may use are destroyed). */
export function flush(be: WebGpuBackend): void {
  if (be.commandEncoder) {
    be.endComputePassEncoder();
    be.submitQueue();
  }
}
