/**
 * The README's example, whole: create the buffers with the usage flags they need, train a step,
 * take gradients, switch to inference, read the results back, and check them against the float64
 * CPU path. Runs the same in a browser (main.ts) and in Node (node.ts).
 */
import { BatchNorm, readBuffer } from 'webgpu-batchnorm';
import { CpuBatchNorm } from 'webgpu-batchnorm/cpu';

export interface ExampleResult {
  adapter: string;
  /** Largest |GPU - CPU| over each output, relative to the output's scale. */
  errors: { y: number; dx: number; dweight: number; runningMean: number; yEval: number };
  numBatchesTracked: number;
}

export async function runExample(device: GPUDevice): Promise<ExampleResult> {
  const shape = [8, 16, 16, 32]; // N, H, W, C
  const layout = 'NHWC';
  const n = 8 * 16 * 16 * 32;
  // Tensors are storage buffers; COPY_DST to upload, COPY_SRC to read back.
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const tensor = (label: string) => device.createBuffer({ label, size: n * 4, usage });
  const [x, y, dy, dx] = ['x', 'y', 'dy', 'dx'].map(tensor);
  const xs = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 2 + (i % 32) * 0.1);
  const dys = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.11));
  device.queue.writeBuffer(x, 0, xs);
  device.queue.writeBuffer(dy, 0, dys);

  const bn = new BatchNorm(device, 32); // PyTorch defaults: eps 1e-5, momentum 0.1
  await bn.forward(x, y, shape, layout); // training: batch statistics, running update
  await bn.backward(x, dy, dx); // dx, and bn.weightGrad / bn.biasGrad
  const yTrain = await readBuffer(device, y);
  const dxs = await readBuffer(device, dx);
  const dweight = await readBuffer(device, bn.weightGrad);
  bn.eval();
  await bn.forward(x, y, shape, layout); // inference: running statistics
  const yEval = await readBuffer(device, y);
  const state = await bn.stateDict();

  // The same calls on the float64 CPU path.
  const cpu = new CpuBatchNorm(32);
  const yRef = cpu.forward(xs, shape, layout);
  const gRef = cpu.backward(xs, dys);
  cpu.eval();
  const yEvalRef = cpu.forward(xs, shape, layout);
  const err = (got: ArrayLike<number>, want: ArrayLike<number>) => {
    let e = 0,
      scale = 1;
    for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
    for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i] - want[i]));
    return e / scale;
  };
  const info = device.adapterInfo;
  const result: ExampleResult = {
    adapter: [info.vendor, info.architecture, info.device].filter(Boolean).join(' '),
    errors: {
      y: err(yTrain, yRef),
      dx: err(dxs, gRef.dx),
      dweight: err(dweight, gRef.dgamma),
      runningMean: err(state.running_mean!, cpu.runningMean),
      yEval: err(yEval, yEvalRef),
    },
    numBatchesTracked: state.num_batches_tracked ?? -1,
  };
  bn.destroy();
  for (const b of [x, y, dy, dx]) b.destroy();
  return result;
}
