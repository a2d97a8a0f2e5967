/**
 * Functional kernels: encode batch norm into the caller's GPUCommandEncoder, on the caller's
 * buffers and byte offsets. Nothing is submitted, so any WebGPU app can put batch norm between its
 * own passes.
 *
 * Each function is a thin layer over plans (plan/plans.ts): the first call with an argument set
 * validates it and builds the plan; later calls with the same arguments (the same buffers, offsets,
 * shape and options) reuse it, so a training loop creates no buffers or bind groups per step. Up
 * to PLAN_CACHE_SIZE plans are kept per device, least recently used first out; `planForwardTrain`
 * and friends give a plan of one's own instead.
 *
 * Per-channel state lives in three kinds of buffers:
 * - parameters and running statistics: C floats each (weight, bias, runningMean, runningVar);
 * - `stats`: statsByteLength(C) bytes, written by the forward pass and read by backward (the
 *   saved mean and invstd of PyTorch/cuDNN, plus Batch Renorm's r and d);
 * - an optional `workspace` of workspaceByteLength(...) bytes for the reductions' partials; each
 *   plan allocates its own when it is omitted.
 */
import {
  checkDevice,
  checkEncoder,
  planBackward,
  planForwardEval,
  planForwardTrain,
  type BackwardParams,
  type ForwardEvalParams,
  type ForwardTrainParams,
  type Plan,
} from './plan/plans.js';
import { argumentKey } from './plan/key.js';

/** Plans kept per device by the functional calls. */
export const PLAN_CACHE_SIZE = 64;

const caches = new WeakMap<GPUDevice, Map<string, Plan>>();
/** The cached plan for this argument set, or a new one (validated and built) that enters the cache. */
function cached<P>(kind: string, device: GPUDevice, p: P, make: (device: GPUDevice, p: P) => Plan): Plan {
  checkDevice(device);
  let cache = caches.get(device);
  if (!cache) caches.set(device, (cache = new Map()));
  const key = kind + argumentKey(p);
  let plan = cache.get(key);
  if (plan) {
    cache.delete(key); // re-insert: most recently used last
  } else {
    plan = make(device, p);
    // Evicted plans are dropped, not destroyed: a command buffer not yet submitted may still use them.
    if (cache.size >= PLAN_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  }
  cache.set(key, plan);
  return plan;
}

/** Training-mode forward: batch statistics, running update, y = normalised x. */
export function encodeForwardTrain(device: GPUDevice, encoder: GPUCommandEncoder, p: ForwardTrainParams): void {
  checkEncoder(encoder);
  cached('ft', device, p, planForwardTrain).encode(encoder);
}

/** Inference-mode forward: y = (x - running_mean)·gamma/sqrt(running_var + eps) + beta. */
export function encodeForwardEval(device: GPUDevice, encoder: GPUCommandEncoder, p: ForwardEvalParams): void {
  checkEncoder(encoder);
  cached('fe', device, p, planForwardEval).encode(encoder);
}

/** Backward: dx, and dweight/dbias when affine. */
export function encodeBackward(device: GPUDevice, encoder: GPUCommandEncoder, p: BackwardParams): void {
  checkEncoder(encoder);
  cached('bw', device, p, planBackward).encode(encoder);
}
