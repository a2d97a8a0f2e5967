#!/usr/bin/env node
// The whole test suite, as `npm test` runs it: type check, formatting (prettier, 120 columns),
// Vitest (a Node project and a headless-Chromium WebGPU project), the package build, bn-conformance
// over both golden files in conformance/, both backends and both layouts, a 30-second soak in
// Node, and a short fuzzing run. Ends with one "total: N passed, M failed" line.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

const vectors = new URL('../conformance/', import.meta.url).pathname;
let passed = 0,
  failed = 0;

function run(cmd, args, capture = false) {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: capture ? ['ignore', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8' });
  if (capture) process.stdout.write(r.stdout ?? '');
  return r;
}

for (const [name, args] of [
  ['typecheck', ['tsc', '-p', '.']],
  ['formatting', ['prettier', '--check', '.']],
]) {
  if (run('npx', args).status === 0) passed += 1;
  else {
    console.log(`${name} failed`);
    failed += 1;
  }
}

mkdirSync('test-results', { recursive: true });
const v = run('npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  '--outputFile.json=test-results/vitest.json',
]);
try {
  const j = JSON.parse(readFileSync('test-results/vitest.json', 'utf8'));
  passed += j.numPassedTests;
  failed += j.numFailedTests + (j.numTotalTests === 0 ? 1 : 0);
  if (v.status !== 0 && j.numFailedTests === 0) failed += 1; // a suite that failed to load
} catch {
  failed += 1;
}

if (run('npm', ['run', 'build']).status !== 0) {
  console.log('build failed');
  failed += 1;
} else {
  for (const file of ['pytorch_golden.json', 'faults.json', 'extensions.json']) {
    for (const backend of ['cpu', 'webgpu']) {
      for (const layout of ['NCHW', 'NHWC']) {
        const r = run(
          'node',
          ['dist/cli/bn-conformance.js', '--golden', vectors + file, '--backend', backend, '--layout', layout],
          true,
        );
        const m = /^(\d+) passed, (\d+) failed$/m.exec(r.stdout ?? '');
        if (!m) {
          failed += 1;
          continue;
        }
        passed += Number(m[1]);
        failed += Number(m[2]) || (r.status === 0 ? 0 : 1);
      }
    }
  }
}

// A 30-second soak, and a short fuzzing run (3000 calls in Node and in Chromium).
for (const [name, args] of [
  ['soak', ['run', 'soak', '--', '--minutes', '0.5']],
  ['fuzz', ['run', 'fuzz', '--', '--calls', '3000']],
]) {
  const out = run('npm', args, true);
  const m = new RegExp(`^${name}: (\\d+) passed, (\\d+) failed$`, 'm').exec(out.stdout ?? '');
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  } else failed += 1;
}

console.log(`\ntotal: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
