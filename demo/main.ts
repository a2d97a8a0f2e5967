/**
 * Demo entry. Until the training demo lands, the page checks the library on this machine's GPU:
 * it runs BatchNorm forward and backward on random data and compares with the float64 CPU path.
 */
import { BatchNorm, requestBatchNormDevice, UnsupportedError } from '../src/index';
import { CpuBatchNorm } from '../src/cpu/index';
import { readFloats } from '../src/gpu/buffers';
import { scaledError } from '../src/conformance/golden';

const status = document.getElementById('status')!;

function upload(device: GPUDevice, data: Float32Array): GPUBuffer {
  const b = device.createBuffer({ label: 'demo.tensor', size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
  new Float32Array(b.getMappedRange()).set(data);
  b.unmap();
  return b;
}

async function main(): Promise<void> {
  const device = await requestBatchNormDevice();
  const info = device.adapterInfo;
  const adapter = `${info.vendor} ${info.architecture} ${info.device}`.trim();
  const table = document.createElement('table');
  table.innerHTML = '<tr><th>layout</th><th>shape</th><th>y error</th><th>dx error</th><th>running_var error</th></tr>';
  for (const [layout, shape] of [['NHWC', [8, 16, 16, 32]], ['NCHW', [8, 32, 16, 16]], ['NC', [64, 100]]] as const) {
    const count = shape.reduce((a, b) => a * b, 1);
    const C = layout === 'NHWC' ? shape[3] : shape[1];
    const x = Float32Array.from({ length: count }, (_, i) => 1e4 + Math.sin(i * 12.9898) * 43758.5453 % 1);
    const dy = Float32Array.from({ length: count }, (_, i) => Math.cos(i * 78.233) % 1);
    const gpu = new BatchNorm(device, C);
    const cpu = new CpuBatchNorm(C);
    const [xb, yb, dyb, dxb] = [upload(device, x), upload(device, new Float32Array(count)), upload(device, dy), upload(device, new Float32Array(count))];
    await gpu.forward(xb, yb, [...shape], layout);
    await gpu.backward(xb, dyb, dxb);
    const y = cpu.forward(x, [...shape], layout);
    const g = cpu.backward(x, dy);
    const sd = await gpu.stateDict();
    const row = table.insertRow();
    row.insertCell().textContent = layout;
    row.insertCell().textContent = shape.join('×');
    row.insertCell().textContent = scaledError(await readFloats(device, { buffer: yb }, count), y).toExponential(1);
    row.insertCell().textContent = scaledError(await readFloats(device, { buffer: dxb }, count), g.dx).toExponential(1);
    row.insertCell().textContent = scaledError(sd.running_var as Float32Array, cpu.runningSpread).toExponential(1);
    gpu.destroy();
  }
  status.textContent = `Adapter: ${adapter}. BatchNorm on this GPU against the float64 CPU path, inputs at offset 1e4 (errors as a fraction of each array's scale):`;
  status.after(table);
}

main().catch((e) => {
  status.className = 'error';
  status.textContent = e instanceof UnsupportedError ? `WebGPU is not available: ${e.message}` : `Error: ${e instanceof Error ? e.message : e}`;
});
