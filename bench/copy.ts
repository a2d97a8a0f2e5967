/** Wrapper for bench/copy_vec4.wgsl, the in-run bandwidth yardstick. */
import compiled from './copy_vec4.wgsl?kernel';
import { defineKernel, encodeDispatches, gridFor, prepareDispatch } from '../src/gpu/kernel';

export const copyVec4 = defineKernel(
  'bench.copy_vec4',
  compiled,
  ['params', 'src', 'dst'] as const,
  ['count4'] as const,
);

/** An encoder of `count4` vec4s copied from src to dst, its dispatch prepared once. */
export function copyEncoder(
  device: GPUDevice,
  src: GPUBuffer,
  dst: GPUBuffer,
  count4: number,
  owned: GPUBuffer[],
): (e: GPUCommandEncoder) => void {
  const d = prepareDispatch(
    device,
    copyVec4,
    { count4 },
    { src: { buffer: src }, dst: { buffer: dst } },
    gridFor(device, Math.ceil(count4 / copyVec4.threadsPerWorkgroup())),
    owned,
  );
  return (e) => {
    const pass = e.beginComputePass({ label: 'bench.copy' });
    encodeDispatches(pass, [d]);
    pass.end();
  };
}
