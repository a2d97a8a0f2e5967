import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const { BatchNorm } = await import('../dist/index.js');
const gpu = create([]);
const adapter = await gpu.requestAdapter();
const device = await adapter.requestDevice();
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const shape = [2, 14, 14, 64];
const n = shape.reduce((a, b) => a * b);
const mk = () => device.createBuffer({ size: n * 4, usage });
const t = { x: mk(), y: mk(), dy: mk(), dx: mk() };
const bns = Array.from({ length: 6 }, () => new BatchNorm(device, 64));
const steps = bns.map((bn) => bn.plan({ shape, layout: 'NHWC', ...t }));
const encodeStep = (enc) => {
  for (const s of steps) s.encodeForward(enc);
  for (let k = steps.length - 1; k >= 0; k--) steps[k].encodeBackward(enc);
};
{
  const enc = device.createCommandEncoder();
  encodeStep(enc);
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
}
const mode = process.argv[2] ?? 'both';
for (let rep = 0; rep < 5; rep++) {
  const enc = device.createCommandEncoder();
  const K = 300;
  const t0 = performance.now();
  for (let k = 0; k < K; k++) {
    if (mode === 'f') for (const s of steps) s.encodeForward(enc);
    else if (mode === 'b') for (const s of steps) s.encodeBackward(enc);
    else encodeStep(enc);
  }
  const us = ((performance.now() - t0) * 1000) / K / (mode === 'both' ? 12 : 6);
  enc.finish();
  console.log(mode, us.toFixed(1), 'us/call');
}
process.exit(0);
