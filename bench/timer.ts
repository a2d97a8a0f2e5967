/**
 * GPU timing. With 'timestamp-query', `reps` submissions (each `iters` back-to-back encodes between
 * two timestamps) are queued at once, right behind a heater: copies of 256 MiB that keep the GPU
 * busy for `warmMs` in a row (1 s by default), so the timed batch starts at the clocks of
 * continuous work; the figure is the median submission. Without timestamps each submission is timed alone by the wall clock, submit to
 * onSubmittedWorkDone. `profile` times each dispatch of a plan in a compute pass of its own.
 */
import { encodeDispatches, type Dispatch } from '../src/gpu/kernel';
import { copyEncoder } from './copy';

export const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

export class Timer {
  private qs: GPUQuerySet | null = null;
  private resolve: GPUBuffer | null = null;
  private read: GPUBuffer | null = null;
  private heater: { encode: (e: GPUCommandEncoder) => void; ms: number; owned: GPUBuffer[] } | null = null;
  /** `warmMs`: milliseconds of continuous heater work queued before each timed batch. */
  constructor(
    private device: GPUDevice,
    readonly warmMs = 1000,
  ) {
    if (device.features.has('timestamp-query')) this.ensureCapacity(1);
  }

  get method(): 'timestamp' | 'wall' {
    return this.device.features.has('timestamp-query') ? 'timestamp' : 'wall';
  }

