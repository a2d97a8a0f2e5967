#!/usr/bin/env node
/**
 * One fuzzing process in Node (Dawn): runs calls [from, from + count) of a seed and prints
 * "progress K" before each call and "result {...}" at the end; the parent (fuzz/cli.ts) counts a
 * process that dies or stops answering as a crash or a hang at the last call it started.
 */
import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { nodeGpu } from '../src/cli/nodeGpu';
import { requestBatchNormDevice } from '../src/device';
import { Fuzzer, runRange } from './core';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    from: { type: 'string' },
    count: { type: 'string' },
    verbose: { type: 'boolean' },
  },
});
const [seed, from, count] = [values.seed, values.from, values.count].map(Number);
const gpu = await nodeGpu();
const device = await requestBatchNormDevice({ gpu });
const other = await requestBatchNormDevice({ gpu });
const fz = new Fuzzer({ device, other, gpu }, seed);
if (values.verbose) fz.onCall = (line) => writeSync(2, `${line}\n`);
let current = from;
process.on('unhandledRejection', (e) => {
  fz.counts.findings['unhandled-rejection']++;
  fz.findings.push({ kind: 'unhandled-rejection', seed, call: current, entry: '?', mutation: '?', detail: String(e) });
});
try {
  await runRange(fz, from, count, (k) => {
    current = k;
    writeSync(1, `progress ${k}\n`);
  });
} catch (e) {
  writeSync(1, `stopped ${current} ${String(e)}\n`);
}
writeSync(1, `result ${JSON.stringify({ counts: fz.counts, findings: fz.findings, next: current + 1 })}\n`);
process.exit(0);
