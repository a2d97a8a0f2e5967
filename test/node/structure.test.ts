/**
 * The structure the code keeps (docs/architecture.md): no file in src/ over 500 lines, no import
 * cycle, a float64 CPU path that imports nothing from the GPU side nor the GPU side from it, and a
 * bin that keeps its run bit when the CLI is rebuilt.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { build } from 'vite';

const root = resolve(import.meta.dirname, '../..');
const src = join(root, 'src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The files of src/ that `file` imports at run time (type-only imports and dynamic imports left out). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'(\.[^']+)';/gm)) {
    // `import { type A, type B }` is type-only too.
    if (/^import\s+\{\s*(type\s+\w+\s*,?\s*)+\}/.test(m[0])) continue;
    out.push(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')));
  }
  return out.filter((f) => f.startsWith(src));
}

const all = files(src);
const graph = new Map(all.map((f) => [f, imports(f)]));
const rel = (f: string) => relative(src, f);

/** Everything `f` loads, transitively. */
function closure(f: string): Set<string> {
  const seen = new Set<string>();
  const walk = (g: string) => {
    for (const h of graph.get(g) ?? []) if (!seen.has(h)) (seen.add(h), walk(h));
  };
  walk(f);
  return seen;
}

/** The GPU side: everything that touches a GPUDevice or plans for one. */
const GPU =
  /^(gpu|plan|kernels|tfjs)\/|^module\/(?!base\.ts)|^fold\/gpu\.ts|^(functional|device|index)\.ts$|^validate\/(buffers|tensors|functional|step)\.ts$/;

describe('the structure of src/', () => {
  it('no file is over 500 lines', () => {
    const long = all.filter((f) => readFileSync(f, 'utf8').split('\n').length > 500).map(rel);
    expect(long).toEqual([]);
  });

  it('no import cycle', () => {
    const cycles = all.filter((f) => closure(f).has(f)).map(rel);
    expect(cycles).toEqual([]);
  });

  it('the CPU reference loads nothing from the GPU side', () => {
    const cpu = all.filter((f) => rel(f).startsWith('cpu/'));
    expect(cpu.length).toBeGreaterThan(0);
    const reached = cpu.flatMap((f) =>
      [...closure(f)]
        .map(rel)
        .filter((r) => GPU.test(r))
        .map((r) => `${rel(f)} -> ${r}`),
    );
    expect(reached).toEqual([]);
  });

  it('the GPU side imports nothing from the CPU reference', () => {
    const gpu = all.filter((f) => GPU.test(rel(f)));
    const reached = gpu.flatMap((f) =>
      (graph.get(f) ?? [])
        .map(rel)
        .filter((r) => r.startsWith('cpu/'))
        .map((r) => `${rel(f)} -> ${r}`),
    );
    expect(reached).toEqual([]);
  });

  it('the bin keeps its run bit after a build of the CLI', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'bn-cli-'));
    await build({ root, mode: 'cli', logLevel: 'warn', build: { outDir, emptyOutDir: true } });
    expect(statSync(join(outDir, 'bn-conformance.js')).mode & 0o111).toBe(0o111);
  }, 120_000);
});
