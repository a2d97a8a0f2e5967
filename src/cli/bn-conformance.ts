#!/usr/bin/env node
/**
 * bn-conformance [--golden FILE]... --backend cpu|webgpu --layout NHWC|NCHW [--runtime browser|node]
 *                [--filter S] [--dump OUT.json]
 * bn-conformance --backend tfjs|tfjs-stock [--tfjs-backend webgpu|cpu|wasm] --layout NHWC|NCHW
 *                [--runtime node] [--golden FILE]... [--filter S]
 * bn-conformance --dtype float16 [--runtime browser|node]
 *
 * Runs every case of the golden files (by default the vectors the package ships in conformance/)
 * through the library's public API and prints one line per case with its largest errors, then
 * "N passed, M failed". With --dtype float16 it runs the float16 cases of src/conformance/f16.ts
 * instead (WebGPU against the float64 CPU path on the same float16-rounded tensors). The tfjs
 * backends run the cases a Keras-convention layer can express through TF.js (the bridge's
 * BatchNormalization, or TF.js's own with tfjs-stock) on a TF.js backend in Node, skip the others
 * with the reason, and print where each deviates.
 * Exit status: 0 all passed, 1 a case failed, 2 bad usage, 3 the adapter cannot run the cases
 * (no WebGPU, or float16 without 'shader-f16').
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { F16Report, GoldenFile, RunReport } from '../conformance/index.js';
import { nodeGpu } from './nodeGpu.js';
import { inBrowser } from './browserPage.js';

const USAGE = `usage: bn-conformance [--golden FILE]... --backend cpu|webgpu --layout NHWC|NCHW [--runtime browser|node] [--filter S] [--dump OUT.json]
       bn-conformance --backend tfjs|tfjs-stock [--tfjs-backend webgpu|cpu|wasm] --layout NHWC|NCHW [--runtime node] [--golden FILE]... [--filter S]
       bn-conformance --dtype float16 [--runtime browser|node]
Without --golden, the package's own vectors run (conformance/pytorch_golden.json, faults.json and
extensions.json).`;

/** dist/cli/ -> the package root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = resolve(ROOT, 'dist');
const SHIPPED = ['pytorch_golden.json', 'faults.json', 'extensions.json'].map((f) => resolve(ROOT, 'conformance', f));

class Usage extends Error {}
class Unsupported extends Error {}

type Lib = { lib: typeof import('../index.js'); conformance: typeof import('../conformance/index.js') };

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      golden: { type: 'string', multiple: true },
      backend: { type: 'string', default: 'cpu' },
      layout: { type: 'string', default: 'NCHW' },
      runtime: { type: 'string', default: 'browser' },
      filter: { type: 'string' },
      dump: { type: 'string' },
      help: { type: 'boolean' },
      dtype: { type: 'string', default: 'float32' },
      'tfjs-backend': { type: 'string', default: 'webgpu' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.runtime !== 'browser' && values.runtime !== 'node')
    throw new Usage(`--runtime must be browser or node; got ${values.runtime}`);
  if (
    (values.backend === 'tfjs' || values.backend === 'tfjs-stock') &&
    values.runtime === 'browser' &&
    process.argv.includes('--runtime')
  )
    throw new Usage('the tfjs backends run in Node (--runtime node), with TF.js from your node_modules');
  if (values.dtype === 'float16') return float16(values.runtime);
  if (values.dtype !== 'float32') throw new Usage(`--dtype must be float32 or float16; got ${values.dtype}`);
  const tfjs = values.backend === 'tfjs' || values.backend === 'tfjs-stock';
  if (values.backend !== 'cpu' && values.backend !== 'webgpu' && !tfjs)
    throw new Usage(`--backend must be cpu, webgpu, tfjs or tfjs-stock; got ${values.backend}`);
  const tfjsBackend = values['tfjs-backend'];
  if (tfjs && !['webgpu', 'cpu', 'wasm'].includes(tfjsBackend))
    throw new Usage(`--tfjs-backend must be webgpu, cpu or wasm; got ${tfjsBackend}`);
  if (values.layout !== 'NCHW' && values.layout !== 'NHWC')
    throw new Usage(`--layout must be NCHW or NHWC; got ${values.layout}`);
  const files = values.golden ?? SHIPPED;
  const goldens = files.map((f) => {
    try {
      return JSON.parse(readFileSync(f, 'utf8')) as GoldenFile;
    } catch (e) {
      throw new Usage(`cannot read golden file ${f}: ${(e as Error).message}`);
    }
  });
  const opts = { layout: values.layout as 'NCHW' | 'NHWC', filter: values.filter };

  const conf = await import('../conformance/index.js');
  let reports: RunReport[];
  if (values.backend === 'cpu') {
    reports = await Promise.all(goldens.map((g) => conf.runGolden(conf.cpuBackend, g, opts)));
  } else if (tfjs) {
    reports = await runTfjs(values.backend as 'tfjs' | 'tfjs-stock', tfjsBackend, goldens, opts);
  } else if (values.runtime === 'node') {
    const { requestBatchNormDevice } = await import('../device.js');
    const device = await requestBatchNormDevice({ gpu: await nodeGpu() });
    const info = device.adapterInfo;
    const backend = conf.webgpuBackend(device, {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      runtime: 'node',
    });
    reports = [];
    for (const g of goldens) reports.push(await conf.runGolden(backend, g, opts));
    device.destroy();
  } else {
    reports = await inBrowser(
      DIST,
      { lib: '/index.js', conformance: '/conformance.js' },
      async ({ goldens, opts }) => {
        const { lib, conformance } = (window as unknown as { bn: Lib }).bn;
        const device = await lib.requestBatchNormDevice();
        const i = device.adapterInfo;
        const backend = conformance.webgpuBackend(device, {
          vendor: i.vendor,
          architecture: i.architecture,
          device: i.device,
          runtime: 'browser',
          userAgent: navigator.userAgent,
        });
        const out = [];
        for (const g of goldens) out.push(await conformance.runGolden(backend, g, opts));
        return out;
      },
      { goldens, opts },
    );
  }

  let passed = 0,
    failed = 0,
    skipped = 0;
  reports.forEach((report, i) => {
    skipped += report.skipped;
    console.log(
      `bn-conformance: ${files[i]} backend=${report.backend} layout=${report.layout} adapter=${JSON.stringify(report.adapter)}`,
    );
    for (const r of report.results) console.log(conf.formatResult(r));
    passed += report.passed;
    failed += report.failed;
    if (values.dump)
      writeFileSync(
        reports.length > 1 ? values.dump.replace(/(\.json)?$/, `.${basename(files[i], '.json')}.json`) : values.dump,
        JSON.stringify(conf.dumpReport(report)),
      );
  });
  console.log(`${passed} passed, ${failed} failed${skipped ? ` (${skipped} not expressible, skipped)` : ''}`);
  process.exitCode = failed ? 1 : 0;
}

/**
 * The tfjs backends, in Node: TF.js from the app's node_modules (an optional peer dependency), its
 * WebGPU backend on Dawn when chosen.
 */
