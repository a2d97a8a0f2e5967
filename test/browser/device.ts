/** One device per test file, requested up front; a missing adapter fails the tests, never skips them. */
import { requestBatchNormDevice } from '../../src/device';

let device: Promise<GPUDevice> | null = null;

export function gpuDevice(): Promise<GPUDevice> {
  device ??= requestBatchNormDevice();
  return device;
}
