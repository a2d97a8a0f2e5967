/**
 * Demo entry. Until the training demo lands, the page checks the library on this machine's GPU:
 * it runs the shared PyTorch golden vectors through BatchNorm and shows the largest errors.
 */
import { requestBatchNormDevice, UnsupportedError } from '../src/index';
import { runGolden, webgpuBackend, type GoldenFile } from '../src/conformance/index';
import golden from '../../shared/conformance/pytorch_golden.json';

const status = document.getElementById('status')!;

async function main(): Promise<void> {
  const device = await requestBatchNormDevice();
  const info = device.adapterInfo;
  status.textContent = `Adapter: ${info.vendor} ${info.architecture} ${info.device}. Running the PyTorch golden vectors…`;
  const table = document.createElement('table');
  table.innerHTML = '<tr><th>case</th><th>result</th><th>largest scaled error</th></tr>';
  for (const layout of ['NCHW', 'NHWC'] as const) {
    const rep = await runGolden(webgpuBackend(device), golden as GoldenFile, { layout });
    for (const r of rep.results) {
      const row = table.insertRow();
      row.insertCell().textContent = `${r.name} [${layout}]`;
      row.insertCell().textContent = r.passed ? 'pass' : `FAIL ${r.detail}`;
      row.insertCell().textContent = Math.max(0, ...Object.values(r.errors)).toExponential(1);
    }
  }
  status.after(table);
  status.textContent = `Adapter: ${info.vendor} ${info.architecture} ${info.device}. Golden vectors on this GPU:`;
}

main().catch((e) => {
  status.className = 'error';
  status.textContent = e instanceof UnsupportedError ? `WebGPU is not available: ${e.message}` : `Error: ${e instanceof Error ? e.message : e}`;
});
