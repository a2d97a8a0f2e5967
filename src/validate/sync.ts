/**
 * Checks of synchronized batch norm's arguments, shared by the GPU and CPU modules: the whole
 * batch a shard belongs to, and the merged values the all-reduce hands back.
 */
import { OptionError, ShapeError } from '../errors.js';
import type { ShardGradSums, ShardStats } from '../sync.js';
import { checkKeys, checkObject, describe } from './args.js';

/**
 * A validated `sync` (plan() or forwardSync): the whole batch, at least this shard's N, whose count
 * per channel a GPU index can hold (`perSample` values per channel in each sample).
 */
export function checkSyncBatch(sync: unknown, N: number, perSample: number): number {
  const o = checkObject<{ batch: number }>('sync', sync);
  checkKeys('sync', o, ['batch']);
  if (typeof o.batch !== 'number' || !Number.isSafeInteger(o.batch) || o.batch < N)
    throw new OptionError(
      `sync.batch must be the whole batch's sample count, an integer >= this shard's N = ${N}; got ${describe(o.batch)}`,
    );
  const M = o.batch * perSample;
  if (!Number.isSafeInteger(M) || M > 2 ** 32 - 1)
    throw new ShapeError(`sync.batch ${o.batch} gives more values per channel than a GPU index can count`);
  return o.batch;
}

/**
 * Merged shard statistics (or gradient sums) for a step of C channels over the whole batch's M
 * values per channel: what the all-reduce returned, checked before it reaches the GPU.
 */
export function checkMerged<T extends ShardStats | ShardGradSums>(
  merged: T | undefined,
  C: number,
  M: number,
  from: string,
  keys: readonly string[],
): T {
  if (typeof merged !== 'object' || merged === null)
    throw new OptionError(
      `a synchronized step in training needs the whole batch's merged values (${from} of every shard's export); got ${describe(merged)}`,
    );
  const r = merged as unknown as Record<string, unknown>;
  for (const k of keys) {
    const a = r[k];
    if (!(a instanceof Float64Array || a instanceof Float32Array || Array.isArray(a)) || a.length !== C)
      throw new ShapeError(`merged ${k} must hold ${C} numbers (one per channel); got ${describe(a)}`);
  }
  if (r.count !== M)
    throw new ShapeError(
      `merged values count ${describe(r.count)} values per channel, but the step was planned for a whole batch of ${M} (sync.batch × spatial); merge every shard once`,
    );
  return merged;
}
