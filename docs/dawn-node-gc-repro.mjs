// Minimal reproduction of the dawn.node crash recorded in docs/platform.md §2
// (see docs/node-runtime.md). The object returned by create() owns the Dawn instance; once it is
// garbage-collected, a device made from it still has the instance pump its events, and the next
// ProcessEvents() locks a mutex in freed memory.
//   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json node --expose-gc docs/dawn-node-gc-repro.mjs drop   # crashes
//   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json node --expose-gc docs/dawn-node-gc-repro.mjs keep   # passes
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const keep = process.argv[2] === 'keep';
let held = null;

async function makeDevice() {
  const gpu = create([]);
  if (keep) held = gpu;
  const adapter = await gpu.requestAdapter();
  return adapter.requestDevice();
}

const device = await makeDevice();
for (let i = 0; i < 5; i++) {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 20));
}
const buffer = device.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
for (let i = 0; i < 50; i++) {
  device.queue.writeBuffer(buffer, 0, new Float32Array(256).fill(i));
  await device.queue.onSubmittedWorkDone();
}
device.destroy();
console.log(`ok (${held ? 'kept' : 'dropped'} the GPU object)`);
