/**
 * Plans: validate once, encode many. A plan holds everything that depends only on the shape,
 * layout, dtype and options of a call: the kernels chosen from the dispatch table, their geometry,
 * uniform buffers and bind groups (made once), the workspace, and the buffers it was made with
 * (which each encode may replace, see pass.ts).
 *
 * validate → plan → encode: each function takes the description validate/functional.ts returns
 * for its arguments and builds the dispatches (sequences.ts); nothing here checks an argument.
 */
import { constantBuffer } from '../gpu/kernel.js';
import { FinalizeFlags } from '../kernels/statistics.js';
import { STEP_BYTES } from '../kernels/step.js';
import { EvalFlags } from '../kernels/normalise.js';
import { geometry, type Layout } from '../layout.js';
import { OptionError } from '../errors.js';
import { describe } from '../validate/args.js';
import type { Range } from '../validate/buffers.js';
import { validateBackward, validateForwardEval, validateForwardTrain } from '../validate/functional.js';
import { checkDevice } from '../validate/tensors.js';
import type {
  BackwardParams,
  BackwardTensors,
  ForwardEvalParams,
  ForwardEvalTensors,
  ForwardTrainParams,
  ForwardTrainTensors,
} from './params.js';
import { PassPlan } from './pass.js';
import {
  backwardDispatches,
  forwardEvalDispatches,
  forwardTrainDispatches,
  kernelPlan,
  workspaceBytes,
  type KernelPlan,
} from './sequences.js';
import { DEFAULT_TABLE, type KernelTable } from './table.js';

/** The caller's workspace, or a buffer of the plan's own (COPY_SRC: a synchronized step copies its partials out). */
export function workspaceFor(
  device: GPUDevice,
  s: KernelPlan,
  given: Range | null,
  owned: GPUBuffer[],
  label: string,
): Range {
  if (given) return given;
  const bytes = workspaceBytes(s.r);
  const b = device.createBuffer({
    label: `${label}.workspace`,
    size: bytes,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  });
  owned.push(b);
  return { buffer: b, offset: 0, size: bytes };
}

/** Training-mode forward: batch statistics, running update, y = normalised x. */
export function planForwardTrain(
  device: GPUDevice,
  params: ForwardTrainParams,
  table: KernelTable = DEFAULT_TABLE,
): PassPlan<ForwardTrainTensors> {
  const c = validateForwardTrain(device, params, table);
  const owned: GPUBuffer[] = [];
  const label = 'bn.forward_train';
  const workspace = workspaceFor(device, c.shape, c.workspace, owned, label);
  const { clip } = c;
  // The step's values as forward_finalize reads them: (count, factor, rmax, dmax, rmin), constants here.
  const step = constantBuffer(
    device,
    `${label}.step`,
    new Float32Array([
      0,
      c.momentum,
      clip?.rmax ?? 1,
      clip?.dmax ?? 0,
      clip ? (clip.rmin ?? 1 / clip.rmax) : 1,
      0,
      0,
      0,
    ]).buffer,
    GPUBufferUsage.UNIFORM,
  );
  owned.push(step);
  const flags =
    (c.tracked ? FinalizeFlags.UPDATE : 0) |
    (c.unbiased ? FinalizeFlags.UNBIASED : 0) |
    (clip ? FinalizeFlags.RENORM : 0) |
    (clip && !c.runningIsStd ? FinalizeFlags.RENORM_VAR : 0) |
    (c.outOfPlace ? FinalizeFlags.OUT_OF_PLACE : 0) |
    (c.affine ? FinalizeFlags.AFFINE : 0);
  const dispatches = forwardTrainDispatches(
    device,
    c.shape,
    { ...c.b, workspace, step: { buffer: step, offset: 0, size: STEP_BYTES } },
    c.eps,
    flags,
    owned,
  );
  return new PassPlan(device, label, dispatches, owned, c, ['workspace']);
}

/** Inference-mode forward: y = (x - running_mean)·gamma/sqrt(running_var + eps) + beta. */
export function planForwardEval(
  device: GPUDevice,
  params: ForwardEvalParams,
  table: KernelTable = DEFAULT_TABLE,
): PassPlan<ForwardEvalTensors> {
  const c = validateForwardEval(device, params, table);
  const owned: GPUBuffer[] = [];
  const flags = (c.affine ? EvalFlags.AFFINE : 0) | (c.runningIsStd ? EvalFlags.SPREAD_IS_STD : 0);
  const dispatches = forwardEvalDispatches(device, c.shape, c.b, c.eps, flags, owned);
  return new PassPlan(device, 'bn.forward_eval', dispatches, owned, c);
}

/** Backward: dx, and weightGrad/biasGrad when affine. */
export function planBackward(
  device: GPUDevice,
  params: BackwardParams,
  table: KernelTable = DEFAULT_TABLE,
): PassPlan<BackwardTensors> {
  const c = validateBackward(device, params, table);
  const owned: GPUBuffer[] = [];
  const workspace = workspaceFor(device, c.shape, c.workspace, owned, 'bn.backward');
  const dispatches = backwardDispatches(device, c.shape, { ...c.b, workspace }, c.batchStats, c.affine, owned);
  return new PassPlan(device, 'bn.backward', dispatches, owned, c, ['workspace']);
}

/** Bytes of the optional workspace for a tensor of `shape` in `layout`. */
export function workspaceByteLength(
  device: GPUDevice,
  layout: Layout | undefined,
  shape: readonly number[],
  table: KernelTable = DEFAULT_TABLE,
): number {
  checkDevice(device);
  if (typeof table !== 'object' || table === null || typeof (table as KernelTable).reduction !== 'function')
    throw new OptionError(
      `workspaceByteLength's fourth argument is a kernel table (leave it out); got ${describe(table)}`,
    );
  return workspaceBytes(kernelPlan(device, table, geometry(layout, shape)).r);
}
