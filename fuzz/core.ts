/**
 * The fuzzer's engine, runtime-neutral (Node/Dawn and Chromium). Call k of seed S is drawn from its
 * own generator, so any call replays alone. A call picks a public entry of the library, builds
 * valid arguments for it, then (most of the time) replaces one or two of them with a hostile value:
 * a wrong type, NaN, ±Infinity, a float32 overflow, a huge or fractional count, a Symbol, a getter
 * that throws, a fake buffer, a buffer of another device, a destroyed or mapped buffer, a module's
 * own buffer, an overlapping range, a finished encoder, a lost device. It then judges the outcome:
 * - a refusal must be a BatchNormError with a known code, leave the module's state bit-identical,
 *   and leave the module computing what the float64 CPU path computes (checked with a valid step);
 * - an accepted call must not bind an output over module state or over another of its bindings,
 *   and commands it encoded must not fail at submit, unless the failure is one WebGPU gives no
 *   way to see beforehand (a destroyed buffer, a buffer of another device, a finished encoder);
 * - no call may hang or leave an unhandled rejection (the parent counts crashes).
 */
import { BatchNorm } from '../src/module/batchnorm';
import { BatchNormStep } from '../src/module/step';
import { CpuBatchNorm } from '../src/cpu/batchnorm';
import { BatchNormError } from '../src/errors';
import { encodeBackward, encodeForwardEval, encodeForwardTrain } from '../src/functional';
import { readBuffer } from '../src/gpu/buffers';
import { foldBatchNorm } from '../src/fold/host';
import { mergeGradSums, mergeStats, type ShardGradSums, type ShardStats } from '../src/sync';
import { fromHalfArray, roundHalf, toHalfArray } from '../src/f16';
import { geometry } from '../src/layout';
import { permute } from '../src/conformance/layouts';
import { renormSchedule, type BatchNormOptions } from '../src/options';
import { resolveOptions } from '../src/validate/options';
import { planBackward, planForwardEval, planForwardTrain, workspaceByteLength } from '../src/plan/plans';
import { statsByteLength, tensorByteLength } from '../src/plan/params';
import { requestBatchNormDevice } from '../src/device';
import { scaledError } from '../src/conformance/golden';

export const CODES = [
  'E_SHAPE',
  'E_LAYOUT',
  'E_OPTION',
  'E_BATCH_SIZE',
  'E_BUFFER_SIZE',
  'E_BUFFER_USAGE',
  'E_BUFFER_ALIGNMENT',
  'E_BUFFER_MISSING',
  'E_BUFFER_ALIAS',
  'E_BUFFER_MAPPED',
  'E_LIMIT',
  'E_STATE_DICT',
  'E_NO_FORWARD',
  'E_INPUT_MISMATCH',
  'E_GPU',
  'E_DEVICE_LOST',
  'E_DESTROYED',
  'E_UNSUPPORTED',
  'E_FEATURE',
];

export type Kind =
  | 'untyped-refusal'
  | 'state-changed'
  | 'wrong-after-refusal'
  | 'alias-accepted'
  | 'late-failure'
  | 'hang'
  | 'unhandled-rejection'
  | 'crash';

/** The message of the exception the fuzzer's own throwing getter raises: the caller's code, passed through. */
const GETTER_THREW = 'a getter of the caller threw';
export const KINDS: Kind[] = [
  'untyped-refusal',
  'state-changed',
  'wrong-after-refusal',
  'alias-accepted',
  'late-failure',
  'hang',
  'unhandled-rejection',
  'crash',
];

export interface Finding {
  kind: Kind;
  seed: number;
  call: number;
  entry: string;
  mutation: string;
  detail: string;
}

export interface Counts {
  calls: number;
  accepted: number;
  refused: number;
  /** Refusals after which the module's state and a valid step were checked against the CPU path. */
  checked: number;
  /** Failures at submit that WebGPU gives no way to see before (destroyed, foreign, finished encoder). */
  lateByDesign: number;
  /** Exceptions of the caller's own code (a throwing getter) that reached the caller unchanged. */
  passedThrough: number;
  findings: Record<Kind, number>;
}

