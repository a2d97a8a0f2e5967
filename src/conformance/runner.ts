/**
 * Runs golden cases through a backend's public module API and measures the errors. The runner
 * validates nothing itself: whatever it is given reaches the library, and what the library raises
 * is what gets reported.
 */
import { BatchNormError } from '../errors.js';
import { permute, shapeInLayout, type Layout } from '../layout.js';
import type { BatchNormOptions } from '../options.js';
import type { StateDictInput } from '../moduleBase.js';
import { decode, encode, scaledError, type GoldenCase, type GoldenFile, type GoldenNumber } from './golden.js';

/** One module under test, behind the backend's public API, with host arrays in and out. */
export interface ConformanceModule {
  train(mode: boolean): void;
  loadStateDict(sd: StateDictInput): Promise<void>;
  /** z: the residual of epilogue 'add_relu'. */
  forward(x: Float64Array, shape: number[], layout: Layout, z?: Float64Array): Promise<Float64Array>;
  /** dz: the residual's gradient, with epilogue 'add_relu'. */
  backward(
    x: Float64Array,
    dy: Float64Array,
  ): Promise<{ dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array; dz?: Float64Array }>;
  /** running_mean and running_var/running_std. */
  runningStats(): Promise<Record<string, Float64Array>>;
  /** r and d of the last forward step (renorm). */
  correction(): Promise<{ r: Float64Array; d: Float64Array } | null>;
  /** The module's whole state, as its stateDict() gives it. */
  stateDict(): Promise<StateDictInput>;
  destroy(): void;
}

export interface ConformanceBackend {
  readonly name: 'cpu' | 'webgpu';
  readonly adapter: Record<string, unknown>;
  /** Largest scaled error accepted for outputs and state. */
  readonly tolerance: number;
  createModule(numFeatures: number, options: BatchNormOptions): Promise<ConformanceModule>;
}

export interface ErrorInfo {
  code: string;
  message: string;
}

export interface CaseResult {
  name: string;
  passed: boolean;
  /** Largest scaled error per field over all steps. */
  errors: Record<string, number>;
  /** Why it failed, or what a refused case was refused with. */
  detail: string;
  dump: Record<string, unknown>;
}

export interface RunOptions {
  layout: Layout;
  filter?: string;
}

function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof BatchNormError) return { code: e.code, message: e.message };
  return { code: 'E_UNTYPED', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
}

const OUTPUT_FIELDS = ['y', 'dx', 'dgamma', 'dbeta'] as const;
const STATE_FIELDS = ['running_mean', 'running_var', 'running_std', 'r', 'd'] as const;

export function caseOptions(c: GoldenCase): BatchNormOptions {
  return {
    eps: c.eps,
    momentum: c.momentum,
    affine: c.affine ?? true,
    renorm: c.op === 'batch_renorm' ? { rmax: c.rmax as number, dmax: c.dmax as number } : false,
  };
}

function initialState(c: GoldenCase): StateDictInput {
  const sd: StateDictInput = {};
  if (c.affine ?? true) {
    sd.weight = decode(c.gamma ?? []);
    sd.bias = decode(c.beta ?? []);
  }
  sd.running_mean = decode(c.running_mean_init);
  if (c.op === 'batch_renorm') sd.running_std = decode(c.running_std_init ?? []);
  else sd.running_var = decode(c.running_var_init ?? []);
  sd.num_batches_tracked = 0;
  return sd;
}

/**
 * A step's data in the layout under test. Data that does not fit the case's shape (a fault case's
 * wrong-length x) is passed on as it is, so the module's own refusal is what the case checks.
 */
function toLayout(data: Float64Array, nchw: readonly number[], layout: Layout): Float64Array {
  return data.length === nchw.reduce((a, b) => a * b, 1) ? permute(data, nchw, layout) : data;
}

