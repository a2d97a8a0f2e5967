/**
 * The demo's layers on the GPU. Batch norm is the library's BatchNorm module through its plans;
 * dense, convolution and activations are the small WGSL kernels in demo/shaders. Every layer
 * records into the training step's one command encoder and waits for nothing; its dispatches (and
 * the BatchNorm steps) are prepared once per batch size and input, so a step creates no GPU
 * objects.
 */
import { BatchNorm } from '../../src/module/batchnorm';
import { type BatchNormStep } from '../../src/module/step';
import { encodeDispatches, type Dispatch } from '../../src/gpu/kernel';
import type { BatchNormOptions } from '../../src/options';
import * as K from './kernels';

export const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function buffer(device: GPUDevice, label: string, data: Float32Array | number): GPUBuffer {
  const n = typeof data === 'number' ? data : data.length;
  const buf = device.createBuffer({ label, size: Math.max(16, n * 4), usage: STORAGE(), mappedAtCreation: true });
  if (typeof data !== 'number') new Float32Array(buf.getMappedRange()).set(data);
  buf.unmap();
  return buf;
}

/** Records `dispatches` as one compute pass. */
export function pass(enc: GPUCommandEncoder, label: string, dispatches: readonly Dispatch[]): void {
  const p = enc.beginComputePass({ label });
  encodeDispatches(p, dispatches);
  p.end();
}

/** Runs `dispatches` in a command buffer of their own (the layer tests). */
export function submit(device: GPUDevice, label: string, dispatches: readonly Dispatch[]): void {
  const enc = device.createCommandEncoder({ label });
  pass(enc, label, dispatches);
  device.queue.submit([enc.finish({ label })]);
}

export interface Param {
  name: string;
  value: GPUBuffer;
  grad: GPUBuffer;
  count: number;
}

export interface Layer {
  readonly name: string;
  /** Output features per example. */
  readonly outSize: number;
  /** Records forward of a batch of B examples in `x`; returns the output buffer. */
  forward(enc: GPUCommandEncoder, x: GPUBuffer, B: number, training: boolean): GPUBuffer;
  /** Records backward; returns dx, or null when `needInput` is false (the first layer). */
  backward(enc: GPUCommandEncoder, dy: GPUBuffer, B: number, needInput: boolean): GPUBuffer | null;
  params(): Param[];
  destroy(): void;
}

const ids = new WeakMap<GPUBuffer, number>();
let nextId = 1;
const id = (b: GPUBuffer) => ids.get(b) ?? (ids.set(b, nextId), nextId++);

/** Per-batch-size buffers and prepared dispatches of one layer, made on first use. */
class Prepared {
  private bufs = new Map<string, GPUBuffer>();
  private dispatches = new Map<string, Dispatch[]>();
  readonly owned: GPUBuffer[] = [];
  constructor(
    private device: GPUDevice,
    private prefix: string,
  ) {}
  buffer(name: string, n: number): GPUBuffer {
    const key = `${name}:${n}`;
    let b = this.bufs.get(key);
    if (!b) this.bufs.set(key, (b = buffer(this.device, `${this.prefix}.${name}`, n)));
    return b;
  }
  /** The dispatches for `key` (name, batch size and bound buffers), prepared once. */
  get(key: (string | number | GPUBuffer)[], make: () => Dispatch[]): Dispatch[] {
    const k = key.map((v) => (typeof v === 'object' ? `#${id(v)}` : v)).join(':');
    let d = this.dispatches.get(k);
    if (!d) this.dispatches.set(k, (d = make()));
    return d;
  }
  destroy(): void {
    for (const b of [...this.bufs.values(), ...this.owned]) b.destroy();
  }
}

/** Gaussian weights N(0, scale²), from the shared seeded stream so variants start identical. */
export function gaussian(random: () => number, n: number, scale: number): Float32Array {
  return Float32Array.from(
    { length: n },
    () => Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random()) * scale,
  );
}

