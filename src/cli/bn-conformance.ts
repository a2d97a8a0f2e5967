#!/usr/bin/env node
/**
 * bn-conformance --golden FILE --backend cpu|webgpu --layout NHWC|NCHW [--runtime browser|node]
 *                [--filter S] [--dump OUT.json]
 *
 * Runs every case of a golden file through the library's public API and prints one line per case
 * with its largest errors, then "N passed, M failed". Exits 1 on any failure, 2 on bad usage.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { GoldenFile, RunReport } from '../conformance/index';
import { nodeGpu } from './nodeGpu';
import { inBrowser } from './browserPage';

const USAGE = 'usage: bn-conformance --golden FILE --backend cpu|webgpu --layout NHWC|NCHW [--runtime browser|node] [--filter S] [--dump OUT.json]';

function fail(msg: string): never {
  console.error(`${msg}\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      golden: { type: 'string' }, backend: { type: 'string', default: 'cpu' }, layout: { type: 'string', default: 'NCHW' },
      runtime: { type: 'string', default: 'browser' }, filter: { type: 'string' }, dump: { type: 'string' }, help: { type: 'boolean' },
    },
  });
  if (values.help) { console.log(USAGE); return; }
  if (!values.golden) fail('--golden FILE is required');
  if (values.backend !== 'cpu' && values.backend !== 'webgpu') fail(`--backend must be cpu or webgpu; got ${values.backend}`);
  if (values.layout !== 'NCHW' && values.layout !== 'NHWC') fail(`--layout must be NCHW or NHWC; got ${values.layout}`);
  if (values.runtime !== 'browser' && values.runtime !== 'node') fail(`--runtime must be browser or node; got ${values.runtime}`);
  const golden = JSON.parse(readFileSync(values.golden, 'utf8')) as GoldenFile;
  const layout = values.layout as 'NCHW' | 'NHWC';
  const opts = { layout, filter: values.filter };

  const conf = await import('../conformance/index');
  let report: RunReport;
  if (values.backend === 'cpu') {
    report = await conf.runGolden(conf.cpuBackend, golden, opts);
  } else if (values.runtime === 'node') {
    const { requestBatchNormDevice } = await import('../device');
    const device = await requestBatchNormDevice({ gpu: await nodeGpu() });
    const info = device.adapterInfo;
    report = await conf.runGolden(conf.webgpuBackend(device, { vendor: info.vendor, architecture: info.architecture, device: info.device, runtime: 'node' }), golden, opts);
    device.destroy();
  } else {
    const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..');
    report = await inBrowser(dist, { lib: '/index.js', conformance: '/conformance.js' }, async ({ golden, opts }) => {
      const { lib, conformance } = (window as unknown as { bn: { lib: typeof import('../index'); conformance: typeof import('../conformance/index') } }).bn;
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

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
