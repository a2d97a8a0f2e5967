/**
 * WGSL at build time: joins the shared prelude into each kernel, reflects the joined source with
 * wgsl_reflect (bindings, uniform layout, workgroup size, overrides) and strips comments, so the
 * shipped library carries each kernel as data and no WGSL parser. Used by the Vite plugin below
 * (library, tests, demo, bench) and by the reflection test, which reflects the same joined source.
 *
 * A kernel imports as `import k from './x.wgsl?kernel'`; its default export is a CompiledWgsl. A
 * line `//! include <file>` in a kernel stands for shaders/lib/<file>: the bindings and helpers that
 * kernels of one family share (the kernel keeps its own Params struct and main).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { CompiledWgsl, Reflection } from '../src/gpu/kernel.ts';

/** The prelude every kernel is joined to (thread index, Chan merge, stats-buffer accessors). */
export const PRELUDE = resolve(dirname(fileURLToPath(import.meta.url)), '../shaders/prelude.wgsl');

const SUFFIX = '?kernel';

/** Blocks of bindings and helpers that several kernels share (shaders/lib/). */
export const LIB = resolve(dirname(PRELUDE), 'lib');

const INCLUDE = /^\/\/! include (\S+)$/gm;

/** The shaders/lib files a kernel includes, by `//! include <file>` lines. */
export function includesOf(kernel: string): string[] {
  const files = [...kernel.matchAll(INCLUDE)].map((m) => resolve(LIB, m[1]));
  return files.flatMap((f) => [f, ...includesOf(readFileSync(f, 'utf8'))]);
}

/** The prelude, then the kernel with its includes expanded: one module as Tint compiles it. */
export function joinPrelude(kernel: string, prelude = readFileSync(PRELUDE, 'utf8')): string {
  let out = kernel;
  // Includes may include others (each family's block includes element.wgsl).
  while (/^\/\/! include /m.test(out))
    out = out.replace(INCLUDE, (_, f: string) => readFileSync(resolve(LIB, f), 'utf8'));
  return `${prelude}\n${out}`;
}

/** Bindings, the uniform struct's layout, the workgroup size and the overrides of a joined kernel. */
export function reflect(source: string): Reflection {
  const r = new WgslReflect(source);
  const entry = r.entry.compute[0];
  if (!entry) throw new Error('WGSL source has no compute entry point');
  const bindings: Record<string, number> = {};
  for (const group of r.getBindGroups()) for (const b of group) if (b) bindings[b.name] = b.binding;
  // The kernel's own uniforms are `params`; another uniform (forward_finalize's step) is a binding the caller passes.
  const u = r.uniforms.find((v) => v.name === 'params');
  const struct = u?.type as unknown as
    { size: number; members: { name: string; offset: number; type: { name: string } }[] } | undefined;
  const constants: Record<string, number> = {};
  for (const c of source.matchAll(/^const\s+(\w+)\s*:\s*u32\s*=\s*(\d+)u\s*;/gm)) constants[c[1]] = Number(c[2]);
  return {
    bindings,
    overrides: r.overrides.map((o) => o.name),
    uniform:
      u && struct
        ? {
            name: u.name,
            size: struct.size,
            members: struct.members.map((m) => ({ name: m.name, offset: m.offset, type: m.type.name })),
          }
        : null,
    workgroupSize: entry.workgroupSize as [number, number, number],
    constants,
  };
}

/** The source as shipped: comments, indentation and blank lines removed (Tint's messages still name lines). */
export function strip(source: string): string {
  return source
    .split('\n')
    .map((l) => l.replace(/\/\/.*$/, '').trim())
    .filter(Boolean)
    .join('\n');
}

/** A kernel file joined to the prelude, reflected and stripped. */
export function compileWgsl(path: string): CompiledWgsl {
  const joined = joinPrelude(readFileSync(path, 'utf8'));
  return { source: strip(joined), reflection: reflect(joined) };
}

/** Vite plugin: `*.wgsl?kernel` imports become CompiledWgsl modules. */
export function wgslKernels(): Plugin {
  return {
    name: 'webgpu-batchnorm:wgsl-kernels',
    enforce: 'pre',
    async resolveId(id, importer) {
      if (!id.endsWith(SUFFIX)) return null;
      const file = id.slice(0, -SUFFIX.length);
      const resolved = await this.resolve(file, importer, { skipSelf: true });
      return resolved ? `${resolved.id}${SUFFIX}` : null;
    },
    load(id) {
      if (!id.endsWith(SUFFIX)) return null;
      const file = id.slice(0, -SUFFIX.length);
      this.addWatchFile(file);
      this.addWatchFile(PRELUDE);
      for (const f of includesOf(readFileSync(file, 'utf8'))) this.addWatchFile(f);
      return `export default ${JSON.stringify(compileWgsl(file))};`;
    },
  };
}
