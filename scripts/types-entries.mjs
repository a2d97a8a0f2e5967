#!/usr/bin/env node
// The declaration entry points of the package (dist/types/entry/), one per export, over the tree
// that tsc emits into dist/types. The WebGPU types come from `@webgpu/types` (a dependency) for
// TypeScript 5 and 6. TypeScript 7's DOM library declares WebGPU itself, and the two clash, so the
// `types@>=7` entries (package.json picks by version) take the DOM library instead, plus the flag
// namespaces (GPUBufferUsage and four more) that TypeScript 7.0's DOM library leaves out, declared
// as @webgpu/types declares them so that a later DOM library that has them merges with them.
import { mkdirSync, writeFileSync } from 'node:fs';

const dir = new URL('../dist/types/entry/', import.meta.url);
mkdirSync(dir, { recursive: true });
const FLAGS = {
  GPUBufferUsage: [
    'MAP_READ',
    'MAP_WRITE',
    'COPY_SRC',
    'COPY_DST',
    'INDEX',
    'VERTEX',
    'UNIFORM',
    'STORAGE',
    'INDIRECT',
    'QUERY_RESOLVE',
  ],
  GPUColorWrite: ['RED', 'GREEN', 'BLUE', 'ALPHA', 'ALL'],
  GPUMapMode: ['READ', 'WRITE'],
  GPUShaderStage: ['VERTEX', 'FRAGMENT', 'COMPUTE'],
  GPUTextureUsage: [
    'COPY_SRC',
    'COPY_DST',
    'TEXTURE_BINDING',
    'STORAGE_BINDING',
    'RENDER_ATTACHMENT',
    'TRANSIENT_ATTACHMENT',
  ],
};
const flags = Object.entries(FLAGS)
  .map(
    ([name, members]) =>
      `interface ${name} {\n${members.map((m) => `  readonly ${m}: GPUFlagsConstant;\n`).join('')}}\ndeclare var ${name}: ${name};\n`,
  )
  .join('\n');
writeFileSync(
  new URL('webgpu-flags.d.ts', dir),
  `/// <reference lib="dom" />\n// WebGPU's flag namespaces, which TypeScript 7.0's DOM library does not declare.\n${flags}`,
);
for (const [name, target] of [
  ['index', '../index.js'],
  ['cpu', '../cpu/index.js'],
  ['conformance', '../conformance/index.js'],
  ['tfjs', '../tfjs/index.js'],
]) {
  const body = `export * from '${target}';\n`;
  writeFileSync(new URL(`${name}.d.ts`, dir), `/// <reference types="@webgpu/types" />\n${body}`);
  writeFileSync(new URL(`${name}.ts7.d.ts`, dir), `/// <reference path="./webgpu-flags.d.ts" />\n${body}`);
}
