import { describe, expect, it } from 'vitest';
import golden from '../../conformance/pytorch_golden.json';
import faults from '../../conformance/faults.json';
import extensions from '../../conformance/extensions.json';
import { runCase } from '../../src/conformance/runner';
import { webgpuBackend, WEBGPU_TOLERANCE } from '../../src/conformance/webgpuBackend';
import type { GoldenFile } from '../../src/conformance/golden';
import { gpuDevice } from './device';

const files: Record<string, GoldenFile> = {
  'pytorch_golden.json': golden as GoldenFile,
  'faults.json': faults as GoldenFile,
  'extensions.json': extensions as GoldenFile,
};

for (const [file, g] of Object.entries(files)) {
  for (const layout of ['NCHW', 'NHWC'] as const) {
    describe(`webgpu vs ${file} [${layout}]`, () => {
      for (const c of g.cases) {
        it(c.name, async () => {
          const backend = webgpuBackend(await gpuDevice());
          const r = await runCase(backend, c, layout);
          // WEBGPU_TOLERANCE (1e-5 of each array's scale) is the conformance runner's own bound.
          expect(r.passed, `${r.detail} ${JSON.stringify(r.errors)}`).toBe(true);
          for (const e of Object.values(r.errors)) expect(e).toBeLessThanOrEqual(WEBGPU_TOLERANCE);
        });
      }
    });
  }
}
