#!/usr/bin/env node
/**
 * bn-conformance --golden FILE --backend cpu|webgpu --layout NHWC|NCHW [--runtime browser|node]
 *                [--filter S] [--dump OUT.json]
 * bn-conformance --dtype float16 [--runtime browser|node]
 *
 * Runs every case of a golden file through the library's public API and prints one line per case
 * with its largest errors, then "N passed, M failed". Exits 1 on any failure, 2 on bad usage.
 * With --dtype float16 it runs the float16 cases of src/conformance/f16.ts instead (WebGPU against
 * the float64 CPU path on the same float16-rounded tensors); an adapter without 'shader-f16'
 * fails with the library's FeatureError.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { GoldenFile, RunReport } from '../conformance/index.js';
import { nodeGpu } from './nodeGpu.js';
import { inBrowser } from './browserPage.js';

const USAGE = 'usage: bn-conformance --golden FILE --backend cpu|webgpu --layout NHWC|NCHW [--runtime browser|node] [--filter S] [--dump OUT.json]\n       bn-conformance --dtype float16 [--runtime browser|node]';

function fail(msg: string): never {
  console.error(`${msg}\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      golden: { type: 'string' }, backend: { type: 'string', default: 'cpu' }, layout: { type: 'string', default: 'NCHW' },
      runtime: { type: 'string', default: 'browser' }, filter: { type: 'string' }, dump: { type: 'string' }, help: { type: 'boolean' },
      dtype: { type: 'string', default: 'float32' },
    },
  });
  if (values.help) { console.log(USAGE); return; }
  if (values.dtype === 'float16') return float16(values.runtime);
  if (values.dtype !== 'float32') fail(`--dtype must be float32 or float16; got ${values.dtype}`);
  if (!values.golden) fail('--golden FILE is required');
  if (values.backend !== 'cpu' && values.backend !== 'webgpu') fail(`--backend must be cpu or webgpu; got ${values.backend}`);
  if (values.layout !== 'NCHW' && values.layout !== 'NHWC') fail(`--layout must be NCHW or NHWC; got ${values.layout}`);
  if (values.runtime !== 'browser' && values.runtime !== 'node') fail(`--runtime must be browser or node; got ${values.runtime}`);
  const golden = JSON.parse(readFileSync(values.golden, 'utf8')) as GoldenFile;
  const layout = values.layout as 'NCHW' | 'NHWC';
  const opts = { layout, filter: values.filter };

  const conf = await import('../conformance/index.js');
  let report: RunReport;
  if (values.backend === 'cpu') {
    report = await conf.runGolden(conf.cpuBackend, golden, opts);
  } else if (values.runtime === 'node') {
    const { requestBatchNormDevice } = await import('../device.js');
    const device = await requestBatchNormDevice({ gpu: await nodeGpu() });
    const info = device.adapterInfo;
    report = await conf.runGolden(conf.webgpuBackend(device, { vendor: info.vendor, architecture: info.architecture, device: info.device, runtime: 'node' }), golden, opts);
    device.destroy();
  } else {
    const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..');
    report = await inBrowser(dist, { lib: '/index.js', conformance: '/conformance.js' }, async ({ golden, opts }) => {
      const { lib, conformance } = (window as unknown as { bn: { lib: typeof import('../index.js'); conformance: typeof import('../conformance/index.js') } }).bn;
      const device = await lib.requestBatchNormDevice();
      const i = device.adapterInfo;
      const backend = conformance.webgpuBackend(device, { vendor: i.vendor, architecture: i.architecture, device: i.device, runtime: 'browser', userAgent: navigator.userAgent });
      return conformance.runGolden(backend, golden, opts);
    }, { golden, opts });
  }

  console.log(`bn-conformance: ${values.golden} backend=${report.backend} layout=${report.layout} adapter=${JSON.stringify(report.adapter)}`);
  for (const r of report.results) console.log(conf.formatResult(r));
  if (values.dump) writeFileSync(values.dump, JSON.stringify(conf.dumpReport(report)));
  console.log(`${report.passed} passed, ${report.failed} failed`);
  process.exitCode = report.failed ? 1 : 0;
}

/** The float16 cases on this runtime's adapter; exit 1 on any failure or a missing 'shader-f16'. */
async function float16(runtime: string | undefined): Promise<void> {
  if (runtime !== 'browser' && runtime !== 'node') fail(`--runtime must be browser or node; got ${runtime}`);
  let out: { adapter: string; lines: string[]; failed: number; passed: number };
  if (runtime === 'node') {
    const { requestBatchNormDevice } = await import('../device.js');
    const { runF16Cases } = await import('../conformance/index.js');
    const device = await requestBatchNormDevice({ gpu: await nodeGpu(), optionalFeatures: ['shader-f16'] });
    const lines: string[] = [];
    const results = await runF16Cases(device, (l) => lines.push(l));
    const i = device.adapterInfo;
    out = { adapter: `${i.vendor} ${i.architecture} ${i.device}`, lines, failed: results.filter((r) => r.failures.length).length, passed: results.filter((r) => !r.failures.length).length };
    device.destroy();
  } else {
    const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..');
    out = await inBrowser(dist, { lib: '/index.js', conformance: '/conformance.js' }, async () => {
      const { lib, conformance } = (window as unknown as { bn: { lib: typeof import('../index.js'); conformance: typeof import('../conformance/index.js') } }).bn;
      const device = await lib.requestBatchNormDevice({ optionalFeatures: ['shader-f16'] });
      const lines: string[] = [];
      const results = await conformance.runF16Cases(device, (l) => lines.push(l));
      const i = device.adapterInfo;
      return { adapter: `${i.vendor} ${i.architecture} ${i.device}`, lines, failed: results.filter((r) => r.failures.length).length, passed: results.filter((r) => !r.failures.length).length };
    }, {});
  }
  console.log(`bn-conformance: float16 cases, runtime=${runtime}, adapter=${out.adapter}`);
  for (const l of out.lines) console.log(l);
  console.log(`${out.passed} passed, ${out.failed} failed`);
  process.exitCode = out.failed ? 1 : 0;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
