/**
 * Synchronized batch norm, the GPU side of a step: the export of a shard's partials (a copy that the
 * host reads once submitted) and the import of the merged values (written to a step-owned buffer
 * that the finalize pass reads as one partial per channel), and the codecs between the partials'
 * float32 layout and the host's float64 ShardStats / ShardGradSums (src/sync.ts merges those).
 */
import { CallOrderError, DestroyedError } from '../errors.js';
import { readFloats } from '../gpu/buffers.js';
import type { Reduced } from '../plan/sequences.js';
import { mergeGradSums, mergeStats, type ShardGradSums, type ShardStats } from '../sync.js';
import type { Range } from '../validate/buffers.js';

export type Exchange = 'statistics' | 'gradient-sums';

/** Bytes per partial: vec4 (n, mean_v, M2, pivot) for statistics, vec2 (Σdy, Σdy·(x−mean)) for gradient sums. */
const UNIT: Record<Exchange, number> = { statistics: 16, 'gradient-sums': 8 };

/** A step's export and import buffers (made on first use, destroyed with the step). */
export class ShardPort {
  private readonly buffers = new Map<string, GPUBuffer>();
  private readonly exported = new Map<Exchange, number>();

  constructor(
    private readonly device: GPUDevice,
    private readonly label: string,
    private readonly C: number,
    private readonly owned: GPUBuffer[],
  ) {}

  private buffer(what: string, bytes: number, readable: boolean): Range {
    let b = this.buffers.get(what);
    if (!b) {
      b = this.device.createBuffer({
        label: `${this.label}.${what}`,
        size: Math.max(16, bytes),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | (readable ? GPUBufferUsage.COPY_SRC : 0),
      });
      this.owned.push(b);
      this.buffers.set(what, b);
    }
    return { buffer: b, offset: 0, size: b.size };
  }

  /** Copies a reduction's partials (slices × C) to the export buffer, after the encoded reduction. */
  encodeExport(encoder: GPUCommandEncoder, what: Exchange, reduced: Reduced): void {
    const bytes = reduced.slices * this.C * UNIT[what];
    const out = this.buffer(`${what}.export`, bytes, true);
    encoder.copyBufferToBuffer(reduced.partials.buffer, reduced.partials.offset, out.buffer, 0, bytes);
    this.exported.set(what, reduced.slices);
  }

  /** This shard's statistics or gradient sums over `count` values, from the last submitted export. */
  async read(what: 'statistics', count: number, destroyed: boolean): Promise<ShardStats>;
  async read(what: 'gradient-sums', count: number, destroyed: boolean): Promise<ShardGradSums>;
  async read(what: Exchange, count: number, destroyed: boolean): Promise<ShardStats | ShardGradSums> {
    if (destroyed) throw new DestroyedError(`step ${this.label} was destroyed; plan a new one`);
    const slices = this.exported.get(what);
    const b = this.buffers.get(`${what}.export`);
    const name = what === 'statistics' ? 'Statistics' : 'GradientSums';
    if (slices === undefined || !b)
      throw new CallOrderError('E_NO_FORWARD', `read${name}() needs encode${name}(encoder) first, submitted`);
    const parts = await readFloats(this.device, { buffer: b }, (slices * this.C * UNIT[what]) / 4);
    return what === 'statistics'
      ? statsFromPartials(parts, this.C, slices, count)
      : gradSumsFromPartials(parts, this.C, slices, count);
  }

  /** The merged values as one partial per channel, written now (queue.writeBuffer) for the next encode. */
  import(what: Exchange, merged: ShardStats | ShardGradSums): Reduced {
    const imported = this.buffer(`${what}.import`, 16 * this.C, false);
    const data =
      what === 'statistics' ? partialsFromStats(merged as ShardStats) : partialsFromGradSums(merged as ShardGradSums);
    this.device.queue.writeBuffer(imported.buffer, 0, data);
    return { partials: imported, slices: 1, ghosts: 1 };
  }
}

/**
 * A shard's statistics from the partials its statistics pass left on the GPU: `slices` vec4
 * (n, mean_v, M2, pivot) per channel, index s·C + c, merged in slice order as shards are.
 */
function statsFromPartials(parts: Float32Array, C: number, slices: number, count: number): ShardStats {
  const at = (s: number, c: number, k: number) => parts[4 * (s * C + c) + k];
  const bySlice = Array.from({ length: slices }, (_, s) => ({
    count: at(s, 0, 0),
    mean: Float64Array.from({ length: C }, (_, c) => at(s, c, 3) + at(s, c, 1)),
    m2: Float64Array.from({ length: C }, (_, c) => at(s, c, 2)),
  }));
  return { ...mergeStats(bySlice), count };
}

/**
 * Merged statistics as the finalize pass reads one partial per channel: (n, mean − pivot, M2,
 * pivot), pivot = the mean rounded to float32, so the mean keeps float64's digits in two floats.
 */
function partialsFromStats(s: ShardStats): Float32Array<ArrayBuffer> {
  const C = s.mean.length;
  const out = new Float32Array(4 * C);
  for (let c = 0; c < C; c++) {
    const pivot = Math.fround(s.mean[c]);
    out.set([s.count, s.mean[c] - pivot, s.m2[c], pivot], 4 * c);
  }
  return out;
}

/** A shard's gradient sums from the partials its gradient-sums pass left: `slices` vec2 per channel. */
function gradSumsFromPartials(parts: Float32Array, C: number, slices: number, count: number): ShardGradSums {
  const at = (s: number, c: number, k: number) => parts[2 * (s * C + c) + k];
  const bySlice = Array.from({ length: slices }, (_, s) => ({
    count: 1,
    sumDy: Float64Array.from({ length: C }, (_, c) => at(s, c, 0)),
    sumDyXmu: Float64Array.from({ length: C }, (_, c) => at(s, c, 1)),
  }));
  return { ...mergeGradSums(bySlice), count };
}

/** Merged gradient sums as the backward finalize pass reads one partial per channel (with room for the coefficients it writes). */
function partialsFromGradSums(s: ShardGradSums): Float32Array<ArrayBuffer> {
  const C = s.sumDy.length;
  const out = new Float32Array(4 * C);
  for (let c = 0; c < C; c++) out.set([s.sumDy[c], s.sumDyXmu[c]], 2 * c);
  return out;
}