/** A mulberry32 stream seeded by (seed, call): any call replays alone. */
function rng(seed: number, call: number): () => number {
  let a = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(call + 1, 0xc2b2ae35)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const TIMEOUT_MS = 20_000;

/** A fixture module with fixed tensors, its float64 twin, and what the valid step needs. */
interface Fixture {
  name: string;
  options: BatchNormOptions;
  shape: number[];
  layout: 'NCHW' | 'NHWC' | 'NC';
  C: number;
  bn: BatchNorm;
  x: GPUBuffer;
  y: GPUBuffer;
  dy: GPUBuffer;
  dx: GPUBuffer;
  xs: Float32Array;
  dys: Float32Array;
}

const FIXTURES: [string, BatchNormOptions, number[], 'NCHW' | 'NHWC' | 'NC'][] = [
  ['nhwc', {}, [2, 3, 2, 8], 'NHWC'],
  [
    'nchw-renorm',
    { renorm: { schedule: renormSchedule({ rmaxSteps: [0, 50], dmaxSteps: [0, 50] }) } },
    [3, 6, 2, 2],
    'NCHW',
  ],
  ['nc-cumulative', { momentum: null, affine: false }, [5, 5], 'NC'],
  [
    'keras-function-schedule',
    { convention: 'keras', renorm: { schedule: (s: number) => ({ rmax: 1 + s / 100, dmax: s / 100 }) } },
    [4, 4, 3, 1],
    'NCHW',
  ],
  ['nhwc-ghost-relu', { virtualBatchSize: 2, epilogue: 'relu' }, [4, 3, 2, 8], 'NHWC'],
  ['nchw-per-activation', { perActivation: true }, [4, 2, 3, 2], 'NCHW'],
];

export interface FuzzEnv {
  device: GPUDevice;
  /** A second device, for buffers of another device. */
  other: GPUDevice;
  /** The GPU object devices come from (the lost-device case makes its own). */
  gpu?: GPU;
}

export class Fuzzer {
  private fixtures: Fixture[] = [];
  readonly counts: Counts = {
    calls: 0,
    accepted: 0,
    refused: 0,
    checked: 0,
    lateByDesign: 0,
    passedThrough: 0,
    findings: Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>,
  };
  readonly findings: Finding[] = [];
  private lost: { bn: BatchNorm; x: GPUBuffer; y: GPUBuffer } | null = null;
  private catalog = new Map<Fixture, [string, unknown, boolean][]>();
  /** Buffers made since the block began, destroyed at the next. */
  private owned: GPUBuffer[] = [];

  /** Hears of every call and its outcome (--verbose). */
  onCall?: (line: string) => void;

  constructor(
    readonly env: FuzzEnv,
    private seed: number,
  ) {}

  private buffer(
    label: string,
    n: number,
    data?: ArrayLike<number>,
    device = this.env.device,
    usage = USAGE(),
  ): GPUBuffer {
    const b = device.createBuffer({ label, size: Math.max(16, n * 4), usage, mappedAtCreation: true });
    if (data) new Float32Array(b.getMappedRange(), 0, n).set(data);
    b.unmap();
    this.owned.push(b);
    return b;
  }

  private fixture(i: number): Fixture {
    if (!this.fixtures[i]) {
      const [name, options, shape, layout] = FIXTURES[i];
      const n = shape.reduce((a, b) => a * b, 1);
      const C = options.perActivation ? n / shape[0] : layout === 'NHWC' ? shape[shape.length - 1] : shape[1];
      const xs = Float32Array.from({ length: n }, (_, k) => Math.sin(k * 1.7 + i) * (1 + (k % 3)) + (k % 5));
      const dys = Float32Array.from({ length: n }, (_, k) => Math.cos(k * 0.9 + i));
      this.fixtures[i] = {
        name,
        options,
        shape,
        layout,
        C,
        bn: new BatchNorm(this.env.device, C, options),
        xs,
        dys,
        x: this.buffer(`fuzz.${name}.x`, n, xs),
        y: this.buffer(`fuzz.${name}.y`, n),
        dy: this.buffer(`fuzz.${name}.dy`, n, dys),
        dx: this.buffer(`fuzz.${name}.dx`, n),
      };
    }
    return this.fixtures[i];
  }

  /** Fresh fixture modules (the start of a block). */
  reset(): void {
    for (const f of this.fixtures) if (f) f.bn.destroy();
    for (const b of this.owned) b.destroy();
    this.fixtures = [];
    this.owned = [];
    this.catalog.clear();
    this.functionalBuffers.clear();
  }

  /** Everything a module holds, as bytes: its buffers and its host-side counters. */
  private async snapshot(f: Fixture): Promise<string> {
    const bn = f.bn;
    const parts: number[][] = [];
    for (const b of [
      bn.weight,
      bn.bias,
      bn.weightGrad,
      bn.biasGrad,
      bn.runningMean,
      bn.runningSpread,
      bn.stats,
      bn.stepState,
    ]) {
      parts.push(Array.from(new Uint32Array((await readBuffer(this.env.device, b)).buffer)));
    }
    return JSON.stringify([parts, bn.training, bn.numBatchesTracked]);
  }

  /** A valid training step on the GPU and on a float64 twin synced from the GPU's state: largest error. */
  private async validStep(f: Fixture): Promise<number> {
    const bn = f.bn;
    // Other calls may have written into the fixture's tensors (a functional output bound to x).
    this.env.device.queue.writeBuffer(f.x, 0, f.xs.buffer, f.xs.byteOffset, f.xs.byteLength);
    this.env.device.queue.writeBuffer(f.dy, 0, f.dys.buffer, f.dys.byteOffset, f.dys.byteLength);
    const cpu = new CpuBatchNorm(f.C, f.options);
    cpu.loadStateDict(await bn.stateDict());
    bn.train();
    await bn.forward(f.x, f.y, f.shape, f.layout);
    await bn.backward(f.x, f.dy, f.dx);
    const xs = toNchw(f, f.xs),
      dys = toNchw(f, f.dys);
    const y = cpu.forward(xs, nchw(f), 'NCHW');
    const g = cpu.backward(xs, dys);
    const errs = [
      scaledError(toNchw(f, await readBuffer(this.env.device, f.y)), y),
      scaledError(toNchw(f, await readBuffer(this.env.device, f.dx)), g.dx),
    ];
    const sd = await bn.stateDict();
    if (sd.running_mean) errs.push(scaledError(sd.running_mean, cpu.runningMean));
    return Math.max(...errs);
  }

  private find(kind: Kind, call: number, entry: string, mutation: string, detail: string): void {
    this.counts.findings[kind]++;
    this.findings.push({ kind, seed: this.seed, call, entry, mutation, detail });
  }

  /** Runs call `k`: draws it, makes it, judges it. */
  async call(k: number): Promise<void> {
    const r = rng(this.seed, k);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
    const fi = Math.floor(r() * FIXTURES.length);
    const f = this.fixture(fi);
    const d = this.env.device;
    const entry = pick(ENTRIES);
    const c = entry.make(this, f, r, pick);
    this.counts.calls++;
    const before = c.mutated && c.touchesModule ? await this.snapshot(f) : null;
    let outcome: { ok: true } | { ok: false; error: unknown };
    d.pushErrorScope('validation');
    try {
      await withTimeout(Promise.resolve().then(c.run), TIMEOUT_MS);
      outcome = { ok: true };
    } catch (e) {
      outcome = { ok: false, error: e };
    }
    const late = await d.popErrorScope();
    const name = `${entry.name}@${f.name}`;
    const said = outcome.ok
      ? 'accepted'
      : outcome.error instanceof Error
        ? `${outcome.error.name}: ${outcome.error.message.slice(0, 120)}`
        : String(outcome.error);
    this.onCall?.(`call ${k}: ${name} with ${c.mutation}: ${said}`);
    if (!outcome.ok && outcome.error instanceof Timeout) {
      this.find('hang', k, name, c.mutation, 'no answer in 20 s');
      throw outcome.error; // the worker restarts from the next call
    }
    if (late) {
      if (c.lateByDesign) this.counts.lateByDesign++;
      else this.find('late-failure', k, name, c.mutation, `WebGPU: ${late.message.split('\n')[0]}`);
    }
    if (outcome.ok) {
      this.counts.accepted++;
      const alias = c.aliasAccepted?.();
      if (alias) this.find('alias-accepted', k, name, c.mutation, alias);
      return;
    }
    this.counts.refused++;
    const e = outcome.error;
    if (e instanceof Error && e.message === GETTER_THREW) {
      this.counts.passedThrough++;
      return;
    }
    if (!(e instanceof BatchNormError) || !CODES.includes(e.code) || e.name !== e.constructor.name) {
      this.find('untyped-refusal', k, name, c.mutation, e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      return;
    }
    if (e.code === 'E_DEVICE_LOST' || !c.touchesModule) return;
    if (before !== null) {
      const after = await this.snapshot(f);
      if (after !== before) this.find('state-changed', k, name, c.mutation, `${e.code}: ${e.message}`);
    }
    if (c.mutated) {
      this.counts.checked++;
      const err = await this.validStep(f);
      if (!(err <= 1e-5))
        this.find('wrong-after-refusal', k, name, c.mutation, `largest scaled error ${err} after ${e.code}`);
    }
  }

  /** A module on a device that is then destroyed: every later call must reject with DeviceLostError. */
  async lostDevice(k: number): Promise<void> {
    if (!this.lost) {
      const device = await requestBatchNormDevice(this.env.gpu ? { gpu: this.env.gpu } : {});
      const bn = new BatchNorm(device, 4);
      const b = () => device.createBuffer({ label: 'fuzz.lost', size: 64, usage: USAGE() });
      this.lost = { bn, x: b(), y: b() };
      device.destroy();
      await device.lost;
    }
    const { bn, x, y } = this.lost;
    const calls: [string, () => unknown][] = [
      ['forward', () => bn.forward(x, y, [4, 4], 'NC')],
      ['stateDict', () => bn.stateDict()],
      ['plan', () => bn.plan({ shape: [4, 4], layout: 'NC', x, y })],
      ['loadStateDict', () => bn.loadStateDict({})],
    ];
    const [name, f] = calls[k % calls.length];
    this.counts.calls++;
    try {
      await f();
      this.find('late-failure', k, `${name}@lost-device`, 'the device was lost', 'accepted on a lost device');
    } catch (e) {
      this.counts.refused++;
      if (!(e instanceof BatchNormError) || e.code !== 'E_DEVICE_LOST') {
        this.find(
          'untyped-refusal',
          k,
          `${name}@lost-device`,
          'the device was lost',
          e instanceof Error ? `${e.name}: ${e.message}` : String(e),
        );
      }
    }
  }

  private mapped(n: number): GPUBuffer {
    const b = this.env.device.createBuffer({
      label: 'fuzz.mapped',
      size: n * 4,
      usage: USAGE(),
      mappedAtCreation: true,
    });
    this.owned.push(b);
    return b;
  }

  /** Buffers for the functional calls on a fixture's shape (made once per block). */
  functional(f: Fixture): Record<string, GPUBuffer> {
    let b = this.functionalBuffers.get(f);
    if (!b) {
      const n = f.shape.reduce((a, c) => a * c, 1);
      const mk = (label: string, k: number, fill: number) =>
        this.buffer(`fuzz.fn.${label}`, k, new Float32Array(k).fill(fill));
      b = {
        x: mk('x', n, Math.PI),
        y: mk('y', n, 0),
        dy: mk('dy', n, 0.5),
        dx: mk('dx', n, 0),
        stats: mk('stats', statsByteLength(f.C) / 4, 0),
        w: mk('w', f.C, 1),
        b: mk('b', f.C, 0),
        rm: mk('rm', f.C, 0),
        rv: mk('rv', f.C, 1),
        dw: mk('dw', f.C, 0),
        db: mk('db', f.C, 0),
      };
      this.functionalBuffers.set(f, b);
    }
    return b;
  }

  private functionalBuffers = new Map<Fixture, Record<string, GPUBuffer>>();

  /** The hostile values for a fixture, by name, made once: [description, value, fails only at submit]. */
  hostile(f: Fixture): [string, unknown, boolean][] {
    const cached = this.catalog.get(f);
    if (cached) return cached;
    const d = this.env.device;
    const n = f.shape.reduce((a, b) => a * b, 1);
    const destroyed = this.buffer('fuzz.destroyed', n);
    destroyed.destroy();
    const fake = { label: 'fake', size: 1 << 20, usage: USAGE(), mapState: 'unmapped', destroy() {} };
    const throwing = Object.defineProperty({}, 'shape', {
      get() {
        throw new Error(GETTER_THREW);
      },
      enumerable: true,
    });
    const values: [string, unknown, boolean][] = [
      ['undefined', undefined, false],
      ['null', null, false],
      ['NaN', NaN, false],
      ['Infinity', Infinity, false],
      ['-Infinity', -Infinity, false],
      ['-1', -1, false],
      ['0', 0, false],
      ['1.5', 1.5, false],
      ['2^31', 2 ** 31, false],
      ['2^40', 2 ** 40, false],
      ['MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER, false],
      ['1e39', 1e39, false],
      ['1e-46', 1e-46, false],
      ["'3'", '3', false],
      ["'str'", 'str', false],
      ['true', true, false],
      ['[]', [], false],
      ['{}', {}, false],
      ['Symbol()', Symbol('fuzz'), false],
      ['a function', () => null, false],
      ['a bigint', 3n, false],
      ['{ length: 1e12 }', { length: 1e12 }, false],
      ['[[1, 2]]', [[1, 2]], false],
      ["['1', '2']", ['1', '2'], false],
      ['a throwing getter', throwing, false],
      ['a fake buffer', fake, false],
      ['a destroyed buffer', destroyed, true],
      ['a buffer of another device', this.buffer('fuzz.other', n, undefined, this.env.other), true],
      ['a mapped buffer', this.mapped(n), false],
      ['a short buffer', this.buffer('fuzz.short', Math.max(1, n - 1)), false],
      ['a buffer without STORAGE', this.buffer('fuzz.nostorage', n, undefined, d, GPUBufferUsage.COPY_DST), false],
      ["the module's running mean", f.bn.runningMean, false],
      ["the module's weight", f.bn.weight, false],
      ["the module's weight gradient", f.bn.weightGrad, false],
      ["the module's saved statistics", f.bn.stats, false],
      ['x itself', f.x, false],
      ['{ buffer, offset: 4 }', { buffer: f.y, offset: 4 }, false],
      ['{ buffer, offset: NaN }', { buffer: f.y, offset: NaN }, false],
      ["{ buffer, size: 'str' }", { buffer: f.y, size: 'str' }, false],
      ['{ buffer, size: NaN }', { buffer: f.y, size: NaN }, false],
      ['{ buffer, size: -1 }', { buffer: f.y, size: -1 }, false],
      ['an overlapping range of dy', { buffer: f.dy, offset: 0, size: 16 }, false],
      ['a finished encoder', finished(d), true],
      ['a plain object for an encoder', { beginComputePass() {} }, false],
      ['5', 5, false],
      ['0.5', 0.5, false],
      ["'NCHW'", 'NCHW', false],
      ["'NWHC'", 'NWHC', false],
      ['[0, 3]', [0, 3], false],
      ['[4]', [4], false],
      ['[2, 3, 2, 8]', [2, 3, 2, 8], false],
      ['{ rmax: 0.5 }', { rmax: 0.5 }, false],
      ['{ schedule: () => null }', { schedule: () => null }, false],
      ['{ renorm: { schedule: () => null } }', { renorm: { schedule: () => null } }, false],
      ["{ affine: 'false' }", { affine: 'false' }, false],
      ['{ eps: 1e-46 }', { eps: 1e-46 }, false],
      ['{ momentum: null }', { momentum: null }, false],
      ['{ num_batches_tracked: null }', { num_batches_tracked: null }, false],
    ];
    this.catalog.set(f, values);
    return values;
  }
}

class Timeout extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout('timeout')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function finished(d: GPUDevice): GPUCommandEncoder {
  const e = d.createCommandEncoder({ label: 'fuzz.finished' });
  e.finish();
  return e;
}

const nchw = (f: Fixture) => (f.layout === 'NHWC' ? [f.shape[0], f.C, ...f.shape.slice(1, -1)] : f.shape);
/** Host data in the fixture's layout, in NCHW order (what the CPU twin takes). */
const toNchw = (f: Fixture, a: ArrayLike<number>) =>
  f.layout === 'NHWC' ? permute(Float64Array.from(a), nchw(f), 'NHWC', true) : Float64Array.from(a);

/** A call ready to run, with what the judge needs to know about it. */
interface Made {
  run: () => unknown;
  mutated: boolean;
  mutation: string;
  /** It may change the fixture module's state (so a refusal must leave it unchanged). */
  touchesModule: boolean;
  /** The mutation can only fail at submit (WebGPU exposes no synchronous check). */
  lateByDesign: boolean;
  /** For an accepted call: a description of an output that aliases state or another binding. */
  aliasAccepted?: () => string | null;
}

interface Entry {
  name: string;
  make(fz: Fuzzer, f: Fixture, r: () => number, pick: <T>(a: readonly T[]) => T): Made;
}

/**
 * Builds a call from valid arguments `args`, replacing one or two of them (most of the time) with
 * hostile values; `run` receives the arguments.
 */
function mutate(
  fz: Fuzzer,
  f: Fixture,
  r: () => number,
  args: Record<string, unknown>,
  run: (a: Record<string, unknown>) => unknown,
  touchesModule: boolean,
  outputs: string[] = [],
): Made {
  const a = { ...args };
  const names = Object.keys(a);
  const hostile = fz.hostile(f);
  const changes: string[] = [];
  let lateByDesign = false;
  const times = r() < 0.2 ? 0 : r() < 0.8 ? 1 : 2;
  for (let i = 0; i < times && names.length; i++) {
    const name = names[Math.floor(r() * names.length)];
    const [desc, v, late] = hostile[Math.floor(r() * hostile.length)];
    a[name] = v;
    lateByDesign ||= late;
    changes.push(`${name} = ${desc}`);
  }
  return {
    run: () => run(a),
    mutated: changes.length > 0,
    mutation: changes.join(', ') || 'none',
    touchesModule,
    lateByDesign,
    aliasAccepted: () => aliasOf(f, a, outputs),
  };
}

const OWNED = (f: Fixture) => [
  f.bn.weight,
  f.bn.bias,
  f.bn.weightGrad,
  f.bn.biasGrad,
  f.bn.runningMean,
  f.bn.runningSpread,
  f.bn.stats,
  f.bn.stepState,
];
const rangeOf = (v: unknown): { buffer: GPUBuffer; offset: number; size: number } | null => {
  if (typeof GPUBuffer !== 'undefined' && v instanceof GPUBuffer) return { buffer: v, offset: 0, size: v.size };
  const s = v as { buffer?: unknown; offset?: number; size?: number } | null;
  if (s && typeof s === 'object' && typeof GPUBuffer !== 'undefined' && s.buffer instanceof GPUBuffer) {
    return { buffer: s.buffer, offset: s.offset ?? 0, size: s.size ?? s.buffer.size - (s.offset ?? 0) };
  }
  return null;
};

/** An accepted call's output that lies in module state or overlaps another of its buffer arguments. */
function aliasOf(f: Fixture, a: Record<string, unknown>, outputs: string[]): string | null {
  for (const o of outputs) {
    const ro = rangeOf(a[o]);
    if (!ro) continue;
    if (OWNED(f).includes(ro.buffer)) return `${o} is the module's ${ro.buffer.label}`;
    for (const [k, v] of Object.entries(a)) {
      const rk = rangeOf(v);
      if (k === o || !rk || rk.buffer !== ro.buffer) continue;
      if (rk.offset < ro.offset + ro.size && ro.offset < rk.offset + rk.size) return `${o} overlaps ${k}`;
    }
  }
  return null;
}

/**
 * Submits an encoder that a call filled. What WebGPU says of it surfaces through the judge's error
 * scope; an exception here is the fuzzer's own (finish() on a finished encoder), not the library's.
 */
function submit(d: GPUDevice, e: GPUCommandEncoder): void {
  try {
    d.queue.submit([e.finish()]);
  } catch {
    // reported by the error scope
  }
}

function stateLike(f: Fixture): Record<string, unknown> {
  const C = f.C;
  const sd: Record<string, unknown> = { running_mean: new Array(C).fill(0.1), num_batches_tracked: 3 };
  if (f.bn.options.affine) Object.assign(sd, { weight: new Array(C).fill(1), bias: new Array(C).fill(0) });
  sd[f.bn.spreadKey] = new Array(C).fill(1);
  return sd;
}

const ENTRIES: Entry[] = [
  {
    name: 'new BatchNorm',
    make: (fz, f, r) =>
      mutate(
        fz,
        f,
        r,
        { C: f.C, options: { ...f.options } },
        (a) => new BatchNorm(fz.env.device, a.C as number, a.options as BatchNormOptions).destroy(),
        false,
      ),
  },
  {
    name: 'new BatchNorm (device)',
    make: (fz, f, r) =>
      mutate(fz, f, r, { device: fz.env.device }, (a) => new BatchNorm(a.device as GPUDevice, 4).destroy(), false),
  },
  {
    name: 'forward',
    make: (fz, f, r) => {
      f.bn.train(r() < 0.7); // before the snapshot: the mode is part of the state a refusal keeps
      return mutate(
        fz,
        f,
        r,
        { x: f.x, y: f.y, shape: f.shape, layout: f.layout },
        (a) => f.bn.forward(a.x as GPUBuffer, a.y as GPUBuffer, a.shape as number[], a.layout as 'NCHW'),
        true,
        ['y'],
      );
    },
  },
  {
    name: 'backward',
    make: (fz, f, r) =>
      mutate(
        fz,
        f,
        r,
        { x: f.x, dy: f.dy, dx: f.dx },
        (a) => f.bn.backward(a.x as GPUBuffer, a.dy as GPUBuffer, a.dx as GPUBuffer),
        true,
        ['dx'],
      ),
  },
  {
    name: 'plan + encode',
    make: (fz, f, r) => {
      const d = fz.env.device;
      const made = mutate(
        fz,
        f,
        r,
        { shape: f.shape, layout: f.layout, x: f.x, y: f.y, dy: f.dy, dx: f.dx, encoder: null },
        (a) => {
          const enc = (a.encoder ?? d.createCommandEncoder({ label: 'fuzz.plan' })) as GPUCommandEncoder;
          const { encoder: _e, ...t } = a;
          const step = f.bn.plan(t as never);
          step.encodeForward(enc);
          step.encodeBackward(enc);
          submit(d, enc);
          step.destroy();
        },
        true,
        ['y', 'dx'],
      );
      if (f.bn.options.renorm?.kind === 'function') made.mutation += ' (module with a function schedule)';
      return made;
    },
  },
  {
    name: 'encode on a step twice, backward first',
    make: (fz, f, r) =>
      mutate(
        fz,
        f,
        r,
        { x: f.x, dy: f.dy, dx: f.dx },
        (a) => {
          const d = fz.env.device;
          const other = new BatchNorm(d, f.C, { affine: false });
          try {
            const step: BatchNormStep = other.plan({
              shape: f.shape,
              layout: f.layout,
              x: a.x as GPUBuffer,
              dy: a.dy as GPUBuffer,
              dx: a.dx as GPUBuffer,
            });
            step.encodeBackward(d.createCommandEncoder());
          } finally {
            other.destroy();
          }
        },
        false,
      ),
  },
  {
    name: 'train',
    make: (fz, f, r) =>
      mutate(
        fz,
        f,
        r,
        { mode: r() < 0.5 },
        (a) => {
          f.bn.train(a.mode as boolean);
        },
        true,
      ),
  },
  {
    name: 'loadStateDict',
    make: (fz, f, r) => {
      const sd = stateLike(f);
      const key = Object.keys(sd)[Math.floor(r() * Object.keys(sd).length)];
      return mutate(fz, f, r, { [key]: sd[key] }, (a) => f.bn.loadStateDict({ ...sd, ...a } as never), true);
    },
  },
  {
    name: 'loadStateDict (whole)',
    make: (fz, f, r) => mutate(fz, f, r, { sd: stateLike(f) }, (a) => f.bn.loadStateDict(a.sd as never), true),
  },
  {
    name: 'stateDict / lastCorrection',
    make: (fz, f, r) => mutate(fz, f, r, {}, () => Promise.all([f.bn.stateDict(), f.bn.lastCorrection()]), true),
  },
  {
    name: 'encodeForwardTrain',
    make: (fz, f, r) => {
      const d = fz.env.device;
      const bufs = fz.functional(f);
      return mutate(
        fz,
        f,
        r,
        {
          layout: f.layout,
          shape: f.shape,
          x: bufs.x,
          y: bufs.y,
          stats: bufs.stats,
          weight: bufs.w,
          bias: bufs.b,
          runningMean: bufs.rm,
          runningVar: bufs.rv,
          eps: 1e-5,
          momentum: 0.1,
          unbiased: true,
          renorm: undefined,
          workgroupSize: undefined,
          dtype: undefined,
          encoder: null,
          device: d,
        },
        (a) => {
          const { encoder, device, ...p } = a;
          const enc = (encoder ?? d.createCommandEncoder()) as GPUCommandEncoder;
          encodeForwardTrain(device as GPUDevice, enc, p as never);
          submit(d, enc);
        },
        false,
        ['y', 'stats', 'runningMean', 'runningVar'],
      );
    },
  },
  {
    name: 'encodeForwardEval / planForwardEval',
    make: (fz, f, r) => {
      const d = fz.env.device;
      const bufs = fz.functional(f);
      const planned = r() < 0.5;
      return mutate(
        fz,
        f,
        r,
        {
          layout: f.layout,
          shape: f.shape,
          x: bufs.x,
          y: bufs.y,
          stats: bufs.stats,
          weight: bufs.w,
          bias: bufs.b,
          runningMean: bufs.rm,
          runningVar: bufs.rv,
          runningIsStd: false,
          encoder: null,
        },
        (a) => {
          const { encoder, ...p } = a;
          const enc = (encoder ?? d.createCommandEncoder()) as GPUCommandEncoder;
          if (planned) planForwardEval(d, p as never).encode(enc);
          else encodeForwardEval(d, enc, p as never);
          submit(d, enc);
        },
        false,
        ['y', 'stats'],
      );
    },
  },
  {
    name: 'encodeBackward / planBackward',
    make: (fz, f, r) => {
      const d = fz.env.device;
      const bufs = fz.functional(f);
      const planned = r() < 0.5;
      return mutate(
        fz,
        f,
        r,
        {
          layout: f.layout,
          shape: f.shape,
          x: bufs.x,
          dy: bufs.dy,
          dx: bufs.dx,
          stats: bufs.stats,
          weight: bufs.w,
          dweight: bufs.dw,
          dbias: bufs.db,
          batchStats: true,
          workspace: undefined,
          encoder: null,
        },
        (a) => {
          const { encoder, ...p } = a;
          if (p.workspace === undefined) delete p.workspace;
          const enc = (encoder ?? d.createCommandEncoder()) as GPUCommandEncoder;
          if (planned) planBackward(d, p as never).encode(enc);
          else encodeBackward(d, enc, p as never);
          submit(d, enc);
        },
        false,
        ['dx', 'dweight', 'dbias'],
      );
    },
  },
  {
    name: 'planForwardTrain',
    make: (fz, f, r) => {
      const d = fz.env.device;
      const bufs = fz.functional(f);
      return mutate(
        fz,
        f,
        r,
        {
          layout: f.layout,
          shape: f.shape,
          x: bufs.x,
          y: bufs.y,
          stats: bufs.stats,
          runningMean: bufs.rm,
          runningVar: bufs.rv,
          renorm: { rmax: 2, dmax: 1 },
        },
        (a) => {
          const plan = planForwardTrain(d, a as never);
          const enc = d.createCommandEncoder();
          plan.encode(enc);
          submit(d, enc);
          plan.destroy();
        },
        false,
        ['y', 'stats', 'runningMean', 'runningVar'],
      );
    },
  },
  {
    name: 'fold',
    make: (fz, f, r) =>
      mutate(
        fz,
        f,
        r,
        { weight: f.x, weightShape: [f.C, 2], weightLayout: 'OIHW', bias: f.dy, weightOut: f.y, biasOut: f.dx },
        (a) => f.bn.fold(a as never),
        false,
        ['weightOut', 'biasOut'],
      ),
  },
  {
    name: 'forwardSync',
    make: (fz, f, r) => {
      f.bn.train(r() < 0.7);
      return mutate(
        fz,
        f,
        r,
        { x: f.x, y: f.y, shape: f.shape, layout: f.layout, batch: f.shape[0], allReduce: (l: ShardStats) => [l] },
        (a) =>
          f.bn.forwardSync(a.x as GPUBuffer, a.y as GPUBuffer, a.shape as number[], a.layout as 'NCHW', {
            batch: a.batch as number,
            allReduce: a.allReduce as never,
          }),
        true,
        ['y'],
      );
    },
  },
  {
    name: 'backwardSync',
    make: (fz, f, r) =>
      mutate(
        fz,
        f,
        r,
        { x: f.x, dy: f.dy, dx: f.dx, allReduce: (l: ShardGradSums) => [l] },
        (a) =>
          f.bn.backwardSync(a.x as GPUBuffer, a.dy as GPUBuffer, a.dx as GPUBuffer, {
            allReduce: a.allReduce as never,
          }),
        true,
        ['dx'],
      ),
  },
  {
    name: 'mergeStats / mergeGradSums / foldBatchNorm',
    make: (fz, f, r) => {
      const C = f.C;
      const stats = { count: 4, mean: new Float64Array(C), m2: new Float64Array(C).fill(1) };
      const sums = { count: 4, sumDy: new Float64Array(C), sumDyXmu: new Float64Array(C) };
      const state = { running_mean: new Array(C).fill(0), running_var: new Array(C).fill(1) };
      return mutate(
        fz,
        f,
        r,
        { stats, sums, weight: new Array(2 * C).fill(1), weightShape: [C, 2], state, eps: 1e-5 },
        (a) => {
          mergeStats([a.stats as ShardStats, a.stats as ShardStats]);
          mergeGradSums([a.sums as ShardGradSums]);
          foldBatchNorm(
            { weight: a.weight as number[], weightShape: a.weightShape as number[], weightLayout: 'HWIO' },
            a.state as never,
            { eps: a.eps as number },
          );
        },
        false,
      );
    },
  },
  {
    name: 'helpers',
    make: (fz, f, r) => {
      const d = fz.env.device;
      const which = Math.floor(r() * 9);
      const args: Record<string, unknown>[] = [
        { C: f.C },
        { n: 10, dtype: 'float32' },
        { device: d, layout: f.layout, shape: f.shape },
        { buffer: f.y, count: 4, dtype: 'float32' },
        { options: { rmaxSteps: [0, 10] } },
        { options: { eps: 1e-3 } },
        { values: [1, 2] },
        { layout: f.layout, shape: f.shape },
        { data: [1, 2, 3, 4], shape: [2, 2], layout: 'NHWC' },
      ];
      const calls: ((a: Record<string, unknown>) => unknown)[] = [
        (a) => statsByteLength(a.C as number),
        (a) => tensorByteLength(a.n as number, a.dtype as 'float32'),
        (a) => workspaceByteLength(a.device as GPUDevice, a.layout as 'NCHW', a.shape as number[]),
        (a) => readBuffer(d, a.buffer as GPUBuffer, a.count as number, a.dtype as 'float32'),
        (a) => renormSchedule(a.options as never)(3),
        (a) => resolveOptions(a.options as never),
        (a) => {
          toHalfArray(a.values as number[]);
          fromHalfArray(a.values as number[]);
          roundHalf((a.values as number[])[0]);
        },
        (a) => geometry(a.layout as 'NCHW', a.shape as number[]),
        (a) => permute(a.data as number[], a.shape as number[], a.layout as 'NCHW'),
      ];
      return mutate(fz, f, r, args[which], calls[which], false);
    },
  },
  {
    name: 'CpuBatchNorm',
    make: (fz, f, r) =>
      mutate(
        fz,
        f,
        r,
        {
          C: f.C,
          options: { ...f.options },
          x: Array.from(f.xs),
          shape: f.shape,
          layout: f.layout,
          dy: Array.from(f.dys),
        },
        (a) => {
          const cpu = new CpuBatchNorm(a.C as number, a.options as BatchNormOptions);
          cpu.forward(a.x as number[], a.shape as number[], a.layout as 'NCHW');
          cpu.backward(a.x as number[], a.dy as number[]);
        },
        false,
      ),
  },
];

/**
 * Calls run in blocks of BLOCK against fixture modules made fresh at each block's start, so a call
 * replays exactly by running its block from the start up to it.
 */
export const BLOCK = 500;

/** Runs calls [from, from + count); `progress` hears of each call before it runs (for crash reports). */
export async function runRange(fz: Fuzzer, from: number, count: number, progress: (k: number) => void): Promise<void> {
  for (let k = from; k < from + count; k++) {
    if (k % BLOCK === 0) fz.reset();
    progress(k);
    // One call in 50 goes to the module on a lost device.
    if (k % 50 === 49) await fz.lostDevice(k);
    else await fz.call(k);
  }
}

export function describeFinding(f: Finding): string {
  const block = f.call - (f.call % BLOCK);
  return `${f.kind} at call ${f.call}: ${f.entry} with ${f.mutation}: ${f.detail}; replay: npm run fuzz -- --seed ${f.seed} --from ${block} --calls ${f.call - block + 1}`;
}
