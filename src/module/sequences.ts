/**
 * The dispatch sequences of a module's step, built on first use from its validated bindings and the
 * module's own state buffers: the statistics reduction, normalise (step state, finalize, apply),
 * inference, the gradient-sums reduction and the input gradient (plan/sequences.ts).
 */
import { BufferError, OptionError } from '../errors.js';
import { placeholder } from '../gpu/buffers.js';
import type { Dispatch } from '../gpu/kernel.js';
import { EvalFlags } from '../kernels/normalise.js';
import { FinalizeFlags } from '../kernels/statistics.js';
import { workspaceFor } from '../plan/plans.js';
import {
  forwardEvalDispatches,
  gradInputDispatches,
  gradSumsDispatches,
  normaliseDispatches,
  statisticsDispatches,
  stepDispatch,
  type KernelPlan,
  type Reduced,
} from '../plan/sequences.js';
import type { Range } from '../validate/buffers.js';
import type { BatchNorm } from './batchnorm.js';
import type { StepBindings } from './types.js';

/** A step's sequences. */
export type Sequences = ReturnType<typeof stepSequences>;

export function stepSequences(bn: BatchNorm, s: KernelPlan, b: StepBindings, owned: GPUBuffer[], label: string) {
  const whole = (buffer: GPUBuffer): Range => ({ buffer, offset: 0, size: buffer.size });
  const o = bn.options;
  const params = {
    stats: b.stats ?? whole(bn.stats),
    gamma: whole(bn.weight),
    beta: whole(bn.bias),
    runningMean: whole(bn.runningMean),
    runningSpread: whole(bn.runningSpread),
  };
  const io = () => {
    if (!b.y) throw new OptionError('this step was made for backward only');
    if (!b.z)
      throw new BufferError(
        'E_BUFFER_MISSING',
        "z is required: epilogue 'add_relu' adds the residual z before the relu (pass it to forward, or plan the step with it)",
      );
    return { x: b.x, y: b.y, z: b.z };
  };
  const stepInputs = { schedule: whole(bn.schedule), state: whole(bn.stepState) };
  let workspace: Range | null = null;
  const ws = () => (workspace ??= workspaceFor(bn.device, s, null, owned, label));
  const grads = () => {
    if (!b.grads) throw new OptionError('this step was planned without dy and dx; plan it with them to run backward');
    return {
      x: b.x,
      dy: b.grads.dy,
      dx: b.grads.dx,
      y: o.epilogue ? b.y! : placeholder(bn.device, 6),
      dz: b.grads.dz,
      stats: params.stats,
      gamma: params.gamma,
      dgamma: whole(bn.weightGrad),
      dbeta: whole(bn.biasGrad),
      workspace: ws(),
    };
  };
  const seq = {
    /** The statistics reduction (what a synchronized step exports, advancing nothing). */
    statistics: (advance = false) => statisticsDispatches(bn.device, s, b.x, ws(), owned, advance ? stepInputs : null),
    /**
     * From reduced statistics over M values: with `update`, advance the step (unless the
     * reduction did: `advanced`) and update the running statistics; coefficients; apply.
     */
    normalise: (update: boolean, reduced: Reduced, M: number, advanced = false): Dispatch[] => {
      const flags =
        (update ? FinalizeFlags.UPDATE : 0) |
        (o.unbiased ? FinalizeFlags.UNBIASED : 0) |
        (o.renorm ? FinalizeFlags.RENORM : 0) |
        (o.affine ? FinalizeFlags.AFFINE : 0);
      const step = stepInputs.state;
      const out = { runningMeanOut: placeholder(bn.device, 8), runningSpreadOut: placeholder(bn.device, 9) };
      const d = normaliseDispatches(
        bn.device,
        s,
        { ...params, ...io(), ...out, step },
        reduced,
        M,
        o.eps,
        flags,
        owned,
      );
      return update && !advanced ? [stepDispatch(bn.device, stepInputs, owned), ...d] : d;
    },
    eval: (): Dispatch[] =>
      forwardEvalDispatches(
        bn.device,
        s,
        { ...params, ...io() },
        o.eps,
        (o.affine ? EvalFlags.AFFINE : 0) | (bn.isRenorm ? EvalFlags.SPREAD_IS_STD : 0),
        owned,
      ),
    /** The gradient-sums reduction (what a synchronized step exports). */
    gradSums: () => gradSumsDispatches(bn.device, s, grads(), owned),
    /** From reduced gradient sums over M values: dγ, dβ and dx. */
    gradInput: (batchStats: boolean, reduced: Reduced, M: number): Dispatch[] =>
      gradInputDispatches(bn.device, s, grads(), reduced, M, batchStats, o.affine, owned),
  };
  return {
    ...seq,
    train: (update: boolean): Dispatch[] => {
      const st = seq.statistics(update);
      return [...st.dispatches, ...seq.normalise(update, st.reduced, s.g.M / s.r.ghosts, update)];
    },
    backward: (batchStats: boolean): Dispatch[] => {
      const gs = seq.gradSums();
      return [...gs.dispatches, ...seq.gradInput(batchStats, gs.reduced, s.g.M / s.r.ghosts)];
    },
  };
}
