/**
 * Float16 conformance: float16 tensors on the GPU against the float64 CPU path on the same
 * float16-rounded tensors (the golden vectors are for float64 inputs, so they cannot judge float16
 * storage). Used by test/browser/f16.test.ts and by `bn-conformance --dtype float16`, which is how
 * an adapter with 'shader-f16' is checked outside the browser test suite.
 */
import { compareGpuCpu, type Errors, type Scenario } from './compare.js';
import type { BatchNormOptions } from '../options.js';
import type { StateDictInput } from '../validate/state.js';

/**
 * Largest scaled error allowed for y and dx, which are stored as float16: GPU (f32 arithmetic) and
 * CPU (f64) may round to neighbouring float16 values, one unit in the last place, 2^-10 of the
 * value; twice that leaves headroom.
 */
export const F16_OUTPUT_TOLERANCE = 2e-3;
/** Statistics, running statistics and parameter gradients stay float32, as in float32 mode. */
export const F16_STATE_TOLERANCE = 1e-5;

export interface F16Case {
  name: string;
  scenario: Scenario;
}

const SHAPES: Record<string, number[]> = {
  'odd 3x5x7x9': [3, 5, 7, 9],
  'vec4 16x64x12x12': [16, 64, 12, 12],
  'C=68 5x68x3x3': [5, 68, 3, 3],
  'NC 64x12': [64, 12],
  'M=2 2x9': [2, 9],
};

const MODES: Record<string, { options: BatchNormOptions; steps: boolean[] }> = {
  'train+eval': { options: {}, steps: [true, true, false] },
  'no-affine': { options: { affine: false }, steps: [true, false] },
  renorm: { options: { renorm: { rmax: 1.5, dmax: 0.5 } }, steps: [true, true, false] },
  'momentum-null': { options: { momentum: null }, steps: [true, true] },
};

/** Deterministic normal deviates (LCG + Box-Muller), so every adapter sees the same data. */
function normals(seed: number, n: number): Float64Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

function tensor(shape: number[], seed: number, offset: number): Float64Array {
  const C = shape[1];
  const inner = shape.slice(2).reduce((a, b) => a * b, 1);
  return normals(
    seed,
    shape.reduce((a, b) => a * b, 1),
  ).map((v, i) => {
    const c = Math.floor(i / inner) % C;
    return v * (0.5 + (c % 5) * 0.4) + offset + (c % 3) - 1;
  });
}

function init(C: number, o: BatchNormOptions): StateDictInput {
  const ch = (f: (c: number) => number) => Float32Array.from({ length: C }, (_, c) => f(c));
  const sd: StateDictInput = {
    weight: ch((c) => 0.5 + (c % 4) * 0.25),
    bias: ch((c) => (c % 3) * 0.1 - 0.1),
    running_mean: ch((c) => (c % 2) * 0.2),
    num_batches_tracked: 0,
  };
  sd[o.renorm ? 'running_std' : 'running_var'] = ch((c) => 0.8 + (c % 3) * 0.2);
  return sd;
}

/** Shapes × layouts × modes, each a float16 scenario; offset 100 shows that the pivot still helps. */
export function f16Cases(): F16Case[] {
  const cases: F16Case[] = [];
  for (const [shapeName, shape] of Object.entries(SHAPES)) {
    for (const layout of ['NCHW', 'NHWC'] as const) {
      for (const [modeName, mode] of Object.entries(MODES)) {
        for (const offset of [0, 100]) {
          const options: BatchNormOptions = { ...mode.options, dtype: 'float16' };
          cases.push({
            name: `f16 ${shapeName} ${layout} ${modeName} offset ${offset}`,
            scenario: {
              layout,
              shape,
              options,
              init: init(shape[1], options),
              steps: mode.steps.map((training, i) => ({
                training,
                x: tensor(shape, 2 * i + 1, offset),
                dy: tensor(shape, 2 * i + 2, 0),
              })),
            },
          });
        }
      }
    }
  }
  return cases;
}

/** Fields over their tolerance (empty when the case passes). */
export function f16Failures(errors: Errors): string[] {
  return Object.entries(errors)
    .filter(([k, e]) => !(e <= (k === 'y' || k === 'dx' ? F16_OUTPUT_TOLERANCE : F16_STATE_TOLERANCE)))
    .map(([k, e]) => `${k} ${e.toExponential(1)}`);
}

export interface F16Result {
  name: string;
  errors: Errors;
  failures: string[];
}

/** Runs every case on `device`, which must have been created with 'shader-f16'. */
export async function runF16Cases(device: GPUDevice, log: (line: string) => void = () => {}): Promise<F16Result[]> {
  const results: F16Result[] = [];
  for (const c of f16Cases()) {
    const errors = await compareGpuCpu(device, c.scenario);
    const failures = f16Failures(errors);
    results.push({ name: c.name, errors, failures });
    const worst = Object.entries(errors)
      .map(([k, e]) => `${k} ${e.toExponential(1)}`)
      .join(', ');
    log(`${failures.length ? 'FAIL' : 'ok  '} ${c.name}: ${failures.length ? failures.join(', ') : worst}`);
  }
  return results;
}

export interface F16Report {
  adapter: string;
  unsupported: boolean;
  lines: string[];
  passed: number;
  failed: number;
}

/** Every float16 case on `device`, as bn-conformance --dtype float16 reports it; unsupported without 'shader-f16'. */
export async function f16Report(device: GPUDevice): Promise<F16Report> {
  const i = device.adapterInfo;
  const adapter = [i.vendor, i.architecture, i.device].filter(Boolean).join(' ');
  if (!device.features.has('shader-f16')) return { adapter, unsupported: true, lines: [], passed: 0, failed: 0 };
  const lines: string[] = [];
  const results = await runF16Cases(device, (l) => lines.push(l));
  const failed = results.filter((r) => r.failures.length).length;
  return { adapter, unsupported: false, lines, passed: results.length - failed, failed };
}
