#!/usr/bin/env node
/**
 * npm run demo:check -- [--steps N] [--json OUT.json] [--only name,name] [--set key=value,...]
 *                       [--tfjs-steps N] [--tfjs-batch B]
 * Trains every demo variant headlessly in Chromium with fixed seeds and prints a table; then the
 * TF.js page's comparison (the same TF.js CNN with TF.js's BatchNormalization and with the
 * bridge's; --tfjs-steps 0 skips it).
 */
import { writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { inBrowser } from '../src/cli/browserPage';
import type { CheckReport } from './check';
import { stepsPerSecond, type Comparison } from './tfjs/result';

const { values } = parseArgs({
  options: {
    steps: { type: 'string' },
    json: { type: 'string' },
    only: { type: 'string' },
    set: { type: 'string' },
    'tfjs-steps': { type: 'string', default: '100' },
    'tfjs-batch': { type: 'string', default: '32' },
  },
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
const tfjsSteps = Number(values['tfjs-steps']);
let tfjs: Comparison | null = null;
if (tfjsSteps > 0) {
  tfjs = await inBrowser(
    dir,
    { check: '/check.js' },
    async ({ steps, batch }) => {
      const { check } = (window as unknown as { bn: { check: typeof import('./check') } }).bn;
      return check.runTfjsCheck(steps, batch);
    },
    { steps: tfjsSteps, batch: Number(values['tfjs-batch']) },
  );
  const sps = { stock: stepsPerSecond(tfjs.stock), bridge: stepsPerSecond(tfjs.bridge) };
  // Binomial standard error of an accuracy on the test images: the run-to-run noise of the comparison.
  const n = 1000;
  const p = (tfjs.stock.testAccuracy + tfjs.bridge.testAccuracy) / 2;
  const se = Math.sqrt((2 * p * (1 - p)) / n);
  const diff = tfjs.bridge.testAccuracy - tfjs.stock.testAccuracy;
  console.log(
    `\nTF.js CNN (${tfjs.steps} steps of ${tfjs.batchSize}, ${tfjs.adapter}): test acc stock ${(100 * tfjs.stock.testAccuracy).toFixed(1)}%, bridge ${(100 * tfjs.bridge.testAccuracy).toFixed(1)}% (difference ${(100 * diff).toFixed(1)} points; ${Math.abs(diff) <= 2 * se ? 'within' : 'OUTSIDE'} 2 standard errors, ${(200 * se).toFixed(1)} points)`,
  );
  console.log(
    `TF.js CNN: last-20 loss stock ${mean(tfjs.stock.losses.slice(-20)).toFixed(3)}, bridge ${mean(tfjs.bridge.losses.slice(-20)).toFixed(3)}; ${sps.stock.toFixed(2)} against ${sps.bridge.toFixed(2)} steps/s: ${(sps.bridge / sps.stock).toFixed(2)}x`,
  );
}
if (values.json) {
  writeFileSync(values.json, JSON.stringify({ ...report, tfjs }, null, 2));
  console.log(`wrote ${values.json}`);
}
