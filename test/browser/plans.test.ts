/**
 * The encoder-level API: steps of several modules recorded into one command buffer and submitted
 * once behave as the awaited calls do, against the float64 CPU path; refusals change nothing and
 * leave the caller's encoder usable; the step count, the cumulative factor and the renorm schedule
 * advance once per step the GPU runs; a command buffer never submitted changes nothing; a steady
 * loop creates no GPU objects.
 */
import { describe, expect, it } from 'vitest';
import { BatchNorm } from '../../src/module/batchnorm';
import { BatchNormError, CallOrderError, OptionError } from '../../src/errors';
import { readFloats } from '../../src/gpu/buffers';
import { CpuBatchNorm } from '../../src/cpu/batchnorm';
import { scaledError } from '../../src/conformance/golden';
import { shapeInLayout } from '../../src/conformance/layouts';
import {
  awaitedRun,
  cpuRun,
  encodedRun,
  errors,
  rotatingBuffers,
  gpuTensors,
  LAYERS,
  stepData,
  upload,
} from '../plans-contract';
import { gpuDevice } from './device';

/** f32 against float64 over three steps (the golden vectors measure ≤ 4e-7 per step). */
const TOL = 1e-5;
const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer));

describe('plans: one command buffer for a training step of several layers', () => {
  it('plans take their tensors at encode time: rotating buffers give the float64 results, and a steady loop makes no pipelines or bind groups', async () => {
    const r = await rotatingBuffers(await gpuDevice());
    for (const e of r.worst) expect(e).toBeLessThan(1e-5);
    expect(r.steady).toEqual({ bindGroups: 0, pipelines: 0 });
    expect(r.refusals).toEqual(['E_BUFFER_SIZE', 'E_BUFFER_ALIAS', 'E_OPTION', 'E_BUFFER_ALIAS']);
  });
  it('three forward+backward steps of two modules, encoded once, equal three awaited steps and the CPU path', async () => {
    const device = await gpuDevice();
    const data = LAYERS.map((l, i) => stepData(l, 3, 20 + i));
    const encoded = await encodedRun(device, LAYERS, data);
    const awaited = await awaitedRun(device, LAYERS, data);
    const cpu = cpuRun(LAYERS, data);
    LAYERS.forEach((l, i) => {
      // The same kernels in the same order: bit for bit.
      for (const k of ['running_mean', 'running_var', 'running_std'] as const) {
        if (awaited[i].state[k])
          expect(bits(encoded.outcomes[i].state[k]!), `${l.name} ${k}`).toEqual(bits(awaited[i].state[k]!));
      }
      expect(bits(encoded.outcomes[i].weightGrad)).toEqual(bits(awaited[i].weightGrad));
      expect(bits(encoded.outcomes[i].dx)).toEqual(bits(awaited[i].dx));
      expect(encoded.outcomes[i].state.num_batches_tracked).toBe(3);
      expect(awaited[i].state.num_batches_tracked).toBe(3);
      for (const [k, e] of Object.entries(errors(encoded.outcomes[i], cpu[i])))
        expect(e, `${l.name} ${k}`).toBeLessThanOrEqual(TOL);
    });
    encoded.mods.forEach((m) => m.destroy());
  });

  it("renorm's schedule advances once per encoded step: r, d and the clip of step 2 match the CPU path", async () => {
    const device = await gpuDevice();
    const l = LAYERS[0];
    const data = [stepData(l, 3, 31)];
    const { outcomes, mods } = await encodedRun(device, [l], data);
    const [cpu] = cpuRun([l], data);
    const c = (await mods[0].lastCorrection())!;
    expect(scaledError(c.r, cpu.r)).toBeLessThanOrEqual(TOL);
    expect(scaledError(c.d, cpu.d)).toBeLessThanOrEqual(TOL);
    // The clip of step 2 (rmax 1.5, dmax 0.5 at the end of the ramp) was reached and applied.
    expect(Math.max(...c.r)).toBeLessThanOrEqual(1.5 + 1e-6);
    expect(outcomes[0].state).toMatchObject({ num_batches_tracked: 3, renorm_rmax: 1.5, renorm_dmax: 0.5 });
    mods[0].destroy();
  });

  it('eval mode encodes inference, and does not count a step', async () => {
    const device = await gpuDevice();
    const l = LAYERS[1];
    const [d] = stepData(l, 1, 41);
    const bn = new BatchNorm(device, l.nchw[1], l.options);
    await bn.loadStateDict({
      ...l.init,
      running_mean: [0.5, -0.5, 1, 0, 0, 2],
      running_var: [2, 0.5, 1, 1, 3, 1],
      num_batches_tracked: 7,
    });
    const [t] = gpuTensors(device, l, [d]);
    const step = bn.plan({ shape: l.nchw, layout: l.layout, ...t });
    bn.eval();
    const enc = device.createCommandEncoder();
    step.encodeForward(enc);
    step.encodeBackward(enc);
    device.queue.submit([enc.finish()]);
    const cpu = new CpuBatchNorm(l.nchw[1], l.options);
    cpu.loadStateDict({
      ...l.init,
      running_mean: [0.5, -0.5, 1, 0, 0, 2],
      running_var: [2, 0.5, 1, 1, 3, 1],
      num_batches_tracked: 7,
    });
    cpu.eval();
    const y = cpu.forward(d.x, l.nchw, 'NCHW');
    const g = cpu.backward(d.x, d.dy);
    const n = d.x.length;
    expect(scaledError(await readFloats(device, { buffer: t.y }, n), y)).toBeLessThanOrEqual(TOL);
    expect(scaledError(await readFloats(device, { buffer: t.dx }, n), g.dx)).toBeLessThanOrEqual(TOL);
    expect((await bn.stateDict()).num_batches_tracked).toBe(7);
    bn.destroy();
  });

  it('a command buffer that is never submitted changes nothing; the next step counts from the GPU', async () => {
    const device = await gpuDevice();
    const l = LAYERS[1];
    const data = stepData(l, 3, 51);
    const bn = new BatchNorm(device, l.nchw[1], l.options);
    await bn.loadStateDict(l.init);
    const t = gpuTensors(device, l, data);
    const steps = t.map((b) => bn.plan({ shape: l.nchw, layout: l.layout, ...b }));
    const lost = device.createCommandEncoder();
    steps[0].encodeForward(lost);
    steps[1].encodeForward(lost); // never submitted
    const enc = device.createCommandEncoder();
    steps[2].encodeForward(enc);
    device.queue.submit([enc.finish()]);
    const sd = await bn.stateDict();
    expect(sd.num_batches_tracked).toBe(1);
    // Equal to one step of the CPU path from the initial state: factor 1/1, not 1/3.
    const cpu = new CpuBatchNorm(l.nchw[1], l.options);
    cpu.loadStateDict(l.init);
    cpu.forward(data[2].x, l.nchw, 'NCHW');
    expect(scaledError(sd.running_mean!, cpu.runningMean)).toBeLessThanOrEqual(TOL);
    expect(scaledError(sd.running_var!, cpu.runningSpread)).toBeLessThanOrEqual(TOL);
    expect(bn.numBatchesTracked).toBe(1);
    bn.destroy();
  });

  it('the awaited calls and encoded steps mix on one module', async () => {
    const device = await gpuDevice();
    const l = LAYERS[1];
    const data = stepData(l, 2, 61);
    const bn = new BatchNorm(device, l.nchw[1], l.options);
    await bn.loadStateDict(l.init);
    const t = gpuTensors(device, l, data);
    const enc = device.createCommandEncoder();
    bn.plan({ shape: l.nchw, layout: l.layout, ...t[0] }).encodeForward(enc);
    device.queue.submit([enc.finish()]);
    await bn.forward(t[1].x, t[1].y, l.nchw, l.layout); // reads the count the plan left: step 2, factor 1/2
    const cpu = new CpuBatchNorm(l.nchw[1], l.options);
    cpu.loadStateDict(l.init);
    for (const d of data) cpu.forward(d.x, l.nchw, 'NCHW');
    expect(bn.numBatchesTracked).toBe(2);
    expect(scaledError((await bn.stateDict()).running_mean!, cpu.runningMean)).toBeLessThanOrEqual(TOL);
    bn.destroy();
  });
});

