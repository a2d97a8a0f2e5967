#!/usr/bin/env node
/**
 * npm run bench -- [--runtime browser|node] [--quick] [--json [OUT.json]] [--svg OUT.svg]
 *                  [--ops forward-train,inference,backward,renorm-forward,train-step,epilogues,tfjs]
 *                  [--shapes resnet50,mlp,64x56x56x256,4096x1024] [--batch N] [--versions 1,2,3,4,5]
 *                  [--dtypes f32,f16] [--reps N] [--iters N] [--profile] [--torch TORCH.json] [--no-tfjs]
 *                  [--warm-ms 1000]
 * npm run bench -- --plan-report [--shapes resnet50,mlp] [--batch N] [--fit RUN.json] [--json OUT.json]
 *
 * Times the ops in NHWC, NCHW and [N,C] for each kernel version, beside an in-run vec4 copy,
 * TF.js's WebGPU backend (browser runtime) and PyTorch (--torch: bench/torch_bn_bench.py's JSON
 * from the same machine and run), the training step of a network's BN layers (train-step), and the
 * TF.js bridge against TF.js's own BatchNormalization in TF.js training steps (tfjs).
 * Prints a table, writes the JSON report and an SVG chart. --plan-report times nothing: it prints
 * the plans of versions 4 and 5 and the cost model's predictions (bench/plan-report.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { inBrowser } from '../src/cli/browserPage';
import { nodeGpu } from '../src/cli/nodeGpu';
import { HEADER, OPS, summary, type BenchConfig, type Op, type Report, type TorchReport } from './bench';
import { expandShapes, FULL_SHAPES, QUICK_BATCH, QUICK_SHAPES, RESNET_BATCH } from './shapes';
import { TRAIN_STEP_HEADER } from './train-step';
import { EPILOGUE_HEADER } from './epilogue';
import { chart } from './svg';

// `--json` alone writes bench-results.json.
const argv = process.argv.slice(2);
const j = argv.indexOf('--json');
if (j >= 0 && (j === argv.length - 1 || argv[j + 1].startsWith('--'))) argv.splice(j + 1, 0, 'bench-results.json');

const { values } = parseArgs({
  args: argv,
  options: {
    runtime: { type: 'string', default: 'browser' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    svg: { type: 'string' },
    ops: { type: 'string' },
    shapes: { type: 'string' },
    batch: { type: 'string' },
    versions: { type: 'string', default: '5' },
    dtypes: { type: 'string', default: 'f32,f16' },
    reps: { type: 'string' },
    iters: { type: 'string' },
    profile: { type: 'boolean', default: false },
    torch: { type: 'string' },
    'no-tfjs': { type: 'boolean', default: false },
    'plan-report': { type: 'boolean', default: false },
    'warm-ms': { type: 'string', default: '1000' },
    fit: { type: 'string' },
  },
});

const list = (s: string | undefined) =>
  s
    ?.split(',')
    .map((v) => v.trim())
    .filter(Boolean);
const requested = list(values.ops) ?? OPS.filter((o) => o !== 'train-step' && o !== 'epilogues');
const withTfjs = requested.includes('tfjs');
const ops = requested.filter((o) => o !== 'tfjs') as Op[];
for (const d of list(values.dtypes) ?? [])
  if (d !== 'f32' && d !== 'f16') throw new Error(`unknown dtype ${d}; dtypes are f32, f16`);
for (const o of ops) if (!OPS.includes(o)) throw new Error(`unknown op ${o}; ops are ${[...OPS, 'tfjs'].join(', ')}`);
if (values.runtime !== 'browser' && values.runtime !== 'node')
  throw new Error(`--runtime must be browser or node; got ${values.runtime}`);
const batch = Number(values.batch ?? (values.quick ? QUICK_BATCH : RESNET_BATCH));
if (!Number.isSafeInteger(batch) || batch < 1)
  throw new Error(`--batch must be a positive integer; got ${values.batch}`);
let torch: TorchReport | null = null;
if (values.torch) {
  const text = readFileSync(values.torch, 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('JSON ')) ?? text;
  torch = JSON.parse(line.replace(/^JSON /, '')) as TorchReport;
}
const cfg: BenchConfig = {
  ops,
  shapes: expandShapes(list(values.shapes) ?? (values.quick ? QUICK_SHAPES : FULL_SHAPES), batch, values.quick),
  versions: list(values.versions)!.map(Number) as BenchConfig['versions'],
  dtypes: (list(values.dtypes) ?? ['f32', 'f16']) as BenchConfig['dtypes'],
  reps: Number(values.reps ?? (values.quick ? 20 : 30)),
  iters: Number(values.iters ?? (values.quick ? 3 : 20)),
  runtime: values.runtime,
  profile: values.profile,
  warmMs: Number(values['warm-ms']),
  trainStep: { network: values.quick ? 'quick' : 'resnet50', batch },
  torch,
};
for (const v of cfg.versions)
  if (![1, 2, 3, 4, 5].includes(v)) throw new Error(`unknown kernel version ${v}; versions are 1, 2, 3, 4, 5`);
if (cfg.reps < 20) throw new Error('--reps must be at least 20 (the median of at least 20 timed runs)');
if (!(cfg.warmMs >= 0)) throw new Error(`--warm-ms must be a number of milliseconds ≥ 0; got ${values['warm-ms']}`);

if (values['plan-report']) {
  // Plans only, nothing timed: any WebGPU device builds them (Dawn here, SwiftShader without a GPU).
  const { requestBatchNormDevice } = await import('../src/device');
  const { planReport } = await import('./plan-report');
  const device = await requestBatchNormDevice({ gpu: await nodeGpu() });
  const shapes = expandShapes(list(values.shapes) ?? ['resnet50', 'mlp'], batch, values.quick);
  const r = await planReport(device, shapes, values.fit, (s) => console.log(s));
  device.destroy();
  if (values.json) {
    mkdirSync(dirname(resolve(values.json)), { recursive: true });
    writeFileSync(values.json, JSON.stringify(r, null, 2));
    console.log(`wrote ${values.json}`);
  }
  process.exit(0);
}

if (withTfjs) {
  const { TFJS_HEADER } = await import('./tfjs');
  let r: { adapter: string; rows: import('./tfjs').TfjsRow[]; log?: string[] };
  if (values.runtime === 'browser') {
    const dist = dirname(fileURLToPath(import.meta.url));
    r = await inBrowser(
      dist,
      { bench: '/page.js' },
      async (quick) => {
        const { bench } = (window as unknown as { bn: { bench: typeof import('./page') } }).bn;
        return bench.runTfjs(quick);
      },
      values.quick,
    );
    console.log(`adapter: ${r.adapter}\n${TFJS_HEADER}`);
    for (const l of r.log ?? []) console.log(l);
  } else {
    // TF.js's WebGPU backend registers itself only where navigator.gpu exists when it loads.
    (globalThis as { navigator?: unknown }).navigator = { gpu: await nodeGpu() };
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
    const env = { tf, tfl: await import('@tensorflow/tfjs-layers'), bridge: await import('../src/tfjs') };
    await tf.setBackend('webgpu');
    const info = (tf.backend() as unknown as { device: GPUDevice }).device.adapterInfo;
    const adapter = `${info.vendor} ${info.architecture} ${info.description}`;
    console.log(`adapter: ${adapter}\n${TFJS_HEADER}`);
    const { runTfjsBench } = await import('./tfjs');
    r = { adapter, rows: await runTfjsBench(env, values.quick, (s) => console.log(s)) };
  }
  if (!ops.length) {
    const out = values.json ?? resolve('bench-results.json');
    mkdirSync(dirname(resolve(out)), { recursive: true });
    writeFileSync(out, JSON.stringify({ runtime: values.runtime, adapter: r.adapter, tfjs: r.rows }, null, 2));
    console.log(`wrote ${out}`);
    process.exit(0);
  }
}

let report: Report;
console.log(
  `bench: runtime=${cfg.runtime} shapes=${cfg.shapes.join(',')} ops=${cfg.ops.join(',')} versions=${cfg.versions.join(',')} reps=${cfg.reps} iters=${cfg.iters}${cfg.profile ? ' profile' : ''}${torch ? ` torch=${torch.gpu}` : ''}`,
);
if (cfg.runtime === 'browser') {
  const dist = dirname(fileURLToPath(import.meta.url));
  const r = await inBrowser(
    dist,
    { bench: '/page.js' },
    async ({ cfg, tfjs }) => {
      const { bench } = (window as unknown as { bn: { bench: typeof import('./page') } }).bn;
      return bench.run(cfg, tfjs);
    },
    { cfg, tfjs: !values['no-tfjs'] },
  );
  report = r;
  console.log(`adapter: ${report.adapter}\n${HEADER}\n${TRAIN_STEP_HEADER}\n${EPILOGUE_HEADER}`);
  for (const l of r.log) console.log(l);
} else {
  const { requestBatchNormDevice } = await import('../src/device');
  const { runBench } = await import('./bench');
  const device = await requestBatchNormDevice({
    gpu: await nodeGpu(),
    optionalFeatures: ['timestamp-query', 'shader-f16'],
  });
  const info = device.adapterInfo;
  console.log(
    `adapter: ${info.vendor} ${info.architecture} ${info.device} ${info.description}; features: ${[...device.features].sort().join(' ')}\n${HEADER}\n${TRAIN_STEP_HEADER}\n${EPILOGUE_HEADER}`,
  );
  report = await runBench(device, cfg, null, (s) => console.log(s));
  device.destroy();
}
for (const l of summary(report)) console.log(l);
const { log: _log, ...clean } = report as Report & { log?: string[] };
const out = values.json ?? resolve('bench-results.json');
mkdirSync(dirname(resolve(out)), { recursive: true });
writeFileSync(out, JSON.stringify(clean, null, 2));
writeFileSync(values.svg ?? out.replace(/\.json$/, '') + '.svg', chart(clean));
console.log(`wrote ${out} and its SVG chart`);
