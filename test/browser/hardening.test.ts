/**
 * Every class of bad input the independent fuzzer found, as a test of its own: each is refused
 * with the library's typed error and code, before anything changes, and the caller's encoder stays
 * usable; what WebGPU gives no way to check beforehand fails where WebGPU says it does.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../src/module/batchnorm';
import * as errors from '../../src/errors';
import { BatchNormError } from '../../src/errors';
import { encodeBackward, encodeForwardTrain } from '../../src/functional';
import { readBuffer } from '../../src/gpu/buffers';
import { renormSchedule } from '../../src/options';
import { resolveOptions } from '../../src/validate/options';
import { statsByteLength, tensorByteLength } from '../../src/plan/params';
import { workspaceByteLength } from '../../src/plan/plans';
import { gpuDevice } from './device';

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const buf = (d: GPUDevice, n: number, label = 'test.hard') =>
  d.createBuffer({ label, size: Math.max(16, n * 4), usage: USAGE() });
const C = 4;
const fake = () =>
  ({ label: 'fake', size: 1 << 20, usage: USAGE(), mapState: 'unmapped', destroy() {} }) as unknown as GPUBuffer;

/** Runs `f`; returns the code of the BatchNormError it threw or rejected with (fails on anything else). */
async function code(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(BatchNormError);
    expect((e as Error).name).toBe((e as Error).constructor.name);
    return (e as BatchNormError).code;
  }
  throw new Error('expected a refusal');
}

/** Everything a module holds, as bits. */
async function snapshot(bn: BatchNorm): Promise<string> {
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
    parts.push(Array.from(new Uint32Array((await readBuffer(bn.device, b)).buffer)));
  }
  return JSON.stringify([parts, bn.training, bn.numBatchesTracked]);
}

type Case = [string, (d: GPUDevice) => unknown, string];