  private ensureCapacity(slots: number): void {
    if (this.qs && this.qs.count >= slots) return;
    for (const o of [this.qs, this.resolve, this.read]) o?.destroy();
    this.qs = this.device.createQuerySet({ label: 'bench.timestamps', type: 'timestamp', count: slots });
    this.resolve = this.device.createBuffer({
      label: 'bench.timestamps.resolve',
      size: 8 * slots,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.read = this.device.createBuffer({
      label: 'bench.timestamps.read',
      size: 8 * slots,
      usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
    });
  }

  /** Submits `cbs` at once; returns the wall time and the `slots` timestamps (ns). */
  private async run(cbs: GPUCommandBuffer[], slots: number): Promise<{ wall: number; t: BigUint64Array }> {
    const d = this.device;
    const t0 = performance.now();
    d.queue.submit(cbs);
    await d.queue.onSubmittedWorkDone();
    const wall = performance.now() - t0;
    const enc = d.createCommandEncoder({ label: 'bench.resolve' });
    enc.resolveQuerySet(this.qs!, 0, slots, this.resolve!, 0);
    enc.copyBufferToBuffer(this.resolve!, 0, this.read!, 0, 8 * slots);
    d.queue.submit([enc.finish({ label: 'bench.resolve' })]);
    await this.read!.mapAsync(GPUMapMode.READ, 0, 8 * slots);
    const t = new BigUint64Array(this.read!.getMappedRange(0, 8 * slots).slice(0));
    this.read!.unmap();
    return { wall, t };
  }

  /** The heater: one 256 MiB copy (two buffers of at most 128 MiB), timed once. */
  private async heat(): Promise<NonNullable<Timer['heater']>> {
    if (this.heater) return this.heater;
    const d = this.device;
    const bytes = Math.min(128 * 2 ** 20, d.limits.maxStorageBufferBindingSize) & ~15;
    const usage = GPUBufferUsage.STORAGE;
    const owned = [0, 1].map((i) => d.createBuffer({ label: `bench.heater${i}`, size: bytes, usage }));
    const encode = copyEncoder(d, owned[0], owned[1], bytes / 16, owned);
    this.heater = { encode, ms: 0, owned };
    // Its time per copy, from a timed batch of 8 (itself warmed by a first one).
    for (let k = 0; k < 2; k++) this.heater.ms = (await this.batchOf(encode, 8, 1, 0)).ms[0];
    return this.heater;
  }

  /**
   * `reps` command buffers of `iters` encodes between timestamps, submitted right behind `warmMs` of
   * heater work (encoded and submitted in chunks as it goes, the timed buffers encoded first so that
   * the GPU never waits for the host). Returns each buffer's ms per iteration, the wall time per
   * iteration, and how long the GPU had been busy with the heater when the batch began.
   */
  private async batchOf(
    encode: (e: GPUCommandEncoder) => void,
    iters: number,
    reps: number,
    warmMs: number,
  ): Promise<{ ms: number[]; wall: number; warm: number }> {
    const d = this.device;
    const slot = 2 * reps;
    this.ensureCapacity(slot + 1);
    const timed = Array.from({ length: reps }, (_, r) => {
      const enc = d.createCommandEncoder({ label: 'bench.timed' });
      enc
        .beginComputePass({
          label: 'bench.t0',
          timestampWrites: { querySet: this.qs!, beginningOfPassWriteIndex: 2 * r },
        })
        .end();
      for (let i = 0; i < iters; i++) encode(enc);
      enc
        .beginComputePass({
          label: 'bench.t1',
          timestampWrites: { querySet: this.qs!, endOfPassWriteIndex: 2 * r + 1 },
        })
        .end();
      return enc.finish({ label: 'bench.timed' });
    });
    const h = warmMs > 0 ? this.heater! : null;
    const copies = h ? Math.max(1, Math.ceil(warmMs / h.ms)) : 0;
    const CHUNK = 64;
    for (let k = 0; k < copies; k += CHUNK) {
      const enc = d.createCommandEncoder({ label: 'bench.heater' });
      if (k === 0)
        enc
          .beginComputePass({
            label: 'bench.heater.t',
            timestampWrites: { querySet: this.qs!, beginningOfPassWriteIndex: slot },
          })
          .end();
      for (let i = k; i < Math.min(copies, k + CHUNK); i++) h!.encode(enc);
      d.queue.submit([enc.finish({ label: 'bench.heater' })]);
    }
    const { wall, t } = await this.run(timed, copies ? slot + 1 : slot);
    return {
      ms: Array.from({ length: reps }, (_, r) => Number(t[2 * r + 1] - t[2 * r]) / 1e6 / iters),
      wall: wall / (reps * iters),
      warm: copies ? Number(t[0] - t[slot]) / 1e6 : 0,
    };
  }

  /**
   * Median GPU milliseconds per iteration of `encode`, the wall clock per iteration, and the heater
   * milliseconds the GPU had run, without a pause, when the timed batch began.
   */
  async time(
    encode: (e: GPUCommandEncoder) => void,
    iters: number,
    reps: number,
  ): Promise<{ ms: number; wallMs: number; warmMs: number }> {
    const d = this.device;
    if (this.method === 'wall') {
      const once = async () => {
        const enc = d.createCommandEncoder({ label: 'bench.timed' });
        for (let i = 0; i < iters; i++) encode(enc);
        const cb = enc.finish();
        const t0 = performance.now();
        d.queue.submit([cb]);
        await d.queue.onSubmittedWorkDone();
        return (performance.now() - t0) / iters;
      };
      await once();
      const t: number[] = [];
      for (let r = 0; r < reps; r++) t.push(await once());
      return { ms: median(t), wallMs: median(t), warmMs: 0 };
    }
    // The first batch compiles and settles; then the timed one, behind the heater: a GPU that idled
    // (while the CPU reference ran, say) needs continuous work to raise its clocks (an H200 ran the
    // same copy in 0.099 ms or 0.246 ms depending on what ran before it).
    // The wall clock is read on that first batch, which has no heater ahead of it in the queue.
    const { wall } = await this.batchOf(encode, iters, reps, 0);
    if (this.warmMs > 0) await this.heat();
    const r = await this.batchOf(encode, iters, reps, this.warmMs);
    return { ms: median(r.ms), wallMs: wall, warmMs: r.warm };
  }

  /** Frees the heater's buffers. */
  destroy(): void {
    for (const b of this.heater?.owned ?? []) b.destroy();
    this.heater = null;
  }

  /**
   * Median GPU milliseconds of each dispatch of `dispatches`, each in a compute pass of its own
   * between two timestamps, over `reps` runs (per-pass timestamps add a little to each).
   */
  async profile(dispatches: readonly Dispatch[], reps: number): Promise<number[]> {
    if (this.method === 'wall') return dispatches.map(() => NaN);
    const n = dispatches.length;
    this.ensureCapacity(2 * n);
    const samples: number[][] = dispatches.map(() => []);
    for (let r = 0; r < reps + 1; r++) {
      const enc = this.device.createCommandEncoder({ label: 'bench.profile' });
      dispatches.forEach((d, i) => {
        const pass = enc.beginComputePass({
          label: `bench.profile.${d.label}`,
          timestampWrites: { querySet: this.qs!, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
        });
        encodeDispatches(pass, [d]);
        pass.end();
      });
      const { t } = await this.run([enc.finish()], 2 * n);
      if (r > 0) dispatches.forEach((_, i) => samples[i].push(Number(t[2 * i + 1] - t[2 * i]) / 1e6)); // the first run warms up
    }
    return samples.map(median);
  }
}
