#!/usr/bin/env node
/**
 * npm run demo:check -- [--steps N] [--json OUT.json] [--only name,name] [--set key=value,...]
 * Trains every demo variant headlessly in Chromium with fixed seeds and prints a table.
 */
import { writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { inBrowser } from '../src/cli/browserPage';
import type { CheckReport } from './check';

const { values } = parseArgs({
  options: { steps: { type: 'string' }, json: { type: 'string' }, only: { type: 'string' }, set: { type: 'string' } },
});
const overrides: Record<string, number> = {};
if (values.steps) overrides.steps = Number(values.steps);
for (const kv of values.set?.split(',') ?? []) {
  const [k, v] = kv.split('=');
  overrides[k] = Number(v);
}
const only = values.only?.split(',');
const dir = dirname(fileURLToPath(import.meta.url));
const t0 = Date.now();
const report: CheckReport = await inBrowser(
  dir,
  { check: '/check.js' },
  async ({ overrides, only }) => {
    const { check } = (window as unknown as { bn: { check: typeof import('./check') } }).bn;
    return check.runCheck(overrides, only);
  },
  { overrides, only },
);

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
console.log(
  `adapter: ${report.adapter}; ${report.settings.steps} steps per variant; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
);
console.log(
  'variant                   batch      lr   first-20 loss   last-20 loss   test acc  last-4 acc   param norm     s',
);
for (const v of report.variants) {
  const first = mean(v.trainLoss.slice(0, 20)),
    last = mean(v.trainLoss.slice(-20));
  console.log(
    `${v.name.padEnd(24)} ${String(v.batchSize).padStart(6)} ${String(v.lr).padStart(7)} ${first.toFixed(3).padStart(15)} ${last.toFixed(3).padStart(14)} ${(100 * v.testAccuracy).toFixed(1).padStart(9)}% ${(100 * v.testAccuracyLast4).toFixed(1).padStart(10)}% ${v.paramNorm.toFixed(1).padStart(12)} ${v.seconds.toFixed(0).padStart(5)}`,
  );
}
for (const v of report.variants)
  if (v.foldedTestAccuracy !== null)
    console.log(
      `${v.name}: batch norm folded into the convolutions (bn.fold): test acc ${(100 * v.foldedTestAccuracy).toFixed(1)}% (unfolded ${(100 * v.testAccuracy).toFixed(1)}%)`,
    );
if (values.json) {
  writeFileSync(values.json, JSON.stringify(report, null, 2));
  console.log(`wrote ${values.json}`);
}
