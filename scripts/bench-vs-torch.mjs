#!/usr/bin/env node
// Prints ours (a bench JSON report) against PyTorch (the JSON line of tools/torch_bn_bench.py's
// output) from the same GPU-machine call, as a Markdown table for BENCHMARKS.md.
//   node scripts/bench-vs-torch.mjs ours.json torch.txt [best|row]
// "of copy" divides our GB/s by the in-run copy's: the copy timed just before the op (row), or the
// fastest copy of the whole run (best), which is the steadier yardstick when the copy's own time
// varies between rows.
import { readFileSync } from 'node:fs';

const [oursFile, torchFile, yard = 'best'] = process.argv.slice(2);
const ours = JSON.parse(readFileSync(oursFile, 'utf8'));
const torchLine = readFileSync(torchFile, 'utf8')
  .split('\n')
  .find((l) => l.startsWith('JSON '));
const torch = JSON.parse(torchLine.slice(5));
const key = { 'forward-train': 'fwd_ms', inference: 'infer_ms', backward: 'bwd_ms' };
const dtypeName = { f32: 'float32', f16: 'float16' };
const torchShape = (s) => (s.split('x').length === 2 ? s.replace('x', 'x1x1x') : s);
const bestCopy = Math.min(
  ...ours.rows.map((r) => r.copy_ms / (r.bytes / (r.op === 'inference' ? 2 : r.op === 'backward' ? 5 : 3))),
);
console.log(
  `Ours: ${ours.adapter}, ${ours.runtime}, ${ours.date}. PyTorch: ${torch.gpu}, torch ${torch.torch}, cuDNN ${torch.cudnn}, copy ${torch.copy_GBs} GB/s.\n`,
);
console.log('| op | layout | shape | dtype | ours ms | PyTorch ms | ours / PyTorch | ours GB/s | of copy |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of ours.rows) {
  if (!key[r.op]) continue;
  const fmt = r.layout === 'NHWC' ? 'nhwc' : 'nchw';
  const t = torch.rows.find((x) => x.shape === torchShape(r.shape) && x.fmt === fmt && x.dtype === dtypeName[r.dtype]);
  const tm = t ? t[key[r.op]] : null;
  const tensorBytes = r.bytes / (r.op === 'inference' ? 2 : r.op === 'backward' ? 5 : 3);
  const copyGbps = yard === 'best' ? 2 / bestCopy / 1e6 : (2 * tensorBytes) / r.copy_ms / 1e6;
  console.log(
    `| ${r.op} | ${r.layout} | ${r.shape} | ${r.dtype} | ${r.ours_ms.toFixed(3)} | ${tm === null ? '–' : tm.toFixed(3)} | ${tm === null ? '–' : (r.ours_ms / tm).toFixed(2) + '×'} | ${r.gbps.toFixed(0)} | ${((100 * r.gbps) / copyGbps).toFixed(0)}% |`,
  );
}
console.log(`\nBest in-run copy: ${((2 * 1) / bestCopy / 1e6).toFixed(0)} GB/s (read + write).`);
