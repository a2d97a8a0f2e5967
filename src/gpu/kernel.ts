/**
 * Kernel plumbing: a kernel is its WGSL compiled at build time (scripts/wgsl.ts joins the prelude
 * and reflects bindings, uniform layout and workgroup size), checked against the names its wrapper
 * declares; pipelines are cached per device; a Dispatch is a pipeline, a bind group and a grid,
 * built once by a plan and encoded as often as the plan is.
 */
import type { StorageType } from '../layout.js';
import type { Epilogue } from '../options.js';

/**
 * What a pipeline is specialised for: the tensors' element type, the epilogue (none by default),
 * and the switches of version 5: for the apply kernels, inference with coefficients computed in
 * the pass (`infer`); for the statistics kernels, a module's step advanced in the pass (`step`).
 */
export interface Variant {
  dtype?: StorageType;
  epilogue?: Epilogue | null;
  infer?: boolean;
  step?: boolean;
}

/** The switches, and the constant by which a kernel declares each (0; its pipelines set 1). */
const SWITCHES = { infer: 'INFER', step: 'STEP' } as const;
const switchLine = (name: string, on: boolean) => `const ${name}: u32 = ${on ? 1 : 0}u;`;

/** What build-time reflection records of a kernel (scripts/wgsl.ts). */
export interface Reflection {
  /** Binding number of each named binding of group 0. */
  bindings: Record<string, number>;
  /** Names of the pipeline-overridable constants (WG, where a kernel has it). */
  overrides: string[];
  /** The uniform struct, when the kernel has one: its binding's name, size and members. */
  uniform: { name: string; size: number; members: { name: string; offset: number; type: string }[] } | null;
  workgroupSize: [number, number, number];
  /** `const NAME: u32 = Nu;` declarations (flag bits), compared with their TypeScript twins in tests. */
  constants: Record<string, number>;
}

/** A kernel file as the build ships it: prelude and kernel joined, comments stripped, and its reflection. */
export interface CompiledWgsl {
  source: string;
  reflection: Reflection;
}