describe.each([
  [
    'a renorm schedule returning null, at construction',
    (d) => new BatchNorm(d, C, { renorm: { schedule: () => null as never } }),
    'E_OPTION',
  ],
  ['renormSchedule(null)', () => renormSchedule(null as never), 'E_OPTION'],
  ['renormSchedule({ rmaxSteps: 5 })', () => renormSchedule({ rmaxSteps: 5 as never }), 'E_OPTION'],
  ['new BatchNorm(device, C, null)', (d) => new BatchNorm(d, C, null as never), 'E_OPTION'],
  ['resolveOptions(null)', () => resolveOptions(null as never), 'E_OPTION'],
  ['options given as 5', (d) => new BatchNorm(d, C, 5 as never), 'E_OPTION'],
  ["options given as 'str'", (d) => new BatchNorm(d, C, 'str' as never), 'E_OPTION'],
  ['options given as true', (d) => new BatchNorm(d, C, true as never), 'E_OPTION'],
  ["affine: 'false'", (d) => new BatchNorm(d, C, { affine: 'false' as never }), 'E_OPTION'],
  ['eps 1e-46 (zero in float32)', (d) => new BatchNorm(d, C, { eps: 1e-46 }), 'E_OPTION'],
  ['eps 1e-40 (a subnormal GPUs flush to zero)', (d) => new BatchNorm(d, C, { eps: 1e-40 }), 'E_OPTION'],
  ['numFeatures 2^31', (d) => new BatchNorm(d, 2 ** 31), 'E_SHAPE'],
  ['numFeatures 2^40', (d) => new BatchNorm(d, 2 ** 40), 'E_SHAPE'],
  ['numFeatures MAX_SAFE_INTEGER', (d) => new BatchNorm(d, Number.MAX_SAFE_INTEGER), 'E_SHAPE'],
  ['a null device for the module', () => new BatchNorm(null as never, C), 'E_OPTION'],
  [
    'a null device for a functional call',
    (d) => encodeForwardTrain(null as never, d.createCommandEncoder(), {} as never),
    'E_OPTION',
  ],
  [
    'null parameters for a functional call',
    (d) => encodeForwardTrain(d, d.createCommandEncoder(), null as never),
    'E_OPTION',
  ],
  [
    'a null encoder',
    (d) =>
      encodeForwardTrain(d, null as never, {
        layout: 'NC',
        shape: [2, C],
        x: buf(d, 8),
        y: buf(d, 8),
        stats: buf(d, 32),
      }),
    'E_OPTION',
  ],
  [
    'an object that only looks like an encoder',
    (d) =>
      encodeForwardTrain(d, { beginComputePass() {} } as never, {
        layout: 'NC',
        shape: [2, C],
        x: buf(d, 8),
        y: buf(d, 8),
        stats: buf(d, 32),
      }),
    'E_OPTION',
  ],
  ['workspaceByteLength(null, ...)', () => workspaceByteLength(null as never, 'NC', [2, C]), 'E_OPTION'],
  [
    'a buffer-like object that is not a GPUBuffer',
    (d) =>
      encodeForwardTrain(d, d.createCommandEncoder(), {
        layout: 'NC',
        shape: [2, C],
        x: fake(),
        y: buf(d, 8),
        stats: buf(d, 32),
      }),
    'E_BUFFER_MISSING',
  ],
  [
    '{ size: NaN }',
    (d) =>
      encodeForwardTrain(d, d.createCommandEncoder(), {
        layout: 'NC',
        shape: [2, C],
        x: { buffer: buf(d, 8), size: NaN },
        y: buf(d, 8),
        stats: buf(d, 32),
      }),
    'E_BUFFER_SIZE',
  ],
  [
    "{ size: 'str' }",
    (d) =>
      encodeForwardTrain(d, d.createCommandEncoder(), {
        layout: 'NC',
        shape: [2, C],
        x: { buffer: buf(d, 8), size: 'str' as never },
        y: buf(d, 8),
        stats: buf(d, 32),
      }),
    'E_BUFFER_SIZE',
  ],
  [
    'functional momentum: null',
    (d) =>
      encodeForwardTrain(d, d.createCommandEncoder(), {
        layout: 'NC',
        shape: [2, C],
        x: buf(d, 8),
        y: buf(d, 8),
        stats: buf(d, 32),
        momentum: null as never,
      }),
    'E_OPTION',
  ],
  [
    'functional backward with dweight and dbias but no weight',
    (d) =>
      encodeBackward(d, d.createCommandEncoder(), {
        layout: 'NC',
        shape: [2, C],
        x: buf(d, 8),
        dy: buf(d, 8),
        dx: buf(d, 8),
        stats: buf(d, 32),
        dweight: fake(),
        dbias: fake(),
      }),
    'E_OPTION',
  ],
  ['statsByteLength(-1)', () => statsByteLength(-1), 'E_OPTION'],
  ['statsByteLength(1.5)', () => statsByteLength(1.5), 'E_OPTION'],
  ["tensorByteLength(10, 'bogus')", () => tensorByteLength(10, 'bogus' as never), 'E_OPTION'],
] as Case[])('typed refusal: %s', (_name, f, want) => {
  it(`-> ${want}`, async () => {
    const d = await gpuDevice();
    expect(await code(() => f(d))).toBe(want);
  });
});

