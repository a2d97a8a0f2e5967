/**
 * The demo's layers on the GPU. Batch norm is the library's own BatchNorm module; dense,
 * convolution and activations are the small WGSL kernels in demo/shaders. Non-BN layers submit
 * their passes without waiting; the BatchNorm module's calls resolve once the GPU has run them.
 */
import { BatchNorm } from '../../src/batchnorm';
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

export function submit(device: GPUDevice, label: string, f: (pass: GPUComputePassEncoder) => void): void {
  const enc = device.createCommandEncoder({ label });
  const pass = enc.beginComputePass({ label });
  f(pass);
  pass.end();
  device.queue.submit([enc.finish({ label })]);
}

export interface Param { name: string; value: GPUBuffer; grad: GPUBuffer; count: number }

export interface Layer {
  readonly name: string;
  /** Output features per example. */
  readonly outSize: number;
  forward(x: GPUBuffer, B: number, training: boolean): Promise<GPUBuffer>;
  /** Returns dx, or null when `needInput` is false (the first layer). */
  backward(dy: GPUBuffer, B: number, needInput: boolean): Promise<GPUBuffer | null>;
  params(): Param[];
  destroy(): void;
}

/** Per-batch-size activation buffers, made on first use. */
class Buffers {
  private m = new Map<string, GPUBuffer>();
  constructor(private device: GPUDevice, private prefix: string) {}
  get(name: string, n: number): GPUBuffer {
    const key = `${name}:${n}`;
    let b = this.m.get(key);
    if (!b) this.m.set(key, (b = buffer(this.device, `${this.prefix}.${name}`, n)));
    return b;
  }
  destroy(): void { for (const b of this.m.values()) b.destroy(); }
}

/** Gaussian weights N(0, scale²), from the shared seeded stream so variants start identical. */
export function gaussian(random: () => number, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random()) * scale);
}

export class Dense implements Layer {
  readonly outSize: number;
  private w: GPUBuffer; private dw: GPUBuffer; private bias: GPUBuffer | null; private dbias: GPUBuffer | null;
  private bufs: Buffers; private x: GPUBuffer | null = null; private dummy: GPUBuffer;
  constructor(private device: GPUDevice, readonly name: string, private I: number, private O: number, hasBias: boolean, weights: Float32Array) {
    this.outSize = O;
    this.w = buffer(device, `${name}.weight`, weights);
    this.dw = buffer(device, `${name}.weight.grad`, I * O);
    this.bias = hasBias ? buffer(device, `${name}.bias`, O) : null;
    this.dbias = hasBias ? buffer(device, `${name}.bias.grad`, O) : null;
    this.dummy = buffer(device, `${name}.unused`, 4);
    this.bufs = new Buffers(device, name);
  }
  async forward(x: GPUBuffer, B: number): Promise<GPUBuffer> {
    this.x = x;
    const y = this.bufs.get('y', B * this.O);
    submit(this.device, `${this.name}.forward`, (p) => K.encodeDenseForward(this.device, p, B, this.I, this.O, x, this.w, this.bias, y, this.dummy));
    return y;
  }
  async backward(dy: GPUBuffer, B: number, needInput: boolean): Promise<GPUBuffer | null> {
    const dx = needInput ? this.bufs.get('dx', B * this.I) : null;
    submit(this.device, `${this.name}.backward`, (p) => {
      K.encodeDenseBackwardWeight(this.device, p, B, this.I, this.O, this.x!, dy, this.dw, this.dbias, this.dummy);
      if (dx) K.encodeDenseBackwardInput(this.device, p, B, this.I, this.O, dy, this.w, dx);
    });
    return dx;
  }
  params(): Param[] {
    const p: Param[] = [{ name: `${this.name}.weight`, value: this.w, grad: this.dw, count: this.I * this.O }];
    if (this.bias) p.push({ name: `${this.name}.bias`, value: this.bias, grad: this.dbias!, count: this.O });
    return p;
  }
  destroy(): void { for (const b of [this.w, this.dw, this.bias, this.dbias, this.dummy]) b?.destroy(); this.bufs.destroy(); }
}