/** A byte range of a GPUBuffer. `size` defaults to the rest of the buffer. */
export interface BufferSlice {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

/** The line by which a kernel declares its tensor element type; f16 pipelines rewrite it. */
const ELEMENT_ALIAS = 'alias xf = f32;';
/** The line by which a kernel declares that it has the epilogues; their pipelines rewrite it. */
const EPILOGUE_CONST = 'const EPILOGUE: u32 = 0u;';
const EPILOGUE_CODE: Record<Epilogue, number> = { relu: 1, add_relu: 2 };

export interface Kernel<B extends string, P extends string> {
  readonly label: string;
  readonly source: string;
  /** Binding names the wrapper uses, in binding order. */
  readonly bindings: readonly B[];
  /** Uniform members the wrapper sets. */
  readonly params: readonly P[];
  /** The build-time reflection, after checking it against `bindings` and `params` (once). */
  reflection(): Reflection;
  /** Threads per workgroup, from the shader's @workgroup_size, with WG = `wg` when given. */
  threadsPerWorkgroup(wg?: number): number;
  /** The pipeline on `device` for `variant`, with the WG override set to `wg`; cached per device. */
  pipeline(device: GPUDevice, wg?: number, variant?: Variant): GPUComputePipeline;
}

export type AnyKernel = Kernel<string, string>;

/** The uniform values a kernel takes, by name: what its dispatch must give (checked at compile time). */
export type ParamsOf<K> = K extends Kernel<string, infer P> ? Record<P, number> : never;

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

export function defineKernel<B extends string, P extends string>(
  label: string,
  compiled: CompiledWgsl,
  bindings: readonly B[],
  params: readonly P[],
): Kernel<B, P> {
  let checked = false;
  const kernel: Kernel<B, P> = {
    label,
    source: compiled.source,
    bindings,
    params,
    reflection() {
      const r = compiled.reflection;
      if (!checked) {
        const names = Object.entries(r.bindings)
          .sort((a, b) => a[1] - b[1])
          .map(([n]) => n);
        if (names.join() !== bindings.join())
          throw new Error(`${label}: wrapper bindings [${bindings}] do not match the WGSL [${names}]`);
        const members = r.uniform?.members.map((m) => m.name) ?? [];
        if (!sameSet(members, params))
          throw new Error(`${label}: wrapper params [${params}] do not match the WGSL struct [${members}]`);
        checked = true;
      }
      return r;
    },
    threadsPerWorkgroup(wg) {
      const [x, y, z] = kernel.reflection().workgroupSize;
      if (wg === undefined) return x * y * z;
      if (!kernel.reflection().overrides.includes('WG') || y * z !== 1)
        throw new Error(`${label} has no 1-D WG override`);
      return wg;
    },
    pipeline(device, wg, variant = {}) {
      const dtype = variant.dtype ?? 'f32';
      const epilogue = variant.epilogue ?? null;
      const on = (Object.keys(SWITCHES) as (keyof typeof SWITCHES)[]).filter((k) => variant[k]);
      let cache = pipelines.get(device);
      if (!cache) pipelines.set(device, (cache = new Map()));
      const key =
        (wg === undefined ? label : `${label}:WG=${wg}`) +
        (dtype === 'f16' ? ':f16' : '') +
        (epilogue ? `:${epilogue}` : '') +
        on.map((k) => `:${k}`).join('');
      let p = cache.get(key);
      if (!p) {
        kernel.threadsPerWorkgroup(wg);
        const module = device.createShaderModule({
          label: `${label}${dtype === 'f16' ? '.f16' : ''}${epilogue ? `.${epilogue}` : ''}${on.map((k) => `.${k}`).join('')}.wgsl`,
          code: specialise(label, compiled.source, variant),
        });
        const constants = wg === undefined ? undefined : { WG: wg };
        p = device.createComputePipeline({
          label: key,
          layout: 'auto',
          compute: { module, entryPoint: 'main', constants },
        });
        cache.set(key, p);
      }
      return p;
    },
  };
  return kernel;
}

/**
 * The WGSL for `variant`: f16 enables the extension (first, before any declaration) and retypes
 * the element alias; an epilogue sets the kernel's EPILOGUE constant, a switch its constant.
 */
export function specialise(label: string, source: string, variant: Variant): string {
  let out = source;
  for (const [k, name] of Object.entries(SWITCHES)) {
    if (!variant[k as keyof typeof SWITCHES]) continue;
    if (!out.includes(switchLine(name, false)))
      throw new Error(`${label} declares no '${switchLine(name, false)}'; it has no ${k} variant`);
    out = out.replace(switchLine(name, false), switchLine(name, true));
  }
  if (variant.epilogue) {
    if (!out.includes(EPILOGUE_CONST)) throw new Error(`${label} declares no '${EPILOGUE_CONST}'; it has no epilogues`);
    out = out.replace(EPILOGUE_CONST, `const EPILOGUE: u32 = ${EPILOGUE_CODE[variant.epilogue]}u;`);
  }
  if ((variant.dtype ?? 'f32') === 'f32') return out;
  if (!out.includes(ELEMENT_ALIAS))
    throw new Error(`${label} declares no '${ELEMENT_ALIAS}'; it cannot run on f16 tensors`);
  return `enable f16;\n${out.replace(ELEMENT_ALIAS, 'alias xf = f16;')}`;
}

/**
 * Packs uniform values at the offsets the WGSL struct declares. Every member must be given a finite
 * number and nothing else may be: a missing value would silently be 0 (or NaN), an unknown one
 * silently dropped. Throws (a library bug, caught when a plan is built) otherwise.
 */
export function packUniform(label: string, r: Reflection, values: Record<string, number>): ArrayBuffer {
  const u = r.uniform;
  if (!u) throw new Error(`${label} has no uniform struct`);
  const members = new Set(u.members.map((m) => m.name));
  for (const k of Object.keys(values))
    if (!members.has(k)) throw new Error(`${label}: uniform value '${k}' is not a member of its struct`);
  const buf = new ArrayBuffer(Math.ceil(u.size / 16) * 16);
  const view = new DataView(buf);
  for (const m of u.members) {
    const v = values[m.name];
    if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`${label}: uniform member ${m.name} is not given`);
    if (m.type === 'u32') view.setUint32(m.offset, v, true);
    else if (m.type === 'i32') view.setInt32(m.offset, v, true);
    else if (m.type === 'f32') view.setFloat32(m.offset, v, true);
    else throw new Error(`${label}: uniform member ${m.name} has unsupported type ${m.type}`);
  }
  return buf;
}

/** Workgroups along x and y of a dispatch. */
export type Grid = [number, number?, number?];

type Bound = Required<BufferSlice>;

/**
 * Bind groups a dispatch keeps for other buffers than the planned ones (frameworks such as TF.js
 * pool and rotate buffers), least recently used first out.
 */
export const BIND_GROUP_CACHE_SIZE = 16;

