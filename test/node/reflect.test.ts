import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { KERNELS } from '../../src/kernels/index';

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