export async function runCase(backend: ConformanceBackend, c: GoldenCase, layout: Layout): Promise<CaseResult> {
  const errors: Record<string, number> = {};
  const note = (k: string, e: number) => {
    errors[k] = Math.max(errors[k] ?? 0, e);
  };
  const result = (passed: boolean, detail: string, dump: Record<string, unknown>): CaseResult => ({
    name: c.name,
    passed,
    errors,
    detail,
    dump: { name: c.name, ...dump },
  });
  const nchw = c.shape;
  const shape = shapeInLayout(nchw, layout);
  let m: ConformanceModule | null = null;
  const steps: unknown[] = [];
  const refusals: string[] = [];
  try {
    try {
      m = await backend.createModule(c.shape[1], caseOptions(c));
      await m.loadStateDict(initialState(c));
    } catch (e) {
      const info = errorInfo(e);
      if (c.expect_error && info.code !== 'E_UNTYPED') return result(true, `refused: ${info.code}`, { error: info });
      return result(false, `unexpected error: ${info.code} ${info.message}`, { error: info });
    }
    for (const [si, s] of c.steps.entries()) {
      const before = await m.runningStats();
      m.train(s.training);
      const x = toLayout(decode(s.x), nchw, layout);
      let out: Record<string, ArrayLike<number>>;
      try {
        const y = await m.forward(x, shape, layout);
        const g = await m.backward(x, toLayout(decode(s.dy ?? []), nchw, layout));
        out = {
          y: permute(y, nchw, layout, true),
          dx: permute(g.dx, nchw, layout, true),
          dgamma: g.dgamma,
          dbeta: g.dbeta,
          ...(await m.runningStats()),
        };
        const corr = await m.correction();
        if (corr && c.op === 'batch_renorm') Object.assign(out, corr);
      } catch (e) {
        const info = errorInfo(e);
        const after = await m.runningStats();
        const dumped = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, encode(v)]));
        steps.push({ error: info, ...dumped });
        const unchanged = Object.keys(before).every((k) => scaledError(after[k], before[k]) === 0);
        const refusedOk = (s.expect_error || c.expect_error) && info.code !== 'E_UNTYPED';
        if (!refusedOk) return result(false, `step ${si}: unexpected error: ${info.code} ${info.message}`, { steps });
        if (!unchanged)
          return result(false, `step ${si}: refused (${info.code}) but the running statistics changed`, { steps });
        if (c.expect_error) return result(true, `refused: ${info.code}`, { error: info, steps });
        refusals.push(`step ${si} refused: ${info.code}, state unchanged`);
        continue;
      }
      steps.push(Object.fromEntries(Object.entries(out).map(([k, v]) => [k, encode(v)])));
      if (s.expect_error || c.expect_error)
        return result(false, `step ${si}: should have been refused but was accepted`, { steps });
      const fields = [...(s.skip_outputs ? [] : OUTPUT_FIELDS), ...STATE_FIELDS];
      for (const f of fields) {
        const exp = s[f] as GoldenNumber[] | undefined;
        if (!exp || (!(c.affine ?? true) && (f === 'dgamma' || f === 'dbeta'))) continue;
        const got = out[f];
        note(f, got ? scaledError(got, decode(exp)) : Infinity);
      }
    }
    const worst = Object.entries(errors).filter(([, e]) => !(e <= backend.tolerance));
    if (worst.length)
      return result(false, `above tolerance ${backend.tolerance}: ${worst.map(([k]) => k).join(', ')}`, { steps });
    return result(true, refusals.join('; '), { steps });
  } finally {
    m?.destroy();
  }
}

export interface RunReport {
  backend: string;
  layout: Layout;
  adapter: Record<string, unknown>;
  results: CaseResult[];
  passed: number;
  failed: number;
}

export async function runGolden(backend: ConformanceBackend, golden: GoldenFile, opts: RunOptions): Promise<RunReport> {
  const results: CaseResult[] = [];
  for (const c of golden.cases) {
    if (opts.filter && !c.name.includes(opts.filter)) continue;
    results.push(await runCase(backend, c, opts.layout));
  }
  const passed = results.filter((r) => r.passed).length;
  return {
    backend: backend.name,
    layout: opts.layout,
    adapter: backend.adapter,
    results,
    passed,
    failed: results.length - passed,
  };
}

/** One line per case with its largest errors. */
export function formatResult(r: CaseResult): string {
  const errs = Object.entries(r.errors)
    .map(([k, e]) => `${k} ${e.toExponential(1)}`)
    .join('  ');
  return `${r.passed ? 'PASS' : 'FAIL'} ${r.name}${errs ? '  ' + errs : ''}${r.detail ? '  (' + r.detail + ')' : ''}`;
}

/** The dump format of the conformance README. */
export function dumpReport(rep: RunReport): Record<string, unknown> {
  return { backend: rep.backend, layout: rep.layout, adapter: rep.adapter, cases: rep.results.map((r) => r.dump) };
}
