/**
 * Runs golden cases through a backend's public module API and measures the errors. The runner
 * validates nothing itself: whatever it is given reaches the library, and what the library raises
 * is what gets reported.
 */
import { BatchNormError } from '../errors.js';
import type { Layout } from '../layout.js';
import { permute, shapeInLayout } from './layouts.js';
import type { BatchNormOptions } from '../options.js';
import type { StateDictInput } from '../validate/state.js';
import { decode, encode, scaledError, type GoldenCase, type GoldenFile, type GoldenNumber } from './golden.js';
import type { ShardGradSums, ShardStats } from '../sync.js';

export interface Grads {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
  dz?: Float64Array;
}

/** One module under test, behind the backend's public API, with host arrays in and out. */
export interface ConformanceModule {
  train(mode: boolean): void;
  loadStateDict(sd: StateDictInput): Promise<void>;
  /** z: the residual of epilogue 'add_relu'. */
  forward(x: Float64Array, shape: number[], layout: Layout, z?: Float64Array): Promise<Float64Array>;
  /** dz: the residual's gradient, with epilogue 'add_relu'. */
  backward(x: Float64Array, dy: Float64Array): Promise<Grads>;
  /** One shard of a synchronized forward over a batch of `batch` samples; allReduce is the transport. */
  forwardSync(
    x: Float64Array,
    shape: number[],
    layout: Layout,
    z: Float64Array | undefined,
    batch: number,
    allReduce: (local: ShardStats) => Promise<ShardStats[]>,
  ): Promise<Float64Array>;
  backwardSync(
    x: Float64Array,
    dy: Float64Array,
    allReduce: (local: ShardGradSums) => Promise<ShardGradSums[]>,
  ): Promise<Grads>;
  /** running_mean and running_var/running_std. */
  runningStats(): Promise<Record<string, Float64Array>>;
  /** r and d of the last forward step (renorm). */
  correction(): Promise<{ r: Float64Array; d: Float64Array } | null>;
  /** The module's whole state, as its stateDict() gives it. */
  stateDict(): Promise<StateDictInput>;
  destroy(): void;
}

export interface ConformanceBackend {
  readonly name: 'cpu' | 'webgpu' | 'tfjs' | 'tfjs-stock';
  readonly adapter: Record<string, unknown>;
  /** Largest scaled error accepted for outputs and state. */
  readonly tolerance: number;
  createModule(numFeatures: number, options: BatchNormOptions): Promise<ConformanceModule>;
  /** Why this backend's API cannot express a case (it is then skipped, not failed), or null. */
  notExpressible?(c: GoldenCase): string | null;
  /** Fields its API cannot observe (a TF.js layer exposes no r and d): not compared. */
  readonly unobservable?: readonly string[];
  /** How many leading steps of a case it can express (the rest are left out, with the reason). */
  expressibleSteps?(c: GoldenCase): { steps: number; why: string };
}

export interface ErrorInfo {
  code: string;
  message: string;
}

export interface CaseResult {
  name: string;
  passed: boolean;
  /** Set (with the reason) when the backend cannot express the case; it then counts as neither. */
  skipped?: string;
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

const OUTPUT_FIELDS = ['y', 'dx', 'dz', 'dgamma', 'dbeta'] as const;
const STATE_FIELDS = ['running_mean', 'running_var', 'running_std', 'r', 'd'] as const;

export function caseOptions(c: GoldenCase): BatchNormOptions {
  return {
    eps: c.eps,
    momentum: c.momentum,
    affine: c.affine ?? true,
    renorm: c.op === 'batch_renorm' ? { rmax: c.rmax as number, dmax: c.dmax as number } : false,
    ...(c.epilogue === undefined ? {} : { epilogue: c.epilogue }),
    ...(c.virtual_batch_size === undefined ? {} : { virtualBatchSize: c.virtual_batch_size }),
    ...(c.per_activation === undefined ? {} : { perActivation: c.per_activation }),
  };
}

/** The module's feature count: C, or C·spatial per activation. */
const featureCount = (c: GoldenCase) => (c.per_activation ? c.shape.slice(1).reduce((a, b) => a * b, 1) : c.shape[1]);

/**
 * Per-activation features are indexed by their offset in one sample of the layout run, the golden
 * file's by their NCHW offset (c, h, w): the order of one sample permuted between the two.
 */
function featureOrder(c: GoldenCase, layout: Layout): (a: Float64Array, inverse?: boolean) => Float64Array {
  if (!c.per_activation) return (a) => a;
  const sample = [1, ...c.shape.slice(1)];
  return (a, inverse = false) => permute(a, sample, layout, inverse);
}

function initialState(c: GoldenCase, order: (a: Float64Array) => Float64Array): StateDictInput {
  const sd: StateDictInput = {};
  if (c.affine ?? true) {
    sd.weight = order(decode(c.gamma ?? []));
    sd.bias = order(decode(c.beta ?? []));
  }
  sd.running_mean = order(decode(c.running_mean_init));
  if (c.op === 'batch_renorm') sd.running_std = order(decode(c.running_std_init ?? []));
  else sd.running_var = order(decode(c.running_var_init ?? []));
  sd.num_batches_tracked = 0;
  return sd;
}

/** Shard sizes along N as NumPy's array_split makes them: the first N % k one larger. */
export function shardSizes(N: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(N / k) + (i < N % k ? 1 : 0));
}

