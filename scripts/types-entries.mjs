#!/usr/bin/env node
// The declaration entry points of the package (dist/types/entry/), one per export, over the tree
// that tsc emits into dist/types. The WebGPU types come from `@webgpu/types` (a dependency) for
// TypeScript 5 and 6; TypeScript 7's DOM library declares WebGPU itself, and the two clash, so the
// `types@>=7` entries reference the DOM library instead (package.json picks by version).
import { mkdirSync, writeFileSync } from 'node:fs';

const dir = new URL('../dist/types/entry/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const [name, target] of [['index', '../index.js'], ['cpu', '../cpu/index.js'], ['conformance', '../conformance/index.js']]) {
  const body = `export * from '${target}';\n`;
  writeFileSync(new URL(`${name}.d.ts`, dir), `/// <reference types="@webgpu/types" />\n${body}`);
  writeFileSync(new URL(`${name}.ts7.d.ts`, dir), `/// <reference lib="dom" />\n${body}`);
}