/** 2-D convolution, NHWC, square kernel, stride and zero padding; per-example shape [H, W, Ci]. */
export class Conv2d implements Layer {
  readonly outSize: number;
  readonly Ho: number; readonly Wo: number;
  private w: GPUBuffer; private dw: GPUBuffer; private bias: GPUBuffer; private dbias: GPUBuffer;
  private bufs: Buffers; private x: GPUBuffer | null = null;
  constructor(private device: GPUDevice, readonly name: string, private H: number, private W: number, private Ci: number, private Co: number,
    private K: number, private stride: number, private pad: number, weights: Float32Array) {
    this.Ho = Math.floor((H + 2 * pad - K) / stride) + 1;
    this.Wo = Math.floor((W + 2 * pad - K) / stride) + 1;
    this.outSize = this.Ho * this.Wo * Co;
    this.w = buffer(device, `${name}.weight`, weights);
    this.dw = buffer(device, `${name}.weight.grad`, K * K * Ci * Co);
    this.bias = buffer(device, `${name}.bias`, Co);
    this.dbias = buffer(device, `${name}.bias.grad`, Co);
    this.bufs = new Buffers(device, name);
  }
  private shape(N: number): K.ConvShape {
    return { N, H: this.H, W: this.W, Ci: this.Ci, Ho: this.Ho, Wo: this.Wo, Co: this.Co, K: this.K, stride: this.stride, pad: this.pad };
  }
  async forward(x: GPUBuffer, B: number): Promise<GPUBuffer> {
    this.x = x;
    const y = this.bufs.get('y', B * this.outSize);
    submit(this.device, `${this.name}.forward`, (p) => K.encodeConv2dForward(this.device, p, this.shape(B), x, this.w, this.bias, y));
    return y;
  }
  async backward(dy: GPUBuffer, B: number, needInput: boolean): Promise<GPUBuffer | null> {
    const dx = needInput ? this.bufs.get('dx', B * this.H * this.W * this.Ci) : null;
    submit(this.device, `${this.name}.backward`, (p) => {
      K.encodeConv2dBackwardWeight(this.device, p, this.shape(B), this.x!, dy, this.dw, this.dbias);
      if (dx) K.encodeConv2dBackwardInput(this.device, p, this.shape(B), dy, this.w, dx);
    });
    return dx;
  }
  params(): Param[] {
    return [
      { name: `${this.name}.weight`, value: this.w, grad: this.dw, count: this.K * this.K * this.Ci * this.Co },
      { name: `${this.name}.bias`, value: this.bias, grad: this.dbias, count: this.Co },
    ];
  }
  destroy(): void { for (const b of [this.w, this.dw, this.bias, this.dbias]) b.destroy(); this.bufs.destroy(); }
}

export class Activation implements Layer {
  private bufs: Buffers; private y: GPUBuffer | null = null;
  constructor(private device: GPUDevice, readonly name: string, readonly outSize: number, private op: number) {
    this.bufs = new Buffers(device, name);
  }
  async forward(x: GPUBuffer, B: number): Promise<GPUBuffer> {
    const y = (this.y = this.bufs.get('y', B * this.outSize));
    submit(this.device, `${this.name}.forward`, (p) => K.encodeActivation(this.device, p, B * this.outSize, this.op, x, y));
    return y;
  }
  async backward(dy: GPUBuffer, B: number): Promise<GPUBuffer> {
    const dx = this.bufs.get('dx', B * this.outSize);
    submit(this.device, `${this.name}.backward`, (p) => K.encodeActivationBackward(this.device, p, B * this.outSize, this.op, this.y!, dy, dx));
    return dx;
  }
  params(): Param[] { return []; }
  destroy(): void { this.bufs.destroy(); }
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
  private bufs: Buffers; private x: GPUBuffer | null = null;
  constructor(device: GPUDevice, readonly name: string, private C: number, private spatial: number, options: BatchNormOptions, private mode: NormMode) {
    this.bn = new BatchNorm(device, C, options);
    this.outSize = C * spatial;
    this.bufs = new Buffers(device, name);
  }
  private shape(B: number): [number[], 'NC' | 'NHWC'] {
    return this.spatial === 1 ? [[B, this.C], 'NC'] : [[B, this.spatial, 1, this.C], 'NHWC'];
  }
  async forward(x: GPUBuffer, B: number, training: boolean): Promise<GPUBuffer> {
    this.x = x;
    const y = this.bufs.get('y', B * this.outSize);
    const [shape, layout] = this.shape(B);
    if (training && this.mode === 'moving') {
      // Update the moving averages from this batch, then normalise with them.
      await this.bn.train().forward(x, this.bufs.get('scratch', B * this.outSize), shape, layout);
      await this.bn.eval().forward(x, y, shape, layout);
      return y;
    }
    this.bn.train(training);
    await this.bn.forward(x, y, shape, layout);
    return y;
  }
  async backward(dy: GPUBuffer, B: number): Promise<GPUBuffer> {
    const dx = this.bufs.get('dx', B * this.outSize);
    await this.bn.backward(this.x!, dy, dx);
    return dx;
  }
  params(): Param[] {
    if (!this.bn.options.affine) return [];
    return [
      { name: `${this.name}.weight`, value: this.bn.weight, grad: this.bn.weightGrad, count: this.C },
      { name: `${this.name}.bias`, value: this.bn.bias, grad: this.bn.biasGrad, count: this.C },
    ];
  }
  destroy(): void { this.bn.destroy(); this.bufs.destroy(); }
}
