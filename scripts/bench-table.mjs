#!/usr/bin/env node
// Prints a bench JSON report (npm run bench -- --json FILE) as a Markdown table for BENCHMARKS.md.
import { readFileSync } from 'node:fs';

const r = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const f = (v, d = 3) => (v === null || v === undefined ? '–' : v.toFixed(d));
console.log(`Adapter: ${r.adapter}; runtime: ${r.runtime}; ${r.date}; timing: ${r.rows[0]?.timing}.\n`);
console.log(
  '| op | layout | shape | v | ours ms | ours wall ms | TF.js wall ms | copy ms | GB/s | of copy | vs TF.js (wall) | max error |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const x of r.rows) {
  console.log(
    `| ${x.op} | ${x.layout} | ${x.shape} | ${x.version} | ${f(x.ours_ms)} | ${f(x.ours_wall_ms)} | ${f(x.tfjs_ms)} | ${f(x.copy_ms)} | ${f(x.gbps, 2)} | ${(100 * x.roofline_fraction).toFixed(0)}% | ${x.speedup_vs_tfjs === null ? '–' : x.speedup_vs_tfjs.toFixed(1) + '×'} | ${x.max_error.toExponential(0)} |`,
  );
}