async function runTfjs(
  which: 'tfjs' | 'tfjs-stock',
  tfjsBackend: string,
  goldens: GoldenFile[],
  opts: { layout: 'NCHW' | 'NHWC'; filter?: string },
): Promise<RunReport[]> {
  const need = (e: unknown): never => {
    throw new Unsupported(
      `--backend ${which} needs TF.js 4.22 (@tensorflow/tfjs-core, -layers, -backend-${tfjsBackend}): ${(e as Error).message}`,
    );
  };
  // The WebGPU backend registers itself only where navigator.gpu exists when it loads.
  if (tfjsBackend === 'webgpu') (globalThis as { navigator?: unknown }).navigator = { gpu: await nodeGpu() };
  const tf = await import('@tensorflow/tfjs-core').catch(need);
  const tfl = await import('@tensorflow/tfjs-layers').catch(need);
  if (tfjsBackend === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu').catch(need);
  if (tfjsBackend === 'wasm') await import('@tensorflow/tfjs-backend-wasm').catch(need);
  if (tfjsBackend === 'cpu') await import('@tensorflow/tfjs-backend-cpu').catch(need);
  if (!(await tf.setBackend(tfjsBackend)))
    throw new Unsupported(`TF.js could not start its ${tfjsBackend} backend here`);
  const { batchNormalization } = await import('../tfjs/index.js');
  const conf = await import('../conformance/index.js');
  const backend = conf.tfjsBackend({
    tf,
    name: which,
    layer: (args) => (which === 'tfjs' ? batchNormalization(args) : tfl.layers.batchNormalization(args)) as never,
    adapter: { tfjs: tf.version_core, backend: tfjsBackend },
  });
  const reports: RunReport[] = [];
  for (const g of goldens) reports.push(await conf.runGolden(backend, g, opts));
  return reports;
}

/** The float16 cases on this runtime's adapter. */
async function float16(runtime: 'browser' | 'node'): Promise<void> {
  let out: F16Report;
  if (runtime === 'node') {
    const { requestBatchNormDevice } = await import('../device.js');
    const { f16Report } = await import('../conformance/index.js');
    const device = await requestBatchNormDevice({ gpu: await nodeGpu(), optionalFeatures: ['shader-f16'] });
    out = await f16Report(device);
    device.destroy();
  } else {
    out = await inBrowser(
      DIST,
      { lib: '/index.js', conformance: '/conformance.js' },
      async () => {
        const { lib, conformance } = (window as unknown as { bn: Lib }).bn;
        return conformance.f16Report(await lib.requestBatchNormDevice({ optionalFeatures: ['shader-f16'] }));
      },
      {},
    );
  }
  if (out.unsupported)
    throw new Unsupported(
      `float16 needs the adapter feature 'shader-f16', which ${out.adapter || 'this adapter'} (runtime ${runtime}) does not have; no case was run`,
    );
  console.log(`bn-conformance: float16 cases, runtime=${runtime}, adapter=${out.adapter}`);
  for (const l of out.lines) console.log(l);
  console.log(`${out.passed} passed, ${out.failed} failed`);
  process.exitCode = out.failed ? 1 : 0;
}

main().catch((e: unknown) => {
  if (e instanceof Usage) {
    console.error(`bn-conformance: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  const typed = e instanceof Error && (e instanceof Unsupported || (e as { code?: unknown }).code === 'E_UNSUPPORTED');
  console.error(`bn-conformance: ${e instanceof Error ? (typed ? e.message : `${e.name}: ${e.message}`) : String(e)}`);
  process.exit(typed ? 3 : 1);
});