/**
 * An in-process all-reduce among k participants (the transport of the shard cases and the sync
 * tests): each call resolves, once all have called, to every input in shard order.
 */
export function allReduce<T>(k: number): (i: number) => (local: T) => Promise<T[]> {
  let items: T[] = [];
  let waiting: ((v: T[]) => void)[] = [];
  return (i) => (local) =>
    new Promise<T[]>((resolve) => {
      items[i] = local;
      waiting.push(resolve);
      if (waiting.length === k) {
        const [all, done] = [items, waiting];
        [items, waiting] = [[], []];
        for (const w of done) w(all);
      }
    });
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
  const order = featureOrder(c, layout);
  // Synchronized cases run one module per shard, each on its part of N.
  const sizes = c.shards ? shardSizes(nchw[0], c.shards) : [nchw[0]];
  const modules: ConformanceModule[] = [];
  const steps: unknown[] = [];
  const refusals: string[] = [];
  /** Running statistics (and r, d) of every module, in the golden file's feature order. */
  const stateOf = async () =>
    Promise.all(
      modules.map(async (m) => {
        const st = await m.runningStats();
        return Object.fromEntries(Object.entries(st).map(([k, v]) => [k, order(v, true)]));
      }),
    );
  try {
    try {
      for (let i = 0; i < sizes.length; i++) {
        const m = await backend.createModule(featureCount(c), caseOptions(c));
        modules.push(m);
        await m.loadStateDict(initialState(c, order));
      }
    } catch (e) {
      const info = errorInfo(e);
      if (c.expect_error && info.code !== 'E_UNTYPED') return result(true, `refused: ${info.code}`, { error: info });
      return result(false, `unexpected error: ${info.code} ${info.message}`, { error: info });
    }
    for (const [si, s] of c.steps.entries()) {
      const before = await stateOf();
      for (const m of modules) m.train(s.training);
      // Per module: its outputs and state (y, dx, dz joined across shards in N order).
      let outs: Record<string, ArrayLike<number>>[];
      try {
        outs = await runStep(modules, c, s, layout, sizes);
        const states = await stateOf();
        for (const [i, m] of modules.entries()) {
          Object.assign(outs[i], states[i]);
          const corr = await m.correction();
          if (corr && c.op === 'batch_renorm') Object.assign(outs[i], corr);
          for (const f of ['dgamma', 'dbeta'] as const)
            if (outs[i][f]) outs[i][f] = order(Float64Array.from(outs[i][f]), true);
        }
      } catch (e) {
        const info = errorInfo(e);
        const after = await stateOf();
        const dumped = Object.fromEntries(Object.entries(after[0]).map(([k, v]) => [k, encode(v)]));
        steps.push({ error: info, ...dumped });
        const unchanged = after.every((a, i) =>
          Object.keys(before[i]).every((k) => scaledError(a[k], before[i][k]) === 0),
        );
        const refusedOk = (s.expect_error || c.expect_error) && info.code !== 'E_UNTYPED';
        if (!refusedOk) return result(false, `step ${si}: unexpected error: ${info.code} ${info.message}`, { steps });
        if (!unchanged)
          return result(false, `step ${si}: refused (${info.code}) but the running statistics changed`, { steps });
        if (c.expect_error) return result(true, `refused: ${info.code}`, { error: info, steps });
        refusals.push(`step ${si} refused: ${info.code}, state unchanged`);
        continue;
      }
      steps.push(Object.fromEntries(Object.entries(outs[0]).map(([k, v]) => [k, encode(v)])));
      if (s.expect_error || c.expect_error)
        return result(false, `step ${si}: should have been refused but was accepted`, { steps });
      const fields = [...(s.skip_outputs ? [] : OUTPUT_FIELDS), ...STATE_FIELDS];
      for (const f of fields) {
        const exp = s[f] as GoldenNumber[] | undefined;
        if (!exp || (!(c.affine ?? true) && (f === 'dgamma' || f === 'dbeta'))) continue;
        if (backend.unobservable?.includes(f)) continue;
        // Every shard holds the whole batch's parameter gradients and state; y, dx, dz are joined.
        for (const out of outs) {
          const got = out[f];
          note(f, got ? scaledError(got, decode(exp)) : Infinity);
          if (f === 'y' || f === 'dx' || f === 'dz') break;
        }
      }
    }
    const worst = Object.entries(errors).filter(([, e]) => !(e <= backend.tolerance));
    if (worst.length)
      return result(false, `above tolerance ${backend.tolerance}: ${worst.map(([k]) => k).join(', ')}`, { steps });
    return result(true, refusals.join('; '), { steps });
  } finally {
    for (const m of modules) m.destroy();
  }
}