describe('refusals of the module change nothing', () => {
  const cases: [string, (m: Awaited<ReturnType<typeof setup>>) => unknown, string][] = [
    ["train('no')", (m) => m.bn.train('no' as never), 'E_OPTION'],
    [
      'loadStateDict with a Symbol value',
      (m) => m.bn.loadStateDict({ ...m.sd, running_mean: Symbol('x') as never }),
      'E_STATE_DICT',
    ],
    [
      'loadStateDict with { length: 1e12 }',
      (m) => m.bn.loadStateDict({ ...m.sd, running_mean: { length: 1e12 } }),
      'E_STATE_DICT',
    ],
    [
      'loadStateDict with numeric strings',
      (m) => m.bn.loadStateDict({ ...m.sd, running_mean: ['1', '2', '3', '4'] as never }),
      'E_STATE_DICT',
    ],
    [
      'loadStateDict with nested arrays',
      (m) => m.bn.loadStateDict({ ...m.sd, running_mean: [[1], [2], [3], [4]] as never }),
      'E_STATE_DICT',
    ],
    [
      'loadStateDict with 1e39 (beyond float32)',
      (m) => m.bn.loadStateDict({ ...m.sd, bias: [0, 1e39, 0, 0] }),
      'E_STATE_DICT',
    ],
    ...(['null', 'true', '[]', "'3'", '0.5', '-1', '2^32'] as const).map(
      (v): [string, (m: Awaited<ReturnType<typeof setup>>) => unknown, string] => [
        `loadStateDict with num_batches_tracked ${v}`,
        (m) =>
          m.bn.loadStateDict({
            ...m.sd,
            num_batches_tracked: (
              { null: null, true: true, '[]': [], "'3'": '3', '0.5': 0.5, '-1': -1, '2^32': 2 ** 32 } as Record<
                string,
                unknown
              >
            )[v] as never,
          }),
        'E_STATE_DICT',
      ],
    ),
    [
      'forward writing the running mean (eval)',
      (m) => (m.bn.eval(), m.bn.forward(m.x, m.bn.runningMean, [1, C], 'NC')),
      'E_BUFFER_ALIAS',
    ],
    [
      'forward writing the running variance',
      (m) => m.bn.forward(m.x, m.bn.runningSpread, [1, C], 'NC'),
      'E_BUFFER_ALIAS',
    ],
    ['forward writing the weight', (m) => m.bn.forward(m.x, m.bn.weight, [1, C], 'NC'), 'E_BUFFER_ALIAS'],
    ['forward writing the bias', (m) => m.bn.forward(m.x, m.bn.bias, [1, C], 'NC'), 'E_BUFFER_ALIAS'],
    ['forward writing the weight gradient', (m) => m.bn.forward(m.x, m.bn.weightGrad, [1, C], 'NC'), 'E_BUFFER_ALIAS'],
    [
      'backward writing the bias gradient',
      async (m) => {
        await m.bn.forward(m.x2, m.y2, [2, C], 'NC');
        return m.bn.backward(m.x2, m.dy2, m.bn.biasGrad);
      },
      'E_BUFFER_SIZE',
    ],
    [
      'backward writing the running mean (shape [1, C])',
      async (m) => {
        m.bn.eval();
        await m.bn.forward(m.x, m.y, [1, C], 'NC');
        return m.bn.backward(m.x, m.dy, m.bn.runningMean);
      },
      'E_BUFFER_ALIAS',
    ],
    [
      'backward on another x',
      async (m) => {
        await m.bn.forward(m.x2, m.y2, [2, C], 'NC');
        return m.bn.backward(m.y2, m.dy2, m.dx2);
      },
      'E_INPUT_MISMATCH',
    ],
    ['backward before any forward', (m) => m.bn.backward(m.x2, m.dy2, m.dx2), 'E_NO_FORWARD'],
  ];
  async function setup() {
    const d = await gpuDevice();
    const bn = new BatchNorm(d, C);
    const sd = {
      weight: [1, 2, 3, 4],
      bias: [0, 0.5, 0, 1],
      running_mean: [0.1, 0.2, 0.3, 0.4],
      running_var: [1, 2, 1, 2],
      num_batches_tracked: 5,
    };
    await bn.loadStateDict(sd);
    return {
      d,
      bn,
      sd,
      x: buf(d, C),
      y: buf(d, C),
      dy: buf(d, C),
      x2: buf(d, 2 * C),
      y2: buf(d, 2 * C),
      dy2: buf(d, 2 * C),
      dx2: buf(d, 2 * C),
    };
  }
  for (const [name, f, want] of cases) {
    it(`${name} -> ${want}`, async () => {
      const m = await setup();
      const before = await snapshot(m.bn);
      const training = m.bn.training;
      expect(await code(() => f(m))).toBe(want);
      m.bn.train(training);
      // Forward calls made on the way to a refused backward ran; compare from after them.
      if (!name.startsWith('backward') || want === 'E_NO_FORWARD') expect(await snapshot(m.bn)).toBe(before);
      m.bn.destroy();
    });
  }
});

