/**
 * GPU-vs-CPU comparison: the same steps through the float64 CpuBatchNorm and the GPU BatchNorm,
 * via the conformance backends (host arrays in and out, layouts permuted by the runner's helpers).
 */
import { cpuBackend } from '../../src/conformance/cpuBackend';
import { webgpuBackend } from '../../src/conformance/webgpuBackend';
import { scaledError } from '../../src/conformance/golden';
import type { ConformanceModule } from '../../src/conformance/runner';
import { permute, shapeInLayout, type Layout } from '../../src/layout';
import type { BatchNormOptions } from '../../src/options';
import type { StateDict } from '../../src/moduleBase';

export interface Scenario {
  layout: Layout;
  /** [N, C, ...spatial] */
  shape: number[];
  options: BatchNormOptions;
  init: StateDict;
  /** Per step: training mode and NCHW-ordered input/upstream gradient. */
  steps: { training: boolean; x: Float64Array; dy: Float64Array }[];
}

export type Errors = Record<string, number>;

async function runSteps(m: ConformanceModule, s: Scenario): Promise<Record<string, Float64Array>[]> {
  await m.loadStateDict(s.init);
  const out: Record<string, Float64Array>[] = [];
  const shape = shapeInLayout(s.shape, s.layout);
  for (const st of s.steps) {
    m.train(st.training);
    const x = permute(st.x, s.shape, s.layout);
    const y = await m.forward(x, shape, s.layout);
    const g = await m.backward(x, permute(st.dy, s.shape, s.layout));
    const corr = await m.correction();
    out.push({
      y: permute(y, s.shape, s.layout, true), dx: permute(g.dx, s.shape, s.layout, true), dgamma: g.dgamma, dbeta: g.dbeta,
      ...(await m.runningStats()), ...(corr ?? {}),
    });
  }
  m.destroy();
  return out;
}

/** Largest scaled error per field over all steps, GPU against the float64 CPU path. */
export async function compareGpuCpu(device: GPUDevice, s: Scenario): Promise<Errors> {
  const cpu = await runSteps(await cpuBackend.createModule(s.shape[1], s.options), s);
  const gpu = await runSteps(await webgpuBackend(device).createModule(s.shape[1], s.options), s);
  const errors: Errors = {};
  cpu.forEach((ref, i) => {
    for (const [k, v] of Object.entries(ref)) errors[k] = Math.max(errors[k] ?? 0, scaledError(gpu[i][k], v));
  });
  return errors;
}