/**
 * One step, forward and backward, on one module or on synchronized shards (each module its part of
 * N, the all-reduce in process). Returns each module's outputs; the first's y, dx and dz are the
 * whole batch's, in NCHW order.
 */
async function runStep(
  modules: ConformanceModule[],
  c: GoldenCase,
  s: GoldenCase['steps'][number],
  layout: Layout,
  sizes: number[],
): Promise<Record<string, ArrayLike<number>>[]> {
  const nchw = c.shape;
  const x = toLayout(decode(s.x), nchw, layout);
  const dy = toLayout(decode(s.dy ?? []), nchw, layout);
  const z = s.z === undefined ? undefined : toLayout(decode(s.z), nchw, layout);
  const back = (a: Float64Array) => permute(a, nchw, layout, true);
  if (modules.length === 1) {
    const [m] = modules;
    const y = await m.forward(x, shapeInLayout(nchw, layout), layout, z);
    const g = await m.backward(x, dy);
    return [{ y: back(y), dx: back(g.dx), ...(g.dz ? { dz: back(g.dz) } : {}), dgamma: g.dgamma, dbeta: g.dbeta }];
  }
  const per = x.length / nchw[0];
  const part = (a: Float64Array | undefined, i: number) => {
    if (!a) return undefined;
    const first = sizes.slice(0, i).reduce((p, q) => p + q, 0);
    return a.subarray(first * per, (first + sizes[i]) * per);
  };
  const stats = allReduce<ShardStats>(modules.length);
  const sums = allReduce<ShardGradSums>(modules.length);
  const ys = await Promise.all(
    modules.map((m, i) =>
      m.forwardSync(
        part(x, i)!,
        shapeInLayout([sizes[i], ...nchw.slice(1)], layout),
        layout,
        part(z, i),
        nchw[0],
        stats(i),
      ),
    ),
  );
  const gs = await Promise.all(modules.map((m, i) => m.backwardSync(part(x, i)!, part(dy, i)!, sums(i))));
  const join = (parts: (Float64Array | undefined)[]) => {
    if (parts.some((p) => !p)) return undefined;
    const out = new Float64Array(x.length);
    let at = 0;
    for (const p of parts as Float64Array[]) out.set(p, (at += p.length) - p.length);
    return back(out);
  };
  const dz = join(gs.map((g) => g.dz));
  return gs.map((g, i) => ({
    ...(i === 0 ? { y: join(ys)!, dx: join(gs.map((q) => q.dx))!, ...(dz ? { dz } : {}) } : {}),
    dgamma: g.dgamma,
    dbeta: g.dbeta,
  }));
}

export interface RunReport {
  backend: string;
  layout: Layout;
  adapter: Record<string, unknown>;
  results: CaseResult[];
  passed: number;
  failed: number;
  /** Cases the backend cannot express. */
  skipped: number;
}

export async function runGolden(backend: ConformanceBackend, golden: GoldenFile, opts: RunOptions): Promise<RunReport> {
  const results: CaseResult[] = [];
  for (const c of golden.cases) {
    if (opts.filter && !c.name.includes(opts.filter)) continue;
    const why = backend.notExpressible?.(c) ?? null;
    if (why !== null) {
      results.push({
        name: c.name,
        passed: false,
        skipped: why,
        errors: {},
        detail: why,
        dump: { name: c.name, skipped: why },
      });
      continue;
    }
    const part = backend.expressibleSteps?.(c) ?? { steps: c.steps.length, why: '' };
    const r = await runCase(backend, { ...c, steps: c.steps.slice(0, part.steps) }, opts.layout);
    if (part.steps < c.steps.length)
      r.detail = [r.detail, `steps 0-${part.steps - 1} of ${c.steps.length}: ${part.why}`].filter(Boolean).join('; ');
    results.push(r);
  }
  const passed = results.filter((r) => r.passed).length;
  const skipped = results.filter((r) => r.skipped !== undefined).length;
  return {
    backend: backend.name,
    layout: opts.layout,
    adapter: backend.adapter,
    results,
    passed,
    failed: results.length - passed - skipped,
    skipped,
  };
}

/** One line per case with its largest errors. */
export function formatResult(r: CaseResult): string {
  const errs = Object.entries(r.errors)
    .map(([k, e]) => `${k} ${e.toExponential(1)}`)
    .join('  ');
  const verdict = r.skipped !== undefined ? 'SKIP' : r.passed ? 'PASS' : 'FAIL';
  return `${verdict} ${r.name}${errs ? '  ' + errs : ''}${r.detail ? '  (' + r.detail + ')' : ''}`;
}

/** The dump format of the conformance README. */
export function dumpReport(rep: RunReport): Record<string, unknown> {
  return { backend: rep.backend, layout: rep.layout, adapter: rep.adapter, cases: rep.results.map((r) => r.dump) };
}
