/**
 * Functional kernels: encode batch norm into the caller's GPUCommandEncoder, on the caller's
 * buffers and byte offsets. Nothing is submitted, so any WebGPU app can put batch norm between its
 * own passes.
 *
 * Each function is a thin layer over plans (plan/plans.ts): the first call with a shape, layout,
 * dtype, set of options and workspace validates it and builds the plan; later calls with the same
 * ones reuse it and bind their own tensors at encode time (validated each call), so a training loop
 * on rotating buffers creates no pipelines, uniforms or workspaces per step, and a bind group only
 * for a buffer set not among the last few. Up to PLAN_CACHE_SIZE plans are kept per device, least
 * recently used first out; `planForwardTrain` and friends give a plan of one's own instead.
 *
 * Per-channel state lives in three kinds of buffers:
 * - parameters and running statistics: C floats each (weight, bias, runningMean, runningVar);
 * - `stats`: statsByteLength(C) bytes, written by the forward pass and read by backward (the
 *   saved mean and invstd of PyTorch/cuDNN, plus Batch Renorm's r and d);
 * - an optional `workspace` of workspaceByteLength(...) bytes for the reductions' partials; each
 *   plan allocates its own when it is omitted.
 */
import { checkDevice, checkEncoder } from './validate/tensors.js';
import { planBackward, planForwardEval, planForwardTrain } from './plan/plans.js';
import { type BackwardParams, type ForwardEvalParams, type ForwardTrainParams } from './plan/params.js';
import { type Plan } from './plan/pass.js';
import { argumentKey } from './plan/key.js';
import type { TensorArg } from './validate/buffers.js';

/** Plans kept per device by the functional calls. */
export const PLAN_CACHE_SIZE = 64;

const caches = new WeakMap<GPUDevice, Map<string, Plan>>();
/** The tensors each kind binds at encode time (the workspace stays part of the plan). */
const TENSORS = {
  ft: ['x', 'y', 'z', 'stats', 'weight', 'bias', 'runningMean', 'runningVar', 'runningMeanOut', 'runningVarOut'],
  fe: ['x', 'y', 'z', 'stats', 'weight', 'bias', 'runningMean', 'runningVar'],
  bw: ['x', 'dy', 'dx', 'stats', 'weight', 'weightGrad', 'biasGrad', 'dweight', 'dbias', 'y', 'dz'],
} as const;

/** Deprecated parameter names, and the names plans bind them by. */
const ALIASES: Record<string, string> = { dweight: 'weightGrad', dbias: 'biasGrad' };

/**
 * Encodes the cached plan for this call's shape, options and workspace, or a new one (validated
 * and built) that enters the cache, on this call's tensors.
 */
function encodeCached<P extends object>(
  kind: keyof typeof TENSORS,
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  p: P,
  make: (device: GPUDevice, p: P) => Plan,
): void {
  checkDevice(device);
  checkEncoder(encoder);
  let cache = caches.get(device);
  if (!cache) caches.set(device, (cache = new Map()));
  const tensors: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  // A params object that is not plain goes to the plan whole, which refuses it.
  const plain = typeof p === 'object' && p !== null && Object.getPrototypeOf(p) === Object.prototype;
  if (plain) {
    for (const [k, v] of Object.entries(p)) {
      if ((TENSORS[kind] as readonly string[]).includes(k) && v !== undefined) {
        tensors[ALIASES[k] ?? k] = v;
        rest[k] = true; // which tensors a call passes is part of its plan
      } else rest[k] = v;
    }
  }
  const key = kind + argumentKey(plain ? rest : p);
  let plan = cache.get(key);
  if (plan) {
    cache.delete(key); // re-insert: most recently used last
  } else {
    plan = make(device, p);
    // Evicted plans are dropped, not destroyed: a command buffer not yet submitted may still use them.
    if (cache.size >= PLAN_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  }
  cache.set(key, plan);
  plan.encode(encoder, tensors as Record<string, TensorArg>);
}

/** Training-mode forward: batch statistics, running update, y = normalised x. */
export function encodeForwardTrain(device: GPUDevice, encoder: GPUCommandEncoder, p: ForwardTrainParams): void {
  encodeCached('ft', device, encoder, p, planForwardTrain);
}

/** Inference-mode forward: y = (x - running_mean)·gamma/sqrt(running_var + eps) + beta. */
export function encodeForwardEval(device: GPUDevice, encoder: GPUCommandEncoder, p: ForwardEvalParams): void {
  encodeCached('fe', device, encoder, p, planForwardEval);
}

/** Backward: dx, and weightGrad/biasGrad when affine. */
export function encodeBackward(device: GPUDevice, encoder: GPUCommandEncoder, p: BackwardParams): void {
  encodeCached('bw', device, encoder, p, planBackward);
}
