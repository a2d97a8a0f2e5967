/**
 * GPU timing. With 'timestamp-query', `reps` submissions (each `iters` back-to-back encodes between
 * two timestamps) are queued at once, so the GPU never idles between them and keeps its clocks up,
 * after a warm-up that keeps it busy for WARM_MS; the figure is the median submission. Without
 * timestamps each submission is timed alone by the wall clock, submit to onSubmittedWorkDone.
 * `profile` times each dispatch of a plan in a compute pass of its own.
 */
import { encodeDispatches, type Dispatch } from '../src/gpu/kernel';

/** Milliseconds of back-to-back GPU work before a timed batch. */
const WARM_MS = 300;

export const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

export class Timer {
  private qs: GPUQuerySet | null = null;
  private resolve: GPUBuffer | null = null;
  private read: GPUBuffer | null = null;
  constructor(private device: GPUDevice) {
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

  /** Median GPU milliseconds per iteration of `encode`, and the wall clock per iteration. */
  async time(
    encode: (e: GPUCommandEncoder) => void,
    iters: number,
    reps: number,
  ): Promise<{ ms: number; wallMs: number }> {
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
      return { ms: median(t), wallMs: median(t) };
    }
    this.ensureCapacity(2 * reps);
    const batch = async (): Promise<[number[], number]> => {
      const cbs = Array.from({ length: reps }, (_, r) => {
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
      const { wall, t } = await this.run(cbs, 2 * reps);
      return [
        Array.from({ length: reps }, (_, r) => Number(t[2 * r + 1] - t[2 * r]) / 1e6 / iters),
        wall / (reps * iters),
      ];
    };
    // Warm up until the GPU has been busy for WARM_MS in a row: a GPU that idled while the CPU
    // reference ran needs that long to raise its clocks (an H200 ran the same copy in 0.099 ms or
    // 0.246 ms depending on what ran before it).
    for (let busy = 0, k = 0; busy < WARM_MS && k < 50; k++)
      busy += (await batch())[0].reduce((a, b) => a + b, 0) * iters;
    const [ms, wall] = await batch();
    return { ms: median(ms), wallMs: wall };
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