export class Dense implements Layer {
  readonly outSize: number;
  private w: GPUBuffer;
  private dw: GPUBuffer;
  private bias: GPUBuffer | null;
  private dbias: GPUBuffer | null;
  private p: Prepared;
  private x: GPUBuffer | null = null;
  private dummy: GPUBuffer;
  constructor(
    private device: GPUDevice,
    readonly name: string,
    private I: number,
    private O: number,
    hasBias: boolean,
    weights: Float32Array,
  ) {
    this.outSize = O;
    this.w = buffer(device, `${name}.weight`, weights);
    this.dw = buffer(device, `${name}.weight.grad`, I * O);
    this.bias = hasBias ? buffer(device, `${name}.bias`, O) : null;
    this.dbias = hasBias ? buffer(device, `${name}.bias.grad`, O) : null;
    this.dummy = buffer(device, `${name}.unused`, 4);
    this.p = new Prepared(device, name);
  }
  forward(enc: GPUCommandEncoder, x: GPUBuffer, B: number): GPUBuffer {
    this.x = x;
    const y = this.p.buffer('y', B * this.O);
    pass(
      enc,
      `${this.name}.forward`,
      this.p.get(['f', B, x], () => [
        K.prepareDenseForward(this.device, this.p.owned, B, this.I, this.O, x, this.w, this.bias, y, this.dummy),
      ]),
    );
    return y;
  }
  backward(enc: GPUCommandEncoder, dy: GPUBuffer, B: number, needInput: boolean): GPUBuffer | null {
    const dx = needInput ? this.p.buffer('dx', B * this.I) : null;
    const x = this.x!;
    pass(
      enc,
      `${this.name}.backward`,
      this.p.get(['b', B, x, dy, dx ? 1 : 0], () => [
        K.prepareDenseBackwardWeight(
          this.device,
          this.p.owned,
          B,
          this.I,
          this.O,
          x,
          dy,
          this.dw,
          this.dbias,
          this.dummy,
        ),
        ...(dx ? [K.prepareDenseBackwardInput(this.device, this.p.owned, B, this.I, this.O, dy, this.w, dx)] : []),
      ]),
    );
    return dx;
  }
  params(): Param[] {
    const p: Param[] = [{ name: `${this.name}.weight`, value: this.w, grad: this.dw, count: this.I * this.O }];
    if (this.bias) p.push({ name: `${this.name}.bias`, value: this.bias, grad: this.dbias!, count: this.O });
    return p;
  }
  destroy(): void {
    for (const b of [this.w, this.dw, this.bias, this.dbias, this.dummy]) b?.destroy();
    this.p.destroy();
  }
}

/** 2-D convolution, NHWC, square kernel, stride and zero padding; per-example shape [H, W, Ci]. */
export class Conv2d implements Layer {
  readonly outSize: number;
  readonly Ho: number;
  readonly Wo: number;
  private w: GPUBuffer;
  private dw: GPUBuffer;
  private bias: GPUBuffer;
  private dbias: GPUBuffer;
  private p: Prepared;
  private x: GPUBuffer | null = null;
  constructor(
    private device: GPUDevice,
    readonly name: string,
    private H: number,
    private W: number,
    private Ci: number,
    private Co: number,
    private K: number,
    private stride: number,
    private pad: number,
    weights: Float32Array,
  ) {
    this.Ho = Math.floor((H + 2 * pad - K) / stride) + 1;
    this.Wo = Math.floor((W + 2 * pad - K) / stride) + 1;
    this.outSize = this.Ho * this.Wo * Co;
    this.w = buffer(device, `${name}.weight`, weights);
    this.dw = buffer(device, `${name}.weight.grad`, K * K * Ci * Co);
    this.bias = buffer(device, `${name}.bias`, Co);
    this.dbias = buffer(device, `${name}.bias.grad`, Co);
    this.p = new Prepared(device, name);
  }
  private shape(N: number): K.ConvShape {
    return {
      N,
      H: this.H,
      W: this.W,
      Ci: this.Ci,
      Ho: this.Ho,
      Wo: this.Wo,
      Co: this.Co,
      K: this.K,
      stride: this.stride,
      pad: this.pad,
    };
  }
  forward(enc: GPUCommandEncoder, x: GPUBuffer, B: number): GPUBuffer {
    this.x = x;
    const y = this.p.buffer('y', B * this.outSize);
    pass(
      enc,
      `${this.name}.forward`,
      this.p.get(['f', B, x], () => [
        K.prepareConv2dForward(this.device, this.p.owned, this.shape(B), x, this.w, this.bias, y),
      ]),
    );
    return y;
  }
  backward(enc: GPUCommandEncoder, dy: GPUBuffer, B: number, needInput: boolean): GPUBuffer | null {
    const dx = needInput ? this.p.buffer('dx', B * this.H * this.W * this.Ci) : null;
    const x = this.x!;
    pass(
      enc,
      `${this.name}.backward`,
      this.p.get(['b', B, x, dy, dx ? 1 : 0], () => [
        K.prepareConv2dBackwardWeight(this.device, this.p.owned, this.shape(B), x, dy, this.dw, this.dbias),
        ...(dx ? [K.prepareConv2dBackwardInput(this.device, this.p.owned, this.shape(B), dy, this.w, dx)] : []),
      ]),
    );
    return dx;
  }
  /**
   * This convolution with `norm` (which follows it) folded in: a new layer whose output equals this
   * one's followed by the module in eval mode (the library's bn.fold, on the GPU).
   */
  async folded(norm: Norm): Promise<Conv2d> {
    const { device, H, W, Ci, Co, K, stride, pad } = this;
    const c = new Conv2d(
      device,
      `${this.name}+${norm.name}`,
      H,
      W,
      Ci,
      Co,
      K,
      stride,
      pad,
      new Float32Array(K * K * Ci * Co),
    );
    await norm.bn.fold({
      weight: this.w,
      weightShape: [K, K, Ci, Co],
      weightLayout: 'HWIO',
      bias: this.bias,
      weightOut: c.w,
      biasOut: c.bias,
    });
    return c;
  }
  params(): Param[] {
    return [
      { name: `${this.name}.weight`, value: this.w, grad: this.dw, count: this.K * this.K * this.Ci * this.Co },
      { name: `${this.name}.bias`, value: this.bias, grad: this.dbias, count: this.Co },
    ];
  }
  destroy(): void {
    for (const b of [this.w, this.dw, this.bias, this.dbias]) b.destroy();
    this.p.destroy();
  }
}

