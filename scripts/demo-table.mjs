#!/usr/bin/env node
// Prints a demo check report (npm run demo:check -- --json FILE) as a Markdown table.
import { readFileSync } from 'node:fs';

const r = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const mean = (a) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
console.log(`Adapter: ${r.adapter}; ${r.settings.steps} steps per variant; seed ${r.settings.seed}.\n`);
console.log(
  '| variant | shows | batch | lr | loss, first 20 steps | loss, last 20 steps | test acc (final) | test acc (mean of last 4 evals) | ‖θ‖₂ |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const v of r.variants) {
  console.log(
    `| ${v.name} | ${v.note} | ${v.batchSize} | ${v.lr} | ${mean(v.trainLoss.slice(0, 20)).toFixed(3)} | ${mean(v.trainLoss.slice(-20)).toFixed(3)} | ${(100 * v.testAccuracy).toFixed(1)}% | ${(100 * v.testAccuracyLast4).toFixed(1)}% | ${v.paramNorm.toFixed(1)} |`,
  );
}