describe('plans: refusals change nothing and leave the encoder usable', () => {
  const l = LAYERS[1];
  const cases: [
    string,
    (bn: BatchNorm, t: ReturnType<typeof gpuTensors>[number], device: GPUDevice) => unknown,
    string,
  ][] = [
    [
      'a short x',
      (bn, t, d) => bn.plan({ shape: l.nchw, layout: l.layout, x: upload(d, 'short', 10), y: t.y }),
      'E_BUFFER_SIZE',
    ],
    [
      'a mapped x',
      (bn, t, d) =>
        bn.plan({
          shape: l.nchw,
          layout: l.layout,
          x: d.createBuffer({ size: t.x.size, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true }),
          y: t.y,
        }),
      'E_BUFFER_MAPPED',
    ],
    ['C other than the module', (bn, t) => bn.plan({ shape: [3, 4, 4, 6], layout: 'NCHW', x: t.x, y: t.y }), 'E_SHAPE'],
    ['no layout for rank 4', (bn, t) => bn.plan({ shape: l.nchw, x: t.x, y: t.y }), 'E_LAYOUT'],
    ['y = x', (bn, t) => bn.plan({ shape: l.nchw, layout: l.layout, x: t.x, y: t.x }), 'E_BUFFER_ALIAS'],
    [
      "y is the module's running mean",
      (bn) => bn.plan({ shape: [1, 6], layout: 'NC', x: upload(bn.device, 'x1', 6), y: bn.runningMean }),
      'E_BUFFER_ALIAS',
    ],
    [
      "dx is the module's weight gradient",
      (bn) =>
        bn.plan({
          shape: [1, 6],
          layout: 'NC',
          x: upload(bn.device, 'x1', 6),
          y: upload(bn.device, 'y1', 6),
          dy: upload(bn.device, 'dy1', 6),
          dx: bn.weightGrad,
        }),
      'E_BUFFER_ALIAS',
    ],
    ['dy without dx', (bn, t) => bn.plan({ shape: l.nchw, layout: l.layout, x: t.x, y: t.y, dy: t.dy }), 'E_OPTION'],
    [
      'an unknown tensor',
      (bn, t) => bn.plan({ shape: l.nchw, layout: l.layout, x: t.x, y: t.y, z: t.dy } as never),
      'E_OPTION',
    ],
    [
      'backward before any forward',
      (bn, t) => bn.plan({ shape: l.nchw, layout: l.layout, ...t }).encodeBackward(bn.device.createCommandEncoder()),
      'E_NO_FORWARD',
    ],
  ];
  for (const [name, call, code] of cases) {
    it(`${name} -> ${code}`, async () => {
      const device = await gpuDevice();
      const bn = new BatchNorm(device, l.nchw[1], l.options);
      await bn.loadStateDict(l.init);
      const [t] = gpuTensors(device, l, stepData(l, 1, 71));
      const before = JSON.stringify(await bn.stateDict(), (_k, v) => (v instanceof Float32Array ? Array.from(v) : v));
      let err: unknown = null;
      try {
        call(bn, t, device);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BatchNormError);
      expect((err as BatchNormError).code).toBe(code);
      expect(JSON.stringify(await bn.stateDict(), (_k, v) => (v instanceof Float32Array ? Array.from(v) : v))).toBe(
        before,
      );
      // The caller's encoder takes a valid step after the refusal.
      const enc = device.createCommandEncoder();
      device.pushErrorScope('validation');
      bn.plan({ shape: l.nchw, layout: l.layout, ...t }).encodeForward(enc);
      device.queue.submit([enc.finish()]);
      expect(await device.popErrorScope()).toBeNull();
      expect((await bn.stateDict()).num_batches_tracked).toBe(1);
      bn.destroy();
    });
  }

  it('backward on another x -> E_INPUT_MISMATCH', async () => {
    const device = await gpuDevice();
    const bn = new BatchNorm(device, l.nchw[1], l.options);
    const t = gpuTensors(device, l, stepData(l, 2, 81));
    const [a, b] = t.map((x) => bn.plan({ shape: l.nchw, layout: l.layout, ...x }));
    const enc = device.createCommandEncoder();
    a.encodeForward(enc);
    expect(() => b.encodeBackward(enc)).toThrow(CallOrderError);
    expect(() => b.encodeBackward(enc)).toThrow(/last forward/);
    bn.destroy();
  });

  it('a function schedule is refused by plan() with the fix, and still trains through awaited calls', async () => {
    const device = await gpuDevice();
    const bn = new BatchNorm(device, 6, { renorm: { schedule: (step: number) => ({ rmax: 1 + step, dmax: step }) } });
    const [t] = gpuTensors(device, l, stepData(l, 1, 91));
    expect(() => bn.plan({ shape: l.nchw, layout: l.layout, ...t })).toThrow(OptionError);
    expect(() => bn.plan({ shape: l.nchw, layout: l.layout, ...t })).toThrow(/renormSchedule/);
    await bn.forward(t.x, t.y, l.nchw, l.layout);
    expect((await bn.stateDict()).num_batches_tracked).toBe(1);
    bn.destroy();
  });

  it('a destroyed step or module refuses to encode', async () => {
    const device = await gpuDevice();
    const bn = new BatchNorm(device, 6);
    const [t] = gpuTensors(device, l, stepData(l, 1, 92));
    const step = bn.plan({ shape: l.nchw, layout: l.layout, ...t });
    step.destroy();
    expect(() => step.encodeForward(device.createCommandEncoder())).toThrow(/destroyed/);
    const other = bn.plan({ shape: l.nchw, layout: l.layout, ...t });
    bn.destroy();
    expect(() => other.encodeForward(device.createCommandEncoder())).toThrow(/destroyed/);
  });
});

describe('plans: a steady loop creates nothing', () => {
  it('after the first step, encoding creates no buffers and no bind groups', async () => {
    const real = await gpuDevice();
    let created = 0;
    const device = new Proxy(real, {
      get(t, k) {
        const v = Reflect.get(t, k);
        if (k === 'createBuffer' || k === 'createBindGroup')
          return (...a: unknown[]) => {
            created++;
            return (v as (...x: unknown[]) => unknown).apply(t, a);
          };
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    const l = LAYERS[0];
    const bn = new BatchNorm(device, l.nchw[1], l.options);
    const [t] = gpuTensors(real, l, stepData(l, 1, 101));
    const step = bn.plan({ shape: shapeInLayout(l.nchw, l.layout), layout: l.layout, ...t });
    const run = () => {
      const enc = real.createCommandEncoder();
      step.encodeForward(enc);
      step.encodeBackward(enc);
      real.queue.submit([enc.finish()]);
    };
    run();
    const after = created;
    for (let i = 0; i < 5; i++) run();
    expect(created - after).toBe(0);
    expect((await bn.stateDict()).num_batches_tracked).toBe(6);
    bn.destroy();
  });
});
