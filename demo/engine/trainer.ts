/**
 * Trains one variant on the GPU and records what the charts show. A training step is one command
 * buffer: forward through every layer (BatchNorm through its plans), the loss, backward, SGD, and
 * a copy of the batch's losses to a staging buffer; the host then waits once, to read the loss.
 */
import { readFloats } from '../../src/gpu/buffers';
import { encodeDispatches, type Dispatch } from '../../src/gpu/kernel';
import { PIXELS, rng, Sampler, type Dataset } from './data';
import { buffer, Conv2d, Norm, type Layer, type Param } from './layers';
import { prepareSgd, prepareSoftmaxXent } from './kernels';
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

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];

/** Test images per evaluation batch. */
const TEST_BATCH = 250;

/** Inputs, labels and the loss head for one batch size, with their prepared dispatches. */
interface Head {
  x: GPUBuffer;
  labels: GPUBuffer;
  loss: GPUBuffer;
  dlogits: GPUBuffer;
  correct: GPUBuffer;
  readback: GPUBuffer;
  xent: Dispatch | null;
}

export class Run {
  readonly history: History = { loss: [], testSteps: [], testAccuracy: [], percentiles: [], paramNorm: [] };
  step = 0;
  private model: Model;
  private sampler: Sampler;
  private xHost: Float32Array<ArrayBuffer>;
  private yHost: Float32Array<ArrayBuffer>;
  private heads = new Map<number, Head>();
  private params: Param[];
  private owned: GPUBuffer[] = [];
  private sgd: Dispatch[];

  constructor(
    private device: GPUDevice,
    private data: Dataset,
    readonly variant: Variant,
    settings: Settings,
    readonly logEvery = 10,
  ) {
    const seed = settings.seed;
    this.model = buildModel(
      device,
      {
        arch: variant.arch,
        norm: variant.norm,
        bnOptions: bnOptions(settings, variant),
        seed,
        initScale: variant.initScale,
      },
      variant.name.replace(/\s+/g, '_'),
    );
    // The same data stream for every variant with the same sampling and batch size.
    this.sampler = new Sampler(data, variant.sampling, rng(seed + 1));
    const B = variant.batchSize;
    this.xHost = new Float32Array(B * PIXELS);
    this.yHost = new Float32Array(B);
    this.params = this.model.layers.flatMap((l) => l.params());
    this.sgd = this.params.map((q) => prepareSgd(device, this.owned, q.count, variant.lr, q.grad, q.value));
  }

  private head(B: number): Head {
    let h = this.heads.get(B);
    if (!h) {
      const d = this.device,
        name = this.variant.name;
      const readback = d.createBuffer({
        label: `${name}.readback`,
        size: Math.max(16, B * 4),
        usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
      });
      h = {
        x: buffer(d, `${name}.x`, B * PIXELS),
        labels: buffer(d, `${name}.labels`, B),
        loss: buffer(d, `${name}.loss`, B),
        dlogits: buffer(d, `${name}.dlogits`, B * 10),
        correct: buffer(d, `${name}.correct`, B),
        readback,
        xent: null,
      };
      this.heads.set(B, h);
    }
    return h;
  }

  /** Forward through every layer and the loss head; returns each layer's output. */
  private forward(
    enc: GPUCommandEncoder,
    h: Head,
    B: number,
    training: boolean,
    layers: readonly Layer[] = this.model.layers,
  ): GPUBuffer[] {
    const outs: GPUBuffer[] = [];
    let x = h.x;
    for (const l of layers) outs.push((x = l.forward(enc, x, B, training)));
    h.xent ??= prepareSoftmaxXent(this.device, this.owned, B, 10, x, h.labels, h.loss, h.dlogits, h.correct);
    const pass = enc.beginComputePass({ label: `${this.variant.name}.loss` });
    encodeDispatches(pass, [h.xent]);
    pass.end();
    return outs;
  }

