/** The example in a browser page: the result goes into #result as JSON. */
import { requestBatchNormDevice, UnsupportedError } from 'webgpu-batchnorm';
import { runExample } from './example';

const out = document.getElementById('result')!;
requestBatchNormDevice()
  .then(runExample)
  .then((r) => {
    out.textContent = JSON.stringify(r);
  })
  .catch((e: unknown) => {
    out.textContent = JSON.stringify({ error: e instanceof UnsupportedError ? `no WebGPU: ${e.message}` : String(e) });
  });
