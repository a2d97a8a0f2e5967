/**
 * A module step's tensors, checked as a whole before the step is made (`bn.plan()` and the awaited
 * calls): the geometry against the module's features and dtype, every binding, the sharing rules,
 * a synchronized shard's batch, the ghost split, and the kernels' workspaces against the device's
 * limits. Returns the typed description module/step.ts builds from.
 */
import { LimitError, OptionError } from '../errors.js';
import type { Geometry } from '../layout.js';
import type { ResolvedOptions } from '../options.js';
import { statsByteLength } from '../plan/params.js';
import { kernelPlan, workspaceBytes, type KernelPlan } from '../plan/sequences.js';
import type { KernelTable } from '../plan/table.js';
import { kernelView } from '../module/rules.js';
import type { StepBindings, StepTensors } from '../module/types.js';
import { checkKeys, checkObject } from './args.js';
import { bufferRange, checkNotModuleState, checkSharing } from './buffers.js';
import { checkSyncBatch } from './sync.js';
import { checkWorkspaceLimit, epilogueGradRanges, residualRange, tensorBytes, tensorGeometry } from './tensors.js';

/** What a step's checks need of its module. */
export interface StepOwner {
  readonly device: GPUDevice;
  readonly name: string;
  readonly numFeatures: number;
  readonly options: ResolvedOptions;
  readonly table: KernelTable;
  /** Refuses a tensor of other features than the module's (module/base.ts). */
  checkFeatures(g: Geometry): void;
}

export interface StepCall {
  /** The kernels' view of the tensors (a per-activation module's [N, C·spatial]). */
  readonly g: Geometry;
  /** The kernels of the step, and of its batch statistics over ghost batches (the same without). */
  readonly shape: KernelPlan;
  readonly ghostShape: KernelPlan;
  readonly ghosts: number;
  /** The bindings, but for the ghosts' saved statistics, which the module owns. */
  readonly bindings: Omit<StepBindings, 'stats'>;
  /** Identifies the forward a backward must differentiate: layout and shape. */
  readonly key: string;
}

export function validateStep(m: StepOwner, tensors: unknown): StepCall {
  const t = checkObject<StepTensors>('plan tensors', tensors);
  checkKeys('plan()', t, ['shape', 'layout', 'x', 'y', 'dy', 'dx', 'z', 'dz', 'sync'], 'tensor');
  const { device } = m;
  const { dtype, epilogue } = m.options;
  const given = tensorGeometry(device, t.layout, t.shape, dtype);
  m.checkFeatures(given);
  const g = kernelView(given, m.options.perActivation);
  const bytes = tensorBytes(g);
  const x = bufferRange(device, 'x', t.x, bytes);
  const y = t.y === undefined ? null : bufferRange(device, 'y', t.y, bytes);
  if ((t.dy === undefined) !== (t.dx === undefined))
    throw new OptionError('pass dy and dx together (a step with backward), or neither (forward only)');
  if (!y && t.dy === undefined)
    throw new OptionError('plan() needs y (to encode forward), dy and dx (to encode backward), or all three');
  if (epilogue && t.dy !== undefined && !y)
    throw new OptionError(
      `with epilogue '${epilogue}', backward reads the forward's output y (its sign is the relu's mask): plan the step with y`,
    );
  // A step that only runs backward (the awaited backward's) needs no residual.
  const z = epilogue === 'add_relu' && t.z === undefined ? null : residualRange(device, epilogue, t.z, bytes);
  const e = t.dy === undefined ? null : epilogueGradRanges(device, epilogue, epilogue ? t.y : undefined, t.dz, bytes);
  if (t.dy === undefined && t.dz !== undefined)
    throw new OptionError('dz belongs to a step with backward: pass it with dy and dx');
  const grads =
    t.dy === undefined
      ? null
      : { dy: bufferRange(device, 'dy', t.dy, bytes), dx: bufferRange(device, 'dx', t.dx, bytes), dz: e!.dz };
  const outputs = {
    ...(y ? { y } : {}),
    ...(grads ? { dx: grads.dx } : {}),
    ...(epilogue === 'add_relu' && grads ? { dz: grads.dz } : {}),
  };
  const inputs = { x, ...(grads ? { dy: grads.dy } : {}), ...(z && epilogue === 'add_relu' ? { z } : {}) };
  checkSharing(outputs, inputs);
  checkNotModuleState(outputs, { ...inputs, ...outputs }, m.name);
  const N = g.shape[0];
  const batch = t.sync === undefined ? null : checkSyncBatch(t.sync, N, g.M / N);
  const k = m.options.virtualBatchSize;
  if (batch !== null && k !== null)
    throw new OptionError(
      'ghost batches (virtualBatchSize) are per device: a synchronized step normalises the whole batch; use one or the other',
    );
  // Ghost batches exist only where N is a multiple of k; elsewhere the step can still run in inference.
  const ghosts = k !== null && N % k === 0 ? N / k : 1;
  const shape = kernelPlan(device, m.table, g, undefined, epilogue);
  const ghostShape = ghosts > 1 ? kernelPlan(device, m.table, g, undefined, epilogue, ghosts) : shape;
  for (const s of new Set([shape, ghostShape])) checkWorkspaceLimit(device, workspaceBytes(s.r));
  const savedBytes = statsByteLength(m.numFeatures) * ghosts;
  const { maxBufferSize, maxStorageBufferBindingSize } = device.limits;
  if (savedBytes > Math.min(maxBufferSize, maxStorageBufferBindingSize))
    throw new LimitError(
      `${ghosts} ghost batches need ${savedBytes} bytes of saved statistics, above this device's limits; use a larger virtualBatchSize`,
    );
  return {
    g,
    shape,
    ghostShape,
    ghosts,
    bindings: { x, y, z, grads, sync: batch === null ? null : { batch, M: batch * (g.M / N) } },
    key: `${g.layout}:${g.shape.join('x')}`,
  };
}
