/** The conformance backend for the GPU `BatchNorm` module on a given device. */
import { BatchNorm } from '../module/batchnorm.js';
import { toHalfArray } from '../f16.js';
import { tensorByteLength } from '../plan/params.js';
import { readFloats, readHalfs } from '../gpu/buffers.js';
import type { TensorDtype } from '../layout.js';
import type { ConformanceBackend, ConformanceModule } from './runner.js';

function upload(device: GPUDevice, label: string, data: Float64Array, dtype: TensorDtype): GPUBuffer {
  const b = device.createBuffer({
    label,
    size: Math.max(4, tensorByteLength(data.length, dtype)),
    mappedAtCreation: true,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  if (dtype === 'float16') new Uint16Array(b.getMappedRange(), 0, data.length).set(toHalfArray(data));
  else new Float32Array(b.getMappedRange(), 0, data.length).set(data);
  b.unmap();
  return b;
}

/** A tensor's values, read as its dtype stores them. */
async function readTensor(
  device: GPUDevice,
  buffer: GPUBuffer,
  count: number,
  dtype: TensorDtype,
): Promise<Float64Array> {
  return dtype === 'float16' ? readHalfs(device, { buffer }, count) : f64(await readFloats(device, { buffer }, count));
}

const f64 = (a: Float32Array) => Float64Array.from(a);

/**
 * f32 kernels against float64 references, as a fraction of each array's scale: the golden vectors
 * measured at most 4e-7 on SwiftShader, so 1e-5 leaves headroom and still catches a wrong formula.
 */
export const WEBGPU_TOLERANCE = 1e-5;

export function webgpuBackend(device: GPUDevice, adapter: Record<string, unknown> = {}): ConformanceBackend {
  return {
    name: 'webgpu',
    adapter,
    tolerance: WEBGPU_TOLERANCE,
    async createModule(numFeatures, options) {
      const bn = new BatchNorm(device, numFeatures, options);
      const temps: GPUBuffer[] = [];
      const dtype = bn.options.dtype;
      const tmp = (label: string, data: Float64Array) => {
        const b = upload(device, label, data, dtype);
        temps.push(b);
        return b;
      };
      let lastX: GPUBuffer | null = null;
      let count = 0;
      const grads = async (dx: GPUBuffer, dz: GPUBuffer | undefined) => {
        const C = bn.numFeatures;
        return {
          dx: await readTensor(device, dx, count, dtype),
          dgamma: f64(await readFloats(device, { buffer: bn.weightGrad }, C)),
          dbeta: f64(await readFloats(device, { buffer: bn.biasGrad }, C)),
          ...(dz ? { dz: await readTensor(device, dz, count, dtype) } : {}),
        };
      };
      const m: ConformanceModule = {
        train: (mode) => {
          bn.train(mode);
        },
        loadStateDict: (sd) => bn.loadStateDict(sd),
        async forward(x, shape, layout, z) {
          lastX = tmp('conformance.x', x);
          count = x.length;
          const y = tmp('conformance.y', new Float64Array(x.length));
          await bn.forward(lastX, y, shape, layout, z === undefined ? undefined : tmp('conformance.z', z));
          return readTensor(device, y, x.length, dtype);
        },
        async backward(_x, dy) {
          const dyb = tmp('conformance.dy', dy);
          const dx = tmp('conformance.dx', new Float64Array(count));
          const dz = bn.options.epilogue === 'add_relu' ? tmp('conformance.dz', new Float64Array(count)) : undefined;
          await bn.backward(lastX!, dyb, dx, dz);
          return grads(dx, dz);
        },
        async forwardSync(x, shape, layout, z, batch, allReduce) {
          lastX = tmp('conformance.x', x);
          count = x.length;
          const y = tmp('conformance.y', new Float64Array(x.length));
          const zb = z === undefined ? undefined : tmp('conformance.z', z);
          await bn.forwardSync(lastX, y, shape, layout, { batch, allReduce, ...(zb ? { z: zb } : {}) });
          return readTensor(device, y, x.length, dtype);
        },
        async backwardSync(_x, dy, allReduce) {
          const dyb = tmp('conformance.dy', dy);
          const dx = tmp('conformance.dx', new Float64Array(count));
          const dz = bn.options.epilogue === 'add_relu' ? tmp('conformance.dz', new Float64Array(count)) : undefined;
          await bn.backwardSync(lastX!, dyb, dx, { allReduce, ...(dz ? { dz } : {}) });
          return grads(dx, dz);
        },
        async runningStats(): Promise<Record<string, Float64Array>> {
          if (!bn.options.trackRunningStats) return {};
          const sd = await bn.stateDict();
          return {
            running_mean: f64(sd.running_mean as Float32Array),
            [bn.spreadKey]: f64(sd[bn.spreadKey] as Float32Array),
          };
        },
        stateDict: () => bn.stateDict(),
        async correction() {
          const c = await bn.lastCorrection();
          return c && { r: f64(c.r), d: f64(c.d) };
        },
        destroy() {
          bn.destroy();
          for (const b of temps) b.destroy();
        },
      };
      return m;
    },
  };
}
