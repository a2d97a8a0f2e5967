/**
 * A whole training step through plans, in one command buffer: your layer (here a per-feature
 * scale w), batch norm, your loss (½‖y − target‖², so dy = y − target), backward, and an SGD update
 * of w and of the module's γ and β (`bn.weight` / `bn.bias` are STORAGE | COPY_SRC | COPY_DST
 * buffers your optimiser may write; `bn.weightGrad` / `bn.biasGrad` are overwritten by each
 * backward). The README shows it; the tests run it against the float64 CPU path.
 */
import { BatchNorm, readBuffer } from 'webgpu-batchnorm';
import { CpuBatchNorm } from 'webgpu-batchnorm/cpu';

// Your own kernels: the layer's forward (h = w·x) and backward (dw = Σ dh·x, dx is not needed),
// the loss gradient, and SGD (p -= lr·g). One thread per element; [N, F] row-major, F features.
const KERNELS = /* wgsl */ `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
override F: u32 = 1u;
override LR: f32 = 0.05;
@compute @workgroup_size(64) fn scale(@builtin(global_invocation_id) i: vec3<u32>) {
  if (i.x < arrayLength(&out)) { out[i.x] = a[i.x % F] * b[i.x]; }              // h = w·x
}
@compute @workgroup_size(64) fn residual(@builtin(global_invocation_id) i: vec3<u32>) {
  if (i.x < arrayLength(&out)) { out[i.x] = a[i.x] - b[i.x]; }                  // dy = y - target
}
@compute @workgroup_size(64) fn scale_grad(@builtin(global_invocation_id) i: vec3<u32>) {
  if (i.x >= F) { return; }
  var s = 0.0;
  for (var k = i.x; k < arrayLength(&a); k += F) { s += a[k] * b[k]; }          // dw = Σ dh·x
  out[i.x] = s;
}
@compute @workgroup_size(64) fn sgd(@builtin(global_invocation_id) i: vec3<u32>) {
  if (i.x < arrayLength(&out)) { out[i.x] -= LR * a[i.x]; }                     // p -= lr·g
}`;

export async function runTrainStep(device: GPUDevice): Promise<{ errors: Record<string, number>; steps: number }> {
  const N = 32,
    F = 16,
    lr = 0.05;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const buffer = (label: string, data: Float32Array<ArrayBuffer>) => {
    const b = device.createBuffer({ label, size: data.byteLength, usage });
    device.queue.writeBuffer(b, 0, data);
    return b;
  };
  const xs = Float32Array.from({ length: N * F }, (_, i) => Math.sin(i * 0.7) + (i % F) * 0.1);
  const ts = Float32Array.from({ length: N * F }, (_, i) => Math.cos(i * 0.3));
  const ws = Float32Array.from({ length: F }, (_, f) => 1 + f * 0.05);
  const [x, target, w] = [buffer('x', xs), buffer('target', ts), buffer('w', ws)];
  const [h, y, dy, dh, dw] = ['h', 'y', 'dy', 'dh', 'dw'].map((l) =>
    buffer(l, new Float32Array(l === 'dw' ? F : N * F)),
  );

  const bn = new BatchNorm(device, F);
  const step = bn.plan({ shape: [N, F], x: h, y, dy, dx: dh }); // validated once
  const module = device.createShaderModule({ code: KERNELS });
  // Binds a (0), b (1) where the entry point reads it, and out (2).
  const pass = (entryPoint: string, a: GPUBuffer, b: GPUBuffer | null, out: GPUBuffer, threads: number) => {
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint, constants: { F, LR: lr } },
    });
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [a, b, out].flatMap((buffer, binding) => (buffer ? [{ binding, resource: { buffer } }] : [])),
    });
    return (enc: GPUCommandEncoder) => {
      const p = enc.beginComputePass();
      p.setPipeline(pipeline);
      p.setBindGroup(0, bindGroup);
      p.dispatchWorkgroups(Math.ceil(threads / 64));
      p.end();
    };
  };
  const ops = [
    pass('scale', w, x, h, N * F), // your layer
    (enc: GPUCommandEncoder) => step.encodeForward(enc), // batch norm, training mode
    pass('residual', y, target, dy, N * F), // your loss's gradient
    (enc: GPUCommandEncoder) => step.encodeBackward(enc), // dh, bn.weightGrad, bn.biasGrad
    pass('scale_grad', dh, x, dw, F),
    pass('sgd', dw, null, w, F), // your optimiser: w, γ and β
    pass('sgd', bn.weightGrad, null, bn.weight, F),
    pass('sgd', bn.biasGrad, null, bn.bias, F),
  ];
  const steps = 3;
  for (let s = 0; s < steps; s++) {
    const enc = device.createCommandEncoder();
    for (const op of ops) op(enc);
    device.queue.submit([enc.finish()]); // one submit per training step
  }
  const got = {
    w: await readBuffer(device, w),
    weight: await readBuffer(device, bn.weight),
    bias: await readBuffer(device, bn.bias),
  };
  const state = await bn.stateDict();

  // The same steps in float64 on the CPU path.
  const cpu = new CpuBatchNorm(F);
  const wr = Float64Array.from(ws);
  for (let s = 0; s < steps; s++) {
    const hs = Float64Array.from(xs, (v, i) => wr[i % F] * v);
    const yr = cpu.forward(hs, [N, F]);
    const g = cpu.backward(
      hs,
      yr.map((v, i) => v - ts[i]),
    );
    const dwr = new Float64Array(F);
    g.dx.forEach((v, i) => (dwr[i % F] += v * xs[i]));
    for (let f = 0; f < F; f++) {
      wr[f] -= lr * dwr[f];
      cpu.weight[f] -= lr * g.weightGrad[f];
      cpu.bias[f] -= lr * g.biasGrad[f];
    }
  }
  const err = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let e = 0,
      scale = 1;
    for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
    for (let i = 0; i < b.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
    return e / scale;
  };
  bn.destroy();
  for (const b of [x, target, w, h, y, dy, dh, dw]) b.destroy();
  return {
    errors: {
      w: err(got.w, wr),
      weight: err(got.weight, cpu.weight),
      bias: err(got.bias, cpu.bias),
      runningMean: err(state.running_mean!, cpu.runningMean),
    },
    steps: state.num_batches_tracked ?? -1,
  };
}
