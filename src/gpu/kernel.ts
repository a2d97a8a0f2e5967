/**
 * Kernel plumbing shared by every wrapper in src/kernels/: WGSL reflection (bindings, uniform
 * layout, workgroup size — never restated in TypeScript), per-device pipeline caching, and a typed
 * dispatch that labels every GPU object it creates.
 */
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { StorageType } from '../layout';

/** The line by which a kernel declares its tensor element type; f16 pipelines rewrite it. */
const ELEMENT_ALIAS = 'alias xf = f32;';

/** A byte range of a GPUBuffer. `size` defaults to the rest of the buffer. */
export interface BufferSlice {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

interface Reflection {
  bindings: Map<string, number>;
  overrides: string[];
  uniform: { name: string; size: number; members: { name: string; offset: number; type: string }[] };
  workgroupSize: [number, number, number];
}

export interface Kernel<B extends string, P extends string> {
  readonly label: string;
  readonly source: string;
  /** Binding names the wrapper uses, in binding order; checked against the WGSL at first use. */
  readonly bindings: readonly B[];
  /** Uniform members the wrapper sets; checked against the WGSL at first use. */
  readonly params: readonly P[];
  reflection(): Reflection;
  /** Threads per workgroup, from the shader's @workgroup_size, with WG = `wg` when given. */
  threadsPerWorkgroup(wg?: number): number;
  /**
   * The pipeline on `device`, with the WG override set to `wg` when given, for tensors of `dtype`;
   * cached per device.
   */
  pipeline(device: GPUDevice, wg?: number, dtype?: StorageType): GPUComputePipeline;
}

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

let transients: GPUBuffer[] | null = null;

/**
 * Runs `encode`, adding to `sink` the per-call buffers that dispatches make meanwhile (uniforms, an
 * implicit workspace), even if it throws, so a caller that knows when the GPU is done can destroy
 * them at once rather than leave them to the garbage collector.
 */
export function collectTransients(sink: GPUBuffer[], encode: () => void): void {
  const outer = transients;
  transients = sink;
  try {
    encode();
  } finally {
    transients = outer;
  }
}

/** Registers a per-call buffer with the enclosing collectTransients, if any. */
export function transient(buffer: GPUBuffer): GPUBuffer {
  transients?.push(buffer);
  return buffer;
}

export function reflectWgsl(source: string): Reflection {
  const r = new WgslReflect(source);
  const entry = r.entry.compute[0];
  if (!entry) throw new Error('WGSL source has no compute entry point');
  const bindings = new Map<string, number>();
  for (const group of r.getBindGroups()) {
    for (const b of group) if (b) bindings.set(b.name, b.binding);
  }
  const u = r.uniforms[0];
  const struct = u.type as unknown as { size: number; members: { name: string; offset: number; type: { name: string } }[] };
  return {
    bindings,
    overrides: r.overrides.map((o) => o.name),
    uniform: { name: u.name, size: struct.size, members: struct.members.map((m) => ({ name: m.name, offset: m.offset, type: m.type.name })) },
    workgroupSize: entry.workgroupSize as [number, number, number],
  };
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

export function defineKernel<B extends string, P extends string>(
  label: string, source: string, bindings: readonly B[], params: readonly P[],
): Kernel<B, P> {
  let reflected: Reflection | null = null;
  const kernel: Kernel<B, P> = {
    label, source, bindings, params,
    reflection() {
      if (!reflected) {
        const r = reflectWgsl(source);
        const names = [...r.bindings.entries()].sort((a, b) => a[1] - b[1]).map(([n]) => n);
        if (names.join() !== bindings.join()) throw new Error(`${label}: wrapper bindings [${bindings}] do not match the WGSL [${names}]`);
        const members = r.uniform.members.map((m) => m.name);
        if (!sameSet(members, params)) throw new Error(`${label}: wrapper params [${params}] do not match the WGSL struct [${members}]`);
        reflected = r;
      }
      return reflected;
    },
    threadsPerWorkgroup(wg) {
      const [x, y, z] = kernel.reflection().workgroupSize;
      if (wg === undefined) return x * y * z;
      if (!kernel.reflection().overrides.includes('WG') || y * z !== 1) throw new Error(`${label} has no 1-D WG override`);
      return wg;
    },
    pipeline(device, wg, dtype = 'f32') {
      let cache = pipelines.get(device);
      if (!cache) pipelines.set(device, (cache = new Map()));
      const key = (wg === undefined ? label : `${label}:WG=${wg}`) + (dtype === 'f16' ? ':f16' : '');
      let p = cache.get(key);
      if (!p) {
        kernel.threadsPerWorkgroup(wg);
        const module = device.createShaderModule({ label: `${label}${dtype === 'f16' ? '.f16' : ''}.wgsl`, code: specialise(label, source, dtype) });
        const constants = wg === undefined ? undefined : { WG: wg };
        p = device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint: 'main', constants } });
        cache.set(key, p);
      }
      return p;
    },
  };
  return kernel;
}

