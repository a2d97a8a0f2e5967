import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { KERNELS } from '../../src/kernels/index';
import { specialise } from '../../src/gpu/kernel';

const dir = new URL('../../shaders/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.wgsl')).sort();
const fileOf = (label: string) => `${label.replace(/^bn\./, '')}.wgsl`;

describe('each WGSL kernel has one typed wrapper', () => {
  it('wrappers and shader files correspond one to one', () => {
    expect(KERNELS.map((k) => fileOf(k.label)).sort()).toEqual(files);
  });
});

for (const k of KERNELS) {
  describe(`${fileOf(k.label)} <-> src/kernels wrapper`, () => {
    const text = readFileSync(new URL(fileOf(k.label), dir), 'utf8');
    const r = new WgslReflect(text);

    it('the wrapper carries the file as it is on disk', () => expect(k.source).toBe(text));

    it('binding names, in binding order, match the WGSL', () => {
      const names = r.getBindGroups().flatMap((g) => g.filter(Boolean).map((b) => b.name));
      expect([...k.bindings]).toEqual(names);
    });

    it('uniform members match the WGSL struct', () => {
      const members = (r.uniforms[0]!.type as unknown as { members: { name: string }[] }).members.map((m) => m.name);
      expect([...k.params].sort()).toEqual(members.sort());
    });

    it('workgroup size comes from WGSL overrides', () => {
      expect(r.overrides.length).toBeGreaterThan(0);
      const [x, y, z] = r.entry.compute[0].workgroupSize!;
      expect(k.threadsPerWorkgroup()).toBe(x * y * z);
    });

    it('the header states what it computes, its bindings, dispatch and method', () => {
      const header = text.split('\n').filter((l) => l.startsWith('//')).join('\n');
      for (const section of ['Computes', 'Bindings', 'Dispatch', 'Method']) expect(header).toContain(`// ${section}`);
    });
  });
}

describe('float16 specialisation', () => {
  const tensorKernels = KERNELS.filter((k) => k.source.includes('alias xf = f32;'));
  it('every version 4 kernel that touches tensors can be specialised', () => {
    const v4 = ['stats_partial_v3', 'stats_partial_v4_rows', 'stats_partial_v4_runs', 'apply', 'apply_v2', 'apply_v4_rows',
      'backward_partial_v3', 'backward_partial_v4_rows', 'backward_partial_v4_runs', 'backward_dx', 'backward_dx_v2', 'backward_dx_v4_rows'];
    expect(tensorKernels.map((k) => k.label.replace(/^bn\./, '')).sort()).toEqual(v4.sort());
  });
  for (const k of tensorKernels) {
    it(`${fileOf(k.label)}: the f16 source enables f16 first and keeps the bindings`, () => {
      const f16 = specialise(k.label, k.source, 'f16');
      const code = f16.split('\n').filter((l) => l.trim() && !l.trim().startsWith('//'));
      expect(code[0]).toBe('enable f16;');
      expect(code[1]).toBe('alias xf = f16;');
      const r = new WgslReflect(f16);
      expect(r.getBindGroups().flatMap((g) => g.filter(Boolean).map((b) => b.name))).toEqual([...k.bindings]);
    });
  }
  it('a kernel without the alias is refused for f16', () => {
    const k = KERNELS.find((x) => !x.source.includes('alias xf = f32;'))!;
    expect(() => specialise(k.label, k.source, 'f16')).toThrow(/cannot run on f16/);
  });
});
