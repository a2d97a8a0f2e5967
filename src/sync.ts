/**
 * Synchronized batch norm across devices: the host side. Each shard (a device with its part of the
 * batch, split along N) exports per-channel statistics; `mergeStats` merges any number of shards
 * with Chan's formula, in their order, into the whole batch's; every shard then normalises with
 * those. Backward does the same with the two per-channel gradient sums (`mergeGradSums`). The
 * merges run in float64 on every shard from the same inputs in the same order, so every shard gets
 * the same bits.
 *
 * The library brings no transport: the caller moves the shards' exports between devices (worker
 * messages, several GPUDevices in one page, a socket) at the two all-reduce points, after the
 * statistics and after the gradient sums (see BatchNormStep and BatchNorm.forwardSync).
 */
import { OptionError, ShapeError } from './errors.js';
import { describe } from './validate/args.js';

/** One shard's per-channel statistics: its value count, and each channel's mean and M2 (Σ(x − mean)²). */
export interface ShardStats {
  count: number;
  mean: Float64Array;
  m2: Float64Array;
}

/**
 * One shard's per-channel gradient sums, Σdy and Σdy·(x − mean), with the mean the forward
 * normalised with (the merged one): additive across shards.
 */
export interface ShardGradSums {
  count: number;
  sumDy: Float64Array;
  sumDyXmu: Float64Array;
}

function checkShards<T extends object>(what: string, shards: unknown, keys: readonly (keyof T & string)[]): T[] {
  if (!Array.isArray(shards) || shards.length === 0)
    throw new OptionError(`${what} takes a non-empty array of shards; got ${describe(shards)}`);
  let C = -1;
  shards.forEach((s, i) => {
    if (typeof s !== 'object' || s === null)
      throw new OptionError(`${what}: shard ${i} is ${describe(s)}, not an object`);
    const r = s as Record<string, unknown>;
    if (typeof r.count !== 'number' || !Number.isSafeInteger(r.count) || r.count < 1)
      throw new OptionError(`${what}: shard ${i} has count ${describe(r.count)}; it must be a positive integer`);
    for (const k of keys) {
      const a = r[k];
      if (!(a instanceof Float64Array || a instanceof Float32Array || Array.isArray(a)))
        throw new OptionError(`${what}: shard ${i} has ${k} = ${describe(a)}; it must be an array of numbers`);
      if (C < 0) C = a.length;
      if (a.length !== C)
        throw new ShapeError(`${what}: shard ${i} has ${a.length} channels in ${k}; the first shard has ${C}`);
    }
  });
  return shards as T[];
}

/**
 * The whole batch's statistics from its shards': Chan's parallel merge of (count, mean, M2), in
 * shard order, in float64. NaN in any shard's channel makes that channel NaN (as on one device).
 */
export function mergeStats(shards: readonly ShardStats[]): ShardStats {
  const list = checkShards<ShardStats>('mergeStats', shards, ['mean', 'm2']);
  const C = list[0].mean.length;
  let count = list[0].count;
  const mean = Float64Array.from(list[0].mean);
  const m2 = Float64Array.from(list[0].m2);
  for (const s of list.slice(1)) {
    const n = count + s.count;
    for (let c = 0; c < C; c++) {
      const delta = s.mean[c] - mean[c];
      mean[c] += delta * (s.count / n);
      m2[c] += s.m2[c] + delta * delta * ((count * s.count) / n);
    }
    count = n;
  }
  return { count, mean, m2 };
}

/** The whole batch's gradient sums from its shards': sums in shard order, in float64. */
export function mergeGradSums(shards: readonly ShardGradSums[]): ShardGradSums {
  const list = checkShards<ShardGradSums>('mergeGradSums', shards, ['sumDy', 'sumDyXmu']);
  const C = list[0].sumDy.length;
  const out: ShardGradSums = { count: 0, sumDy: new Float64Array(C), sumDyXmu: new Float64Array(C) };
  for (const s of list) {
    out.count += s.count;
    for (let c = 0; c < C; c++) {
      out.sumDy[c] += s.sumDy[c];
      out.sumDyXmu[c] += s.sumDyXmu[c];
    }
  }
  return out;
}

/**
 * A shard's statistics from the partials its statistics pass left on the GPU: `slices` vec4
 * (n, mean_v, M2, pivot) per channel, index s·C + c, merged in slice order as shards are.
 */
export function statsFromPartials(parts: Float32Array, C: number, slices: number, count: number): ShardStats {
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
export function partialsFromStats(s: ShardStats): Float32Array<ArrayBuffer> {
  const C = s.mean.length;
  const out = new Float32Array(4 * C);
  for (let c = 0; c < C; c++) {
    const pivot = Math.fround(s.mean[c]);
    out.set([s.count, s.mean[c] - pivot, s.m2[c], pivot], 4 * c);
  }
  return out;
}

/** A shard's gradient sums from the partials its gradient-sums pass left: `slices` vec2 per channel. */
export function gradSumsFromPartials(parts: Float32Array, C: number, slices: number, count: number): ShardGradSums {
  const at = (s: number, c: number, k: number) => parts[2 * (s * C + c) + k];
  const bySlice = Array.from({ length: slices }, (_, s) => ({
    count: 1,
    sumDy: Float64Array.from({ length: C }, (_, c) => at(s, c, 0)),
    sumDyXmu: Float64Array.from({ length: C }, (_, c) => at(s, c, 1)),
  }));
  return { ...mergeGradSums(bySlice), count };
}

/** Merged gradient sums as the backward finalize pass reads one partial per channel (with room for the coefficients it writes). */
export function partialsFromGradSums(s: ShardGradSums): Float32Array<ArrayBuffer> {
  const C = s.sumDy.length;
  const out = new Float32Array(4 * C);
  for (let c = 0; c < C; c++) out.set([s.sumDy[c], s.sumDyXmu[c]], 2 * c);
  return out;
}
