// Host cost of encoding on this stack (Node, the `webgpu` package): a compute pass of 1, 3 and 4
// tiny dispatches, and each call alone, in µs (median of 5 runs of 2000 or 5000). It is the floor
// under a BN call's encode time (`npm run bench -- --ops train-step`). Usage: node bench/encode_cost.mjs
// (with VK_ICD_FILENAMES set where the machine has no Vulkan driver of its own; docs/platform.md).
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const adapter = await create([]).requestAdapter();
const device = await adapter.requestDevice();
const code = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { a[g.x] = 1.0; }`;
const p = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }) } });
const b = device.createBuffer({ size: 1 << 16, usage: GPUBufferUsage.STORAGE });
const bg = device.createBindGroup({
  layout: p.getBindGroupLayout(0),
  entries: [{ binding: 0, resource: { buffer: b } }],
});

/** Median µs per call of `body(pass or encoder)` over 5 runs of `k` calls into one unsubmitted encoder. */
function time(k, body) {
  const runs = [];
  for (let r = 0; r < 5; r++) {
    const enc = device.createCommandEncoder();
    const t0 = performance.now();
    body(enc, k);
    runs.push(((performance.now() - t0) * 1000) / k);
    enc.finish();
  }
  return runs.sort((x, y) => x - y)[2];
}
const inPass = (f) => (enc, k) => {
  const pass = enc.beginComputePass();
  for (let i = 0; i < k; i++) f(pass);
  pass.end();
};
const info = device.adapterInfo;
console.log(`adapter: ${info.vendor} ${info.architecture} ${info.description}; ${new Date().toISOString()}`);
for (const d of [1, 3, 4]) {
  const us = time(2000, (enc, k) => {
    for (let i = 0; i < k; i++) {
      const pass = enc.beginComputePass({ label: 'x' });
      for (let j = 0; j < d; j++) {
        pass.setPipeline(p);
        pass.setBindGroup(0, bg);
        pass.dispatchWorkgroups(4);
      }
      pass.end();
    }
  });
  console.log(`labelled pass of ${d} dispatches: ${us.toFixed(2)} µs`);
}
console.log(
  `setPipeline ${time(
    5000,
    inPass((q) => q.setPipeline(p)),
  ).toFixed(2)} µs`,
);
console.log(
  `setBindGroup ${time(
    5000,
    inPass((q) => q.setBindGroup(0, bg)),
  ).toFixed(2)} µs`,
);
const bound = (enc, k) => {
  const pass = enc.beginComputePass();
  pass.setPipeline(p);
  pass.setBindGroup(0, bg);
  for (let i = 0; i < k; i++) pass.dispatchWorkgroups(4);
  pass.end();
};
console.log(`dispatchWorkgroups ${time(5000, bound).toFixed(2)} µs`);
console.log(
  `beginComputePass + end ${time(5000, (enc, k) => {
    for (let i = 0; i < k; i++) enc.beginComputePass().end();
  }).toFixed(2)} µs`,
);
process.exit(0);
