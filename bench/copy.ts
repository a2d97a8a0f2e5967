/** Wrapper for bench/copy_vec4.wgsl, the in-run bandwidth yardstick. */
import source from './copy_vec4.wgsl?raw';
import { defineKernel, dispatch, gridFor } from '../src/gpu/kernel';

export const copyVec4 = defineKernel('bench.copy_vec4', source, ['params', 'src', 'dst'] as const, ['count4'] as const);

export function encodeCopy(device: GPUDevice, encoder: GPUCommandEncoder, src: GPUBuffer, dst: GPUBuffer, count4: number): void {
  const pass = encoder.beginComputePass({ label: 'bench.copy' });
  dispatch(device, pass, copyVec4, { count4 }, { src: { buffer: src }, dst: { buffer: dst } }, gridFor(device, Math.ceil(count4 / copyVec4.threadsPerWorkgroup())));
  pass.end();
}
