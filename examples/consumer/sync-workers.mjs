/**
 * Synchronized batch norm with worker_threads: each worker owns a GPUDevice (its own `webgpu`
 * instance) and one shard of the batch; the main thread is the transport. At each all-reduce
 * point a worker posts its shard's export, the main thread gathers every shard's and posts the
 * list back, in shard order, to all of them. The main thread also runs the whole batch on one
 * device and prints the largest difference.
 *
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json node sync-workers.mjs
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { create, globals } from 'webgpu';
import { BatchNorm, readBuffer, requestBatchNormDevice } from 'webgpu-batchnorm';

Object.assign(globalThis, globals);

const [N, C, H, W] = [6, 8, 4, 4];
const SHARDS = [4, 2]; // samples per worker: N = 6, split unevenly
const PER = C * H * W;
const STEPS = 2;

/** Deterministic data, the same in every thread. */
const data = (seed, n) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37) * (1 + (i % C)));

/** One layer's forward + backward on a device, for `samples` of the batch starting at `first`. */
async function train(device, first, samples, sync) {
  const bn = new BatchNorm(device, C);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const buf = (a) => {
    const b = device.createBuffer({ size: a.byteLength, usage });
    device.queue.writeBuffer(b, 0, a);
    return b;
  };
  const shape = [samples, H, W, C];
  const out = [];
  for (let step = 0; step < STEPS; step++) {
    const slice = (a) => a.subarray(first * PER, (first + samples) * PER);
    const x = buf(slice(data(step, N * PER)));
    const dy = buf(slice(data(step + 100, N * PER)));
    const y = buf(new Float32Array(samples * PER));
    const dx = buf(new Float32Array(samples * PER));
    if (sync) {
      await bn.forwardSync(x, y, shape, 'NHWC', { batch: N, allReduce: (local) => sync('stats', local) });
      await bn.backwardSync(x, dy, dx, { allReduce: (local) => sync('sums', local) });
    } else {
      await bn.forward(x, y, shape, 'NHWC');
      await bn.backward(x, dy, dx);
    }
    out.push({
      y: await readBuffer(device, y),
      dx: await readBuffer(device, dx),
      dgamma: await readBuffer(device, bn.weightGrad),
    });
  }
  const state = await bn.stateDict();
  bn.destroy();
  return { out, runningVar: state.running_var };
}

if (isMainThread) {
  const workers = SHARDS.map((samples, shard) => {
    const first = SHARDS.slice(0, shard).reduce((a, b) => a + b, 0);
    return new Worker(new URL(import.meta.url), { workerData: { shard, first, samples } });
  });
  // The transport: gather one message per worker for each all-reduce, then answer all of them.
  const pending = [];
  const results = workers.map(
    (w) =>
      new Promise((resolve, reject) => {
        w.on('error', reject);
        w.on('message', (m) => {
          if (m.kind === 'done') return resolve(m.result);
          pending[m.shard] = m.local;
          if (pending.filter(Boolean).length === workers.length) {
            const all = pending.splice(0);
            for (const v of workers) v.postMessage(all);
          }
        });
      }),
  );
  const shards = await Promise.all(results);
  const device = await requestBatchNormDevice({ gpu: create([]) });
  const whole = await train(device, 0, N, null);
  device.destroy();
  let diff = 0;
  const cmp = (a, b) => a.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - b[i]) / Math.max(1, Math.abs(b[i])))));
  for (let s = 0; s < STEPS; s++) {
    cmp(Float32Array.from(shards.flatMap((r) => Array.from(r.out[s].y))), whole.out[s].y);
    cmp(Float32Array.from(shards.flatMap((r) => Array.from(r.out[s].dx))), whole.out[s].dx);
    for (const r of shards) cmp(r.out[s].dgamma, whole.out[s].dgamma);
  }
  for (const r of shards) cmp(r.runningVar, whole.runningVar);
  console.log(`workers: ${workers.length}; largest difference from one device: ${diff.toExponential(2)}`);
  await Promise.all(workers.map((w) => w.terminate()));
} else {
  const { shard, first, samples } = workerData;
  const device = await requestBatchNormDevice({ gpu: create([]) });
  const replies = [];
  parentPort.on('message', (all) => replies.shift()(all));
  const sync = (_kind, local) =>
    new Promise((resolve) => {
      replies.push(resolve);
      parentPort.postMessage({ shard, local });
    });
  const result = await train(device, first, samples, sync);
  device.destroy();
  parentPort.postMessage({ kind: 'done', result });
}