  /** Copies `src` to the head's staging buffer in `enc`, submits, and reads it back. */
  private async submitAndRead(enc: GPUCommandEncoder, h: Head, src: GPUBuffer, B: number): Promise<Float32Array> {
    enc.copyBufferToBuffer(src, 0, h.readback, 0, B * 4);
    this.device.queue.submit([enc.finish({ label: `${this.variant.name}.step` })]);
    await h.readback.mapAsync(GPUMapMode.READ, 0, B * 4);
    const v = new Float32Array(h.readback.getMappedRange(0, B * 4).slice(0));
    h.readback.unmap();
    return v;
  }

  /** One SGD step on the next minibatch, as one command buffer; returns the batch's mean loss. */
  async trainStep(): Promise<number> {
    const B = this.variant.batchSize;
    const h = this.head(B);
    this.sampler.next(B, this.xHost, this.yHost);
    this.device.queue.writeBuffer(h.x, 0, this.xHost);
    this.device.queue.writeBuffer(h.labels, 0, this.yHost);
    const enc = this.device.createCommandEncoder({ label: `${this.variant.name}.step` });
    const outs = this.forward(enc, h, B, true);
    let g: GPUBuffer | null = h.dlogits;
    const layers = this.model.layers;
    for (let i = layers.length - 1; i >= 0; i--) g = layers[i].backward(enc, g!, B, i > 0);
    const sgd = enc.beginComputePass({ label: `${this.variant.name}.sgd` });
    encodeDispatches(sgd, this.sgd);
    sgd.end();
    const losses = await this.submitAndRead(enc, h, h.loss, B);
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
    this.history.percentiles.push({
      step: this.step,
      p15: quantile(unit, 0.15),
      p50: quantile(unit, 0.5),
      p85: quantile(unit, 0.85),
    });
    this.history.paramNorm.push({ step: this.step, value: await this.paramNorm() });
  }

  async paramNorm(): Promise<number> {
    let s = 0;
    for (const p of this.params)
      for (const v of await readFloats(this.device, { buffer: p.value }, p.count)) s += v * v;
    return Math.sqrt(s);
  }

  /** Accuracy on the held-out test split, in inference mode (running statistics). */
  async evaluate(): Promise<number> {
    const acc = await this.accuracy(this.model.layers);
    this.history.testSteps.push(this.step);
    this.history.testAccuracy.push(acc);
    return acc;
  }

  /**
   * Test accuracy of the network with every batch norm that follows a convolution folded into it
   * (bn.fold): the deployed form. Null where there is nothing to fold.
   */
  async evaluateFolded(): Promise<number | null> {
    const layers: Layer[] = [];
    const made: Layer[] = [];
    const src = this.model.layers;
    for (let i = 0; i < src.length; i++) {
      const [l, next] = [src[i], src[i + 1]];
      if (l instanceof Conv2d && next instanceof Norm) {
        const f = await l.folded(next);
        made.push(f);
        layers.push(f);
        i += 1;
      } else layers.push(l);
    }
    if (!made.length || layers.some((l) => l instanceof Norm)) {
      for (const l of made) l.destroy();
      return null;
    }
    try {
      return await this.accuracy(layers);
    } finally {
      for (const l of made) l.destroy();
    }
  }

  private async accuracy(layers: readonly Layer[]): Promise<number> {
    const n = this.data.testY.length;
    let correct = 0;
    for (let start = 0; start < n; start += TEST_BATCH) {
      const B = Math.min(TEST_BATCH, n - start);
      const h = this.head(B);
      this.device.queue.writeBuffer(h.x, 0, this.data.testX.subarray(start * PIXELS, (start + B) * PIXELS));
      this.device.queue.writeBuffer(h.labels, 0, Float32Array.from(this.data.testY.subarray(start, start + B)));
      const enc = this.device.createCommandEncoder({ label: `${this.variant.name}.test` });
      this.forward(enc, h, B, false, layers);
      for (const c of await this.submitAndRead(enc, h, h.correct, B)) correct += c;
    }
    return correct / n;
  }

  destroy(): void {
    for (const l of this.model.layers) l.destroy();
    for (const h of this.heads.values())
      for (const b of [h.x, h.labels, h.loss, h.dlogits, h.correct, h.readback]) b.destroy();
    for (const b of this.owned) b.destroy();
  }
}
