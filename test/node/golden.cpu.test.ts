import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { GoldenFile } from '../../src/conformance/golden';
import { cpuBackend } from '../../src/conformance/cpuBackend';
import { runCase } from '../../src/conformance/runner';

const load = (f: string): GoldenFile =>
  JSON.parse(readFileSync(new URL(`../../conformance/${f}`, import.meta.url), 'utf8'));

for (const file of ['pytorch_golden.json', 'faults.json', 'extensions.json']) {
  const golden = load(file);
  for (const layout of ['NCHW', 'NHWC'] as const) {
    describe(`cpu float64 vs ${file} [${layout}]`, () => {
      for (const c of golden.cases) {
        it(c.name, async () => {
          const r = await runCase(cpuBackend, c, layout);
          // float64 against float64; the golden values carry 9 significant digits, hence 1e-7.
          expect(r.detail, JSON.stringify(r.errors)).toBe(r.passed ? r.detail : 'passed');
          for (const e of Object.values(r.errors)) expect(e).toBeLessThanOrEqual(1e-7);
        });
      }
    });
  }
}
