/** One device per test file, requested up front; a missing adapter fails the tests, never skips them. */
import { requestBatchNormDevice } from '../../src/device';

let device: Promise<GPUDevice> | null = null;

export function gpuDevice(): Promise<GPUDevice> {
  device ??= requestBatchNormDevice();
  return device;
}

export async function adapterInfo(d: GPUDevice): Promise<Record<string, unknown>> {
  const i = d.adapterInfo;
  return { vendor: i?.vendor, architecture: i?.architecture, device: i?.device, description: i?.description };
}
