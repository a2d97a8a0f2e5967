/** Trains one variant on the GPU and records what the charts show. */
import { readFloats } from '../../src/gpu/buffers';
import { PIXELS, rng, Sampler, type Dataset } from './data';
import { buffer, submit, type Layer, type Param } from './layers';
import { encodeSgd, encodeSoftmaxXent } from './kernels';
import { buildModel, type Model } from './model';
import { bnOptions, type Settings, type Variant } from './variants';

export interface History {
  loss: number[];
  testSteps: number[];
  testAccuracy: number[];
  /** 15th, 50th and 85th percentiles of the watched unit's input, every `logEvery` steps. */
  percentiles: { step: number; p15: number; p50: number; p85: number }[];
  paramNorm: { step: number; value: number }[];
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];

export class Run {
  readonly history: History = { loss: [], testSteps: [], testAccuracy: [], percentiles: [], paramNorm: [] };
  step = 0;
  private model: Model;
  private sampler: Sampler;
  private xHost: Float32Array<ArrayBuffer>; private yHost: Float32Array<ArrayBuffer>;
  private x: GPUBuffer; private y: GPUBuffer;
  private head = new Map<number, { loss: GPUBuffer; dlogits: GPUBuffer; correct: GPUBuffer }>();
  private params: Param[];

  constructor(private device: GPUDevice, private data: Dataset, readonly variant: Variant, settings: Settings, readonly logEvery = 10) {
    const seed = settings.seed;
    this.model = buildModel(device, { arch: variant.arch, norm: variant.norm, bnOptions: bnOptions(settings, variant), seed }, variant.name.replace(/\s+/g, '_'));
    // The same data stream for every variant with the same sampling and batch size.
    this.sampler = new Sampler(data, variant.sampling, rng(seed + 1));
    const B = variant.batchSize;
    this.xHost = new Float32Array(B * PIXELS);
    this.yHost = new Float32Array(B);
    this.x = buffer(device, `${variant.name}.x`, B * PIXELS);
    this.y = buffer(device, `${variant.name}.labels`, B);
    this.params = this.model.layers.flatMap((l) => l.params());
  }

  private lossHead(B: number) {
    let h = this.head.get(B);
    if (!h) this.head.set(B, (h = { loss: buffer(this.device, 'loss', B), dlogits: buffer(this.device, 'dlogits', B * 10), correct: buffer(this.device, 'correct', B) }));
    return h;
  }

  private async forward(x: GPUBuffer, B: number, training: boolean): Promise<GPUBuffer[]> {
    const outs: GPUBuffer[] = [];
    let h = x;
    for (const l of this.model.layers) outs.push((h = await l.forward(h, B, training)));
    return outs;
  }

  /** One SGD step on the next minibatch; returns the batch's mean loss. */
  async trainStep(): Promise<number> {
    const B = this.variant.batchSize;
    this.sampler.next(B, this.xHost, this.yHost);
    this.device.queue.writeBuffer(this.x, 0, this.xHost);
    this.device.queue.writeBuffer(this.y, 0, this.yHost);
    const outs = await this.forward(this.x, B, true);
    const head = this.lossHead(B);
    submit(this.device, 'loss', (p) => encodeSoftmaxXent(this.device, p, B, 10, outs[outs.length - 1], this.y, head.loss, head.dlogits, head.correct));
    let g: GPUBuffer | null = head.dlogits;
    const layers: Layer[] = this.model.layers;
    for (let i = layers.length - 1; i >= 0; i--) g = await layers[i].backward(g!, B, i > 0);
    submit(this.device, 'sgd', (p) => { for (const q of this.params) encodeSgd(this.device, p, q.count, this.variant.lr, q.grad, q.value); });
    const losses = await readFloats(this.device, { buffer: head.loss }, B);
    const loss = losses.reduce((a, b) => a + b, 0) / B;
    this.history.loss.push(loss);
    this.step += 1;
    if (this.step % this.logEvery === 0 || this.step === 1) await this.watch(outs[this.model.monitor], B);
    return loss;
  }

  /** Figure 1 (b, c): percentiles of the watched unit's input; and the parameters' norm. */
  private async watch(monitorOut: GPUBuffer, B: number): Promise<void> {
    const W = this.model.monitorWidth;
    const v = await readFloats(this.device, { buffer: monitorOut }, B * W);
    const unit = Array.from({ length: B }, (_, b) => v[b * W]).sort((a, b) => a - b);
    this.history.percentiles.push({ step: this.step, p15: quantile(unit, 0.15), p50: quantile(unit, 0.5), p85: quantile(unit, 0.85) });
    this.history.paramNorm.push({ step: this.step, value: await this.paramNorm() });
  }

  async paramNorm(): Promise<number> {
    let s = 0;
    for (const p of this.params) for (const v of await readFloats(this.device, { buffer: p.value }, p.count)) s += v * v;
    return Math.sqrt(s);
  }

  /** Accuracy on the held-out test split, in inference mode (running statistics). */
  async evaluate(batch = 250): Promise<number> {
    const n = this.data.testY.length;
    const x = buffer(this.device, 'test.x', batch * PIXELS), y = buffer(this.device, 'test.labels', batch);
    let correct = 0;
    for (let start = 0; start < n; start += batch) {
      const B = Math.min(batch, n - start);
      this.device.queue.writeBuffer(x, 0, this.data.testX.subarray(start * PIXELS, (start + B) * PIXELS));
      this.device.queue.writeBuffer(y, 0, Float32Array.from(this.data.testY.subarray(start, start + B)));
      const outs = await this.forward(x, B, false);
      const head = this.lossHead(B);
      submit(this.device, 'test.loss', (p) => encodeSoftmaxXent(this.device, p, B, 10, outs[outs.length - 1], y, head.loss, head.dlogits, head.correct));
      for (const c of await readFloats(this.device, { buffer: head.correct }, B)) correct += c;
    }
    x.destroy();
    y.destroy();
    const acc = correct / n;
    this.history.testSteps.push(this.step);
    this.history.testAccuracy.push(acc);
    return acc;
  }

  destroy(): void {
    for (const l of this.model.layers) l.destroy();
    for (const h of this.head.values()) for (const b of Object.values(h)) b.destroy();
    this.x.destroy();
    this.y.destroy();
  }
}