/** One dispatch of a plan: made once, encoded with every encode of the plan. */
export interface Dispatch {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  /** The bind group of the planned buffers. */
  readonly bindGroup: GPUBindGroup;
  readonly grid: readonly [number, number, number];
  /**
   * The bind group with some planned ranges swapped for others of the same size (keys are the
   * planned range objects): made on first use, then cached by buffer identity and offset.
   */
  bindGroupFor(swap: ReadonlyMap<Bound, Bound>): GPUBindGroup;
}

const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = nextBufferId++));
  return id;
}

/** A buffer holding `data`, made mapped so that no queue write is involved. */
export function constantBuffer(
  device: GPUDevice,
  label: string,
  data: ArrayBuffer,
  usage: GPUBufferUsageFlags,
): GPUBuffer {
  const b = device.createBuffer({ label, size: Math.max(16, data.byteLength), usage, mappedAtCreation: true });
  new Uint8Array(b.getMappedRange()).set(new Uint8Array(data));
  b.unmap();
  return b;
}

/**
 * Builds one dispatch of `kernel`: its uniform buffer (appended to `owned`, which the plan
 * destroys with itself), its bind group and its grid.
 */
export function prepareDispatch<B extends string, P extends string>(
  device: GPUDevice,
  kernel: Kernel<B, P>,
  params: Record<P, number>,
  buffers: Record<Exclude<B, 'params'>, BufferSlice>,
  grid: Grid,
  owned: GPUBuffer[],
  wg?: number,
  variant?: Variant,
): Dispatch {
  const r = kernel.reflection();
  const entries: { binding: number; range: Bound }[] = [];
  if (r.uniform) {
    const uniform = constantBuffer(
      device,
      `${kernel.label}.params`,
      packUniform(kernel.label, r, params),
      GPUBufferUsage.UNIFORM,
    );
    owned.push(uniform);
    entries.push({ binding: r.bindings[r.uniform.name], range: { buffer: uniform, offset: 0, size: uniform.size } });
  }
  for (const name of kernel.bindings) {
    if (name === r.uniform?.name) continue;
    const s = buffers[name as Exclude<B, 'params'>];
    // A validated Range is kept as the same object, so that a swap finds it by identity.
    const offset = s.offset ?? 0;
    const range =
      s.offset === undefined || s.size === undefined
        ? { buffer: s.buffer, offset, size: s.size ?? s.buffer.size - offset }
        : (s as Bound);
    entries.push({ binding: r.bindings[name], range });
  }
  const pipeline = kernel.pipeline(device, wg, variant);
  const layout = pipeline.getBindGroupLayout(0);
  const label = `${kernel.label}.bindings`;
  const entry = (binding: number, r: Bound): GPUBindGroupEntry => ({
    binding,
    resource: { buffer: r.buffer, offset: r.offset, size: r.size },
  });
  const bindGroup = device.createBindGroup({ label, layout, entries: entries.map((e) => entry(e.binding, e.range)) });
  const rebound = new Map<string, GPUBindGroup>();
  return {
    label: kernel.label,
    pipeline,
    bindGroup,
    grid: [grid[0], grid[1] ?? 1, grid[2] ?? 1],
    bindGroupFor(swap) {
      let key = '';
      for (const e of entries) {
        const r = swap.get(e.range);
        if (r) key += `${e.binding}:${bufferId(r.buffer)}@${r.offset};`;
      }
      if (!key) return bindGroup;
      let bg = rebound.get(key);
      if (bg) rebound.delete(key);
      else {
        bg = device.createBindGroup({
          label,
          layout,
          entries: entries.map((e) => entry(e.binding, swap.get(e.range) ?? e.range)),
        });
        if (rebound.size >= BIND_GROUP_CACHE_SIZE) rebound.delete(rebound.keys().next().value!);
      }
      rebound.set(key, bg);
      return bg;
    },
  };
}

/** Encodes dispatches in order into an open pass, with `swap`'s buffers in place of the planned ones. */
export function encodeDispatches(
  pass: GPUComputePassEncoder,
  dispatches: readonly Dispatch[],
  swap?: ReadonlyMap<Bound, Bound> | null,
): void {
  for (const d of dispatches) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, swap?.size ? d.bindGroupFor(swap) : d.bindGroup);
    pass.dispatchWorkgroups(d.grid[0], d.grid[1], d.grid[2]);
  }
}

/** Splits `n` workgroups over x and y so that neither exceeds the device's per-dimension limit. */
export function gridFor(device: GPUDevice, n: number): [number, number] {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(Math.max(1, n), max);
  return [x, Math.ceil(Math.max(1, n) / x)];
}