export class Activation implements Layer {
  private p: Prepared;
  private y: GPUBuffer | null = null;
  constructor(
    private device: GPUDevice,
    readonly name: string,
    readonly outSize: number,
    private op: number,
  ) {
    this.p = new Prepared(device, name);
  }
  forward(enc: GPUCommandEncoder, x: GPUBuffer, B: number): GPUBuffer {
    const y = (this.y = this.p.buffer('y', B * this.outSize));
    pass(
      enc,
      `${this.name}.forward`,
      this.p.get(['f', B, x], () => [K.prepareActivation(this.device, this.p.owned, B * this.outSize, this.op, x, y)]),
    );
    return y;
  }
  backward(enc: GPUCommandEncoder, dy: GPUBuffer, B: number): GPUBuffer {
    const dx = this.p.buffer('dx', B * this.outSize);
    const y = this.y!;
    pass(
      enc,
      `${this.name}.backward`,
      this.p.get(['b', B, y, dy], () => [
        K.prepareActivationBackward(this.device, this.p.owned, B * this.outSize, this.op, y, dy, dx),
      ]),
    );
    return dx;
  }
  params(): Param[] {
    return [];
  }
  destroy(): void {
    this.p.destroy();
  }
}

/**
 * 'batch': batch norm as it should be, batch statistics in training.
 * 'moving': the failure of the seed's section 5: training normalises with the moving averages
 * (treated as constants by backward) while they keep being updated from batch statistics.
 */
export type NormMode = 'batch' | 'moving';

/** The library's BatchNorm module as a layer; `spatial` is H·W for NHWC feature maps, 1 for [N, C]. */
export class Norm implements Layer {
  readonly bn: BatchNorm;
  readonly outSize: number;
  private p: Prepared;
  private x: GPUBuffer | null = null;
  private steps = new Map<string, BatchNormStep>();
  constructor(
    device: GPUDevice,
    readonly name: string,
    private C: number,
    private spatial: number,
    options: BatchNormOptions,
    private mode: NormMode,
  ) {
    this.bn = new BatchNorm(device, C, options);
    this.outSize = C * spatial;
    this.p = new Prepared(device, name);
  }
  /** The module's step on these buffers, planned once. */
  private step(
    kind: string,
    B: number,
    t: { x: GPUBuffer; y?: GPUBuffer; dy?: GPUBuffer; dx?: GPUBuffer },
  ): BatchNormStep {
    const key = [kind, B, ...Object.values(t).map(id)].join(':');
    let s = this.steps.get(key);
    if (!s) {
      const shape = this.spatial === 1 ? [B, this.C] : [B, this.spatial, 1, this.C];
      this.steps.set(key, (s = this.bn.plan({ shape, layout: this.spatial === 1 ? 'NC' : 'NHWC', ...t })));
    }
    return s;
  }
  forward(enc: GPUCommandEncoder, x: GPUBuffer, B: number, training: boolean): GPUBuffer {
    this.x = x;
    const y = this.p.buffer('y', B * this.outSize);
    if (training && this.mode === 'moving') {
      // Update the moving averages from this batch, then normalise with them.
      this.bn.train();
      this.step('scratch', B, { x, y: this.p.buffer('scratch', B * this.outSize) }).encodeForward(enc);
      this.bn.eval();
    } else {
      this.bn.train(training);
    }
    this.step('forward', B, { x, y }).encodeForward(enc);
    return y;
  }
  backward(enc: GPUCommandEncoder, dy: GPUBuffer, B: number): GPUBuffer {
    const dx = this.p.buffer('dx', B * this.outSize);
    this.step('backward', B, { x: this.x!, dy, dx }).encodeBackward(enc);
    return dx;
  }
  params(): Param[] {
    if (!this.bn.options.affine) return [];
    return [
      { name: `${this.name}.weight`, value: this.bn.weight, grad: this.bn.weightGrad, count: this.C },
      { name: `${this.name}.bias`, value: this.bn.bias, grad: this.bn.biasGrad, count: this.C },
    ];
  }
  destroy(): void {
    this.bn.destroy();
    this.p.destroy();
  }
}
