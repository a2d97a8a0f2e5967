/**
 * The kernels against their WGSL: each shipped shader has one wrapper; the wrapper carries the
 * prelude-joined source as the build compiled it; its binding names and uniform members match a
 * fresh reflection of that joined source; the flag bits TypeScript sets are the WGSL's consts.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { KERNELS } from '../../src/kernels/index';
import { BackwardFlags } from '../../src/kernels/gradients';
import { EvalFlags, FoldFlags } from '../../src/kernels/normalise';
import { FinalizeFlags } from '../../src/kernels/statistics';
import { StepFlags } from '../../src/kernels/step';
import { defineKernel, specialise, type AnyKernel } from '../../src/gpu/kernel';
import { compileWgsl, joinPrelude, reflect, strip } from '../../scripts/wgsl';
import { DEV_KERNELS } from '../../dev/kernels/versions';
import applyScalar from '../../shaders/apply_scalar.wgsl?kernel';

const shaders = new URL('../../shaders/', import.meta.url);
const dev = new URL('../../dev/kernels/', import.meta.url);
const files = readdirSync(shaders)
  .filter((f) => f.endsWith('.wgsl') && f !== 'prelude.wgsl')
  .sort();
const fileOf = (label: string) => `${label.replace(/^(bn|dev)\./, '')}.wgsl`;

describe('each shipped WGSL kernel has one typed wrapper', () => {
  it('wrappers and shader files correspond one to one; shaders/ holds nothing else but the prelude', () => {
    expect(KERNELS.map((k) => fileOf(k.label)).sort()).toEqual(files);
  });
  it('the prelude declares no bindings, so every kernel can take it', () => {
    const prelude = readFileSync(new URL('prelude.wgsl', shaders), 'utf8');
    expect(prelude).not.toMatch(/@group|@binding|alias xf/);
  });
});

function checks(k: AnyKernel, dir: URL): void {
  describe(`${fileOf(k.label)} <-> its wrapper`, () => {
    const joined = joinPrelude(readFileSync(new URL(fileOf(k.label), dir), 'utf8'));
    const r = new WgslReflect(joined);

    it('the wrapper carries the file joined to the prelude, as the build compiles it', () => {
      expect(k.source).toBe(strip(joined));
      expect(k.reflection()).toEqual(reflect(joined));
    });

    it('binding names, in binding order, match the WGSL', () => {
      const names = r.getBindGroups().flatMap((g) => g.filter(Boolean).map((b) => b.name));
      expect([...k.bindings]).toEqual(names);
    });

    it('uniform members match the WGSL struct', () => {
      const members = r.uniforms.length
        ? (r.uniforms[0]!.type as unknown as { members: { name: string }[] }).members.map((m) => m.name)
        : [];
      expect([...k.params].sort()).toEqual(members.sort());
    });

    it('the workgroup size comes from the WGSL', () => {
      const [x, y, z] = r.entry.compute[0].workgroupSize!;
      expect(k.threadsPerWorkgroup()).toBe(x * y * z);
    });

    it('the header states what it computes, its bindings, dispatch and method', () => {
      const text = readFileSync(new URL(fileOf(k.label), dir), 'utf8');
      const header = text
        .split('\n')
        .filter((l) => l.startsWith('//'))
        .join('\n');
      for (const section of ['Computes', 'Bindings', 'Dispatch', 'Method']) expect(header).toContain(`// ${section}`);
    });
  });
}

for (const k of KERNELS) checks(k, shaders);
for (const k of DEV_KERNELS) checks(k, dev);

describe('flag bits: TypeScript against the WGSL consts', () => {
  const pairs: [string, Record<string, number>][] = [
    ['forward_finalize.wgsl', FinalizeFlags],
    ['eval_coeffs.wgsl', EvalFlags],
    ['fold_weights.wgsl', FoldFlags],
    ['backward_finalize.wgsl', BackwardFlags],
    ['step_state.wgsl', StepFlags],
  ];
  for (const [file, flags] of pairs) {
    it(file, () => {
      const consts = compileWgsl(new URL(file, shaders).pathname).reflection.constants;
      expect(consts).toEqual(flags);
    });
  }
});

describe('a wrapper that disagrees with its WGSL fails at first use', () => {
  it('wrong binding names', () => {
    const k = defineKernel(
      'bn.apply_scalar',
      applyScalar,
      ['params', 'stats', 'x', 'out'] as const,
      ['C', 'inner', 'count'] as const,
    );
    expect(() => k.reflection()).toThrow(/wrapper bindings .* do not match the WGSL/);
  });
  it('a missing uniform member', () => {
    const k = defineKernel(
      'bn.apply_scalar',
      applyScalar,
      ['params', 'stats', 'x', 'y', 'z', 'gamma', 'beta', 'running_mean', 'running_spread'] as const,
      ['C', 'inner'] as const,
    );
    expect(() => k.reflection()).toThrow(/wrapper params .* do not match the WGSL struct/);
  });
});

describe('float16 specialisation', () => {
  const tensorKernels = KERNELS.filter((k) => k.source.includes('alias xf = f32;'));
  it('every kernel that touches tensors can be specialised', () => {
    const expected = [
      'stats_thread',
      'stats_rows',
      'stats_runs',
      'stats_blocks',
      'apply_scalar',
      'apply_vec4',
      'apply_rows',
      'grad_sums_thread',
      'grad_sums_rows',
      'grad_sums_runs',
      'grad_sums_blocks',
      'dx_scalar',
      'dx_vec4',
      'dx_rows',
    ];
    expect(tensorKernels.map((k) => k.label.replace(/^bn\./, '')).sort()).toEqual(expected.sort());
  });
  for (const k of tensorKernels) {
    it(`${fileOf(k.label)}: the f16 source enables f16 first and keeps the bindings`, () => {
      const f16 = specialise(k.label, k.source, { dtype: 'f16' });
      expect(f16.split('\n')[0]).toBe('enable f16;');
      expect(f16).toContain('alias xf = f16;');
      const r = new WgslReflect(f16);
      expect(r.getBindGroups().flatMap((g) => g.filter(Boolean).map((b) => b.name))).toEqual([...k.bindings]);
    });
  }
  it('a kernel without the alias is refused for f16', () => {
    const k = KERNELS.find((x) => !x.source.includes('alias xf = f32;'))!;
    expect(() => specialise(k.label, k.source, { dtype: 'f16' })).toThrow(/cannot run on f16/);
  });
});

describe('epilogue specialisation', () => {
  const withEpilogue = KERNELS.filter((k) => k.source.includes('const EPILOGUE: u32 = 0u;'));
  it('the apply, gradient-sums and dx kernels have the epilogues, and only they', () => {
    expect(withEpilogue.map((k) => fileOf(k.label)).sort()).toEqual(
      ['apply', 'grad_sums', 'dx']
        .flatMap((p) => ['scalar', 'vec4', 'rows', 'thread', 'runs', 'blocks'].map((s) => `${p}_${s}.wgsl`))
        .filter((f) => KERNELS.some((k) => fileOf(k.label) === f))
        .sort(),
    );
  });
  for (const k of withEpilogue) {
    for (const epilogue of ['relu', 'add_relu'] as const) {
      it(`${fileOf(k.label)} ${epilogue}: the constant is set, the bindings kept, f16 still applies`, () => {
        const src = specialise(k.label, k.source, { epilogue, dtype: 'f16' });
        expect(src).toContain(`const EPILOGUE: u32 = ${epilogue === 'relu' ? 1 : 2}u;`);
        expect(src.split('\n')[0]).toBe('enable f16;');
        const r = new WgslReflect(src);
        expect(r.getBindGroups().flatMap((g) => g.filter(Boolean).map((b) => b.name))).toEqual([...k.bindings]);
      });
    }
  }
  it('a kernel without the epilogues is refused one', () => {
    const k = KERNELS.find((x) => !x.source.includes('const EPILOGUE'))!;
    expect(() => specialise(k.label, k.source, { epilogue: 'relu' })).toThrow(/has no epilogues/);
  });
});
