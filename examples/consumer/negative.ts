/**
 * Must not compile: proves the package's types are real (not `any`). The consumer test expects
 * exactly these errors, one per line marked `error:`.
 */
import { BatchNorm, encodeForwardTrain } from 'webgpu-batchnorm';

export async function wrong(device: GPUDevice, x: GPUBuffer, y: GPUBuffer, stats: GPUBuffer): Promise<void> {
  const bn = new BatchNorm(device, 8);
  await bn.forward(x, y, [2, 4, 4, 8], 'NWHC'); // error: not a layout
  await bn.forward(new Float32Array(256), y, [2, 4, 4, 8], 'NHWC'); // error: a Float32Array is not a buffer
  encodeForwardTrain(device, device.createCommandEncoder(), {
    layout: 'NCHW',
    shape: [2, 8],
    x,
    y,
    stats,
    momentum: 'fast', // error: momentum is a number
  });
  const sd = await bn.stateDict();
  const n: string = sd.num_batches_tracked!; // error: a number
  void n;
}
