#!/usr/bin/env node
// What an app pays for the library: bundles a one-line app that imports BatchNorm from the built
// package (dist/) with Vite, as an app would (tree-shaken, minified), and prints the bytes the
// library adds, raw and gzipped, against an empty app. `npm run size`; needs `npm run build`.
// Usage: node scripts/bundle-size.mjs [--json]
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = join(root, 'dist/index.js');

async function size(code) {
  const dir = mkdtempSync(join(tmpdir(), 'bn-size-'));
  try {
    writeFileSync(join(dir, 'main.js'), code);
    await build({
      root: dir,
      logLevel: 'silent',
      configFile: false,
      build: {
        outDir: join(dir, 'out'),
        rollupOptions: { input: join(dir, 'main.js') },
        minify: true,
        target: 'es2022',
        modulePreload: false,
      },
    });
    const files = readdirSync(join(dir, 'out'), { recursive: true }).filter((f) => /\.m?js$/.test(f));
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(dir, 'out', f))));
    return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const base = await size('console.log("app");\n');
const rows = {};
for (const [name, imports] of [
  ['BatchNorm', 'BatchNorm'],
  ['functional API', 'encodeForwardTrain, encodeBackward, encodeForwardEval'],
  ['everything', '*'],
]) {
  const code =
    imports === '*'
      ? `import * as bn from ${JSON.stringify(entry)};\nconsole.log(bn);\n`
      : `import { ${imports} } from ${JSON.stringify(entry)};\nconsole.log(${imports});\n`;
  const s = await size(code);
  rows[name] = { raw: s.raw - base.raw, gzip: s.gzip - base.gzip };
}
if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
else
  for (const [name, s] of Object.entries(rows))
    console.log(
      `${name.padEnd(16)} ${(s.raw / 1024).toFixed(1).padStart(6)} kB  ${(s.gzip / 1024).toFixed(1).padStart(5)} kB gzip`,
    );