describe('functional outputs may not overlap other bindings', () => {
  const cases: [string, (d: GPUDevice) => unknown][] = [
    [
      'stats in the same buffer as x',
      (d) => {
        const b = buf(d, 128);
        return encodeForwardTrain(d, d.createCommandEncoder(), {
          layout: 'NC',
          shape: [2, C],
          x: { buffer: b, offset: 0, size: 32 },
          y: buf(d, 8),
          stats: { buffer: b, offset: 256 },
        });
      },
    ],
    [
      'y overlapping runningMean',
      (d) => {
        const b = buf(d, 64);
        return encodeForwardTrain(d, d.createCommandEncoder(), {
          layout: 'NC',
          shape: [2, C],
          x: buf(d, 8),
          y: { buffer: b, offset: 0 },
          stats: buf(d, 32),
          runningMean: { buffer: b, offset: 0, size: 16 },
          runningVar: buf(d, C),
        });
      },
    ],
    [
      'dx overlapping dweight',
      (d) => {
        const b = buf(d, 64);
        return encodeBackward(d, d.createCommandEncoder(), {
          layout: 'NC',
          shape: [2, C],
          x: buf(d, 8),
          dy: buf(d, 8),
          dx: { buffer: b, offset: 0, size: 32 },
          stats: buf(d, 32),
          weight: buf(d, C),
          dweight: { buffer: b, offset: 0, size: 16 },
          dbias: buf(d, C),
        });
      },
    ],
    [
      "a module's saved statistics as stats",
      (d) =>
        encodeForwardTrain(d, d.createCommandEncoder(), {
          layout: 'NC',
          shape: [2, C],
          x: buf(d, 8),
          y: buf(d, 8),
          stats: new BatchNorm(d, C).stats,
        }),
    ],
  ];
  for (const [name, f] of cases) {
    it(`${name} -> E_BUFFER_ALIAS`, async () => {
      const d = await gpuDevice();
      expect(await code(() => f(d))).toBe('E_BUFFER_ALIAS');
    });
  }
});