/** The WGSL for tensors of `dtype`: f16 enables the extension and retypes the element alias. */
export function specialise(label: string, source: string, dtype: StorageType): string {
  if (dtype === 'f32') return source;
  if (!source.includes(ELEMENT_ALIAS)) throw new Error(`${label} declares no '${ELEMENT_ALIAS}'; it cannot run on f16 tensors`);
  return source.replace(ELEMENT_ALIAS, 'enable f16;\nalias xf = f16;');
}

/** Packs uniform values at the offsets the WGSL struct declares. */
export function packUniform(r: Reflection, values: Record<string, number>): ArrayBuffer {
  const buf = new ArrayBuffer(Math.ceil(r.uniform.size / 16) * 16);
  const view = new DataView(buf);
  for (const m of r.uniform.members) {
    const v = values[m.name];
    if (m.type === 'u32') view.setUint32(m.offset, v, true);
    else if (m.type === 'i32') view.setInt32(m.offset, v, true);
    else if (m.type === 'f32') view.setFloat32(m.offset, v, true);
    else throw new Error(`uniform member ${m.name} has unsupported type ${m.type}`);
  }
  return buf;
}

/** Encodes one dispatch of `kernel` into `pass`; `wg` sets the kernel's WG override, `dtype` its tensor type. */
export function dispatch<B extends string, P extends string>(
  device: GPUDevice, pass: GPUComputePassEncoder, kernel: Kernel<B, P>,
  params: Record<P, number>, buffers: Record<Exclude<B, 'params'>, BufferSlice>, groups: [number, number?, number?], wg?: number, dtype?: StorageType,
): void {
  const r = kernel.reflection();
  const data = packUniform(r, params);
  const uniform = transient(device.createBuffer({ label: `${kernel.label}.params`, size: data.byteLength, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true }));
  new Uint8Array(uniform.getMappedRange()).set(new Uint8Array(data));
  uniform.unmap();
  const entries: GPUBindGroupEntry[] = [{ binding: r.bindings.get(r.uniform.name)!, resource: { buffer: uniform } }];
  for (const name of kernel.bindings) {
    if (name === r.uniform.name) continue;
    const s = buffers[name as Exclude<B, 'params'>];
    entries.push({ binding: r.bindings.get(name)!, resource: { buffer: s.buffer, offset: s.offset ?? 0, size: s.size } });
  }
  const pipeline = kernel.pipeline(device, wg, dtype);
  const bindGroup = device.createBindGroup({ label: `${kernel.label}.bindings`, layout: pipeline.getBindGroupLayout(0), entries });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(groups[0], groups[1] ?? 1, groups[2] ?? 1);
}

/** Splits `n` workgroups over x and y so that neither exceeds the device's per-dimension limit. */
export function gridFor(device: GPUDevice, n: number): [number, number] {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(n, max);
  return [x, Math.ceil(n / x)];
}
