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