describe('what used to surface late or never', () => {
  it('a schedule that fails at a later step: a typed error naming the step, and the module still saves', async () => {
    const d = await gpuDevice();
    const bn = new BatchNorm(d, C, {
      renorm: { schedule: (step: number) => (step < 1 ? { rmax: 2, dmax: 1 } : { rmax: 0.5, dmax: 1 }) },
    });
    const x = buf(d, 2 * C),
      y = buf(d, 2 * C);
    await bn.forward(x, y, [2, C], 'NC');
    const err = await bn.forward(x, y, [2, C], 'NC').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(errors.OptionError);
    expect((err as Error).message).toMatch(/at step 1/);
    const sd = await bn.stateDict();
    expect(sd.num_batches_tracked).toBe(1);
    expect(sd).not.toHaveProperty('renorm_rmax');
    bn.destroy();
  });

  it('a mapped buffer is refused up front (E_BUFFER_MAPPED)', async () => {
    const d = await gpuDevice();
    const mapped = d.createBuffer({ label: 'mapped', size: 32, usage: USAGE(), mappedAtCreation: true });
    expect(
      await code(() =>
        encodeForwardTrain(d, d.createCommandEncoder(), {
          layout: 'NC',
          shape: [2, C],
          x: mapped,
          y: buf(d, 8),
          stats: buf(d, 32),
        }),
      ),
    ).toBe('E_BUFFER_MAPPED');
  });

  it("a refused functional call leaves the caller's encoder usable", async () => {
    const d = await gpuDevice();
    const enc = d.createCommandEncoder();
    const args = { layout: 'NC' as const, shape: [2, C], x: buf(d, 8), y: buf(d, 8), stats: buf(d, 32) };
    expect(await code(() => encodeForwardTrain(d, enc, { ...args, eps: -1 }))).toBe('E_OPTION');
    expect(await code(() => encodeForwardTrain(d, enc, { ...args, y: args.x }))).toBe('E_BUFFER_ALIAS');
    d.pushErrorScope('validation');
    encodeForwardTrain(d, enc, args);
    d.queue.submit([enc.finish()]);
    expect(await d.popErrorScope()).toBeNull();
  });

  it("numFeatures whose buffers exceed the device's maxBufferSize -> E_LIMIT", async () => {
    const real = await gpuDevice();
    const limits: Record<string, number> = {};
    for (const k in real.limits) limits[k] = (real.limits as unknown as Record<string, number>)[k];
    limits.maxBufferSize = 1 << 20;
    const device = new Proxy(real, {
      get(t, k) {
        if (k === 'limits') return limits;
        const v = Reflect.get(t, k);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    expect(await code(() => new BatchNorm(device, 40_000))).toBe('E_LIMIT');
  });

  // WebGPU gives no way to see these before submit: no destroyed flag, no owning device, no encoder
  // state. The awaited calls report them as GpuError with the state unchanged; a plan or a
  // functional call records commands that WebGPU rejects at the caller's submit.
  for (const [name, make] of [
    [
      'a destroyed buffer',
      (d: GPUDevice) => {
        const b = buf(d, 8);
        b.destroy();
        return b;
      },
    ],
    [
      'a buffer of another device',
      async () => buf(await (await import('../../src/device')).requestBatchNormDevice(), 8),
    ],
  ] as [string, (d: GPUDevice) => GPUBuffer | Promise<GPUBuffer>][]) {
    it(`${name}: GpuError from an awaited call, state unchanged; a validation error at the caller's submit for a functional one`, async () => {
      const d = await gpuDevice();
      const x = await make(d);
      const bn = new BatchNorm(d, C);
      const before = await snapshot(bn);
      expect(await code(() => bn.forward(x, buf(d, 8), [2, C], 'NC'))).toBe('E_GPU');
      expect(await snapshot(bn)).toBe(before);
      const enc = d.createCommandEncoder();
      d.pushErrorScope('validation');
      encodeForwardTrain(d, enc, { layout: 'NC', shape: [2, C], x, y: buf(d, 8), stats: buf(d, 32) });
      d.queue.submit([enc.finish()]);
      expect(await d.popErrorScope()).not.toBeNull();
      bn.destroy();
    });
  }
});

describe('error classes name themselves', () => {
  for (const [name, Ctor] of Object.entries(errors)) {
    it(name, () => {
      const e = new (Ctor as new (...a: unknown[]) => Error)('E_BUFFER_SIZE', 'message');
      expect(e.name).toBe(name);
      expect(String(e)).toMatch(new RegExp(`^${name}: `));
    });
  }
});

describe('what the 100,000-call fuzz found (RELIABILITY.md)', () => {
  it('a BigInt where a flag belongs is an OptionError (its message cannot JSON-serialise it)', async () => {
    const d = await gpuDevice();
    const n = 2 * C * 9;
    const p = { layout: 'NCHW' as const, shape: [2, C, 3, 3], x: buf(d, n), y: buf(d, n), stats: buf(d, 8 * C) };
    const enc = d.createCommandEncoder();
    expect(await code(() => encodeForwardTrain(d, enc, { ...p, unbiased: 1n as never }))).toBe('E_OPTION');
    expect(
      await code(() =>
        encodeBackward(d, enc, { ...p, dy: buf(d, n), dx: buf(d, n), batchStats: 2n as never, y: undefined }),
      ),
    ).toBe('E_OPTION');
  });

  it('readBuffer of a mapped buffer is refused before anything is submitted', async () => {
    const d = await gpuDevice();
    const b = d.createBuffer({
      size: 16,
      usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.MAP_WRITE,
      mappedAtCreation: true,
    });
    expect(await code(() => readBuffer(d, b))).toBe('E_BUFFER_MAPPED');
    b.unmap();
    expect((await readBuffer(d, b)).length).toBe(4);
  });

  it('a refused awaited forward after planned steps leaves even the host count as it was', async () => {
    const d = await gpuDevice();
    const n = 4 * C * 4;
    const bn = new BatchNorm(d, C, { virtualBatchSize: 2, epilogue: 'relu' });
    const t = { shape: [4, 2, 2, C], layout: 'NHWC' as const, x: buf(d, n), y: buf(d, n) };
    const enc = d.createCommandEncoder();
    bn.plan(t).encodeForward(enc);
    d.queue.submit([enc.finish()]);
    const count = bn.numBatchesTracked;
    const gone = buf(d, n);
    gone.destroy();
    expect(await code(() => bn.forward(gone, t.y, t.shape, 'NHWC'))).toBe('E_GPU');
    expect(bn.numBatchesTracked).toBe(count);
    await bn.forward(t.x, t.y, t.shape, 'NHWC');
    expect(bn.numBatchesTracked).toBe(2);
    bn.destroy();
  });
});
