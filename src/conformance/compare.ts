/**
 * GPU-vs-CPU comparison: the same steps through the float64 CpuBatchNorm and the GPU BatchNorm,
 * via the conformance backends (host arrays in and out, layouts permuted by the runner's helpers).
 *
 * The modules run in lockstep, and before each step the CPU module takes the GPU module's state:
 * every step is then compared from identical (f32) state, so a step that is ill-conditioned in its
 * state (eval right after a cumulative average made running_mean equal the batch mean, say) does
 * not charge the f32 rounding of stored state to the kernels. Running statistics are still
 * compared after every step.
 */
import { cpuBackend } from './cpuBackend.js';
import { webgpuBackend } from './webgpuBackend.js';
import { scaledError } from './golden.js';
import type { ConformanceModule } from './runner.js';
import type { Layout } from '../layout.js';
import { permute, shapeInLayout } from './layouts.js';
import type { BatchNormOptions } from '../options.js';
import type { StateDictInput } from '../validate/state.js';

export interface Scenario {
  layout: Layout;
  /** [N, C, ...spatial] */
  shape: number[];
  options: BatchNormOptions;
  init: StateDictInput;
  /** Per step: training mode and NCHW-ordered input, upstream gradient and (add_relu) residual. */
  steps: { training: boolean; x: Float64Array; dy: Float64Array; z?: Float64Array }[];
}

export type Errors = Record<string, number>;

async function step(
  m: ConformanceModule,
  s: Scenario,
  training: boolean,
  xs: Float64Array,
  dys: Float64Array,
  zs?: Float64Array,
): Promise<Record<string, Float64Array>> {
  m.train(training);
  const x = permute(xs, s.shape, s.layout);
  const z = zs && permute(zs, s.shape, s.layout);
  const y = await m.forward(x, shapeInLayout(s.shape, s.layout), s.layout, z);
  const g = await m.backward(x, permute(dys, s.shape, s.layout));
  const corr = await m.correction();
  return {
    y: permute(y, s.shape, s.layout, true),
    dx: permute(g.dx, s.shape, s.layout, true),
    ...(g.dz ? { dz: permute(g.dz, s.shape, s.layout, true) } : {}),
    dgamma: g.dgamma,
    dbeta: g.dbeta,
    ...(await m.runningStats()),
    ...(corr ?? {}),
  };
}

/** Largest scaled error per field over all steps, GPU against the float64 CPU path. */
export async function compareGpuCpu(device: GPUDevice, s: Scenario): Promise<Errors> {
  const C = s.options.perActivation ? s.shape.slice(1).reduce((a, b) => a * b, 1) : s.shape[1];
  const cpu = await cpuBackend.createModule(C, s.options);
  const gpu = await webgpuBackend(device).createModule(C, s.options);
  const errors: Errors = {};
  try {
    await gpu.loadStateDict(s.init);
    for (const st of s.steps) {
      await cpu.loadStateDict(await gpu.stateDict());
      const want = await step(cpu, s, st.training, st.x, st.dy, st.z);
      const got = await step(gpu, s, st.training, st.x, st.dy, st.z);
      for (const [k, v] of Object.entries(want)) errors[k] = Math.max(errors[k] ?? 0, scaledError(got[k], v));
    }
  } finally {
    cpu.destroy();
    gpu.destroy();
  }
  return errors;
}
