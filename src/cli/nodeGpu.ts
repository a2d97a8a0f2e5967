/**
 * WebGPU in Node through the `webgpu` package (Dawn). Without a Vulkan driver of its own, the
 * machine can use Chromium's SwiftShader ICD (docs/platform.md §2).
 */
import { existsSync } from 'node:fs';
import { UnsupportedError } from '../errors.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** One Dawn instance per process; requestBatchNormDevice keeps it alive while its devices live. */
let gpu: GPU | null = null;

export async function nodeGpu(): Promise<GPU> {
  if (
    !process.env.VK_ICD_FILENAMES &&
    !process.env.VK_DRIVER_FILES &&
    existsSync(SWIFTSHADER_ICD) &&
    !existsSync('/dev/nvidia0')
  ) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as typeof mod;
  } catch {
    throw new UnsupportedError("the Node runtime needs the 'webgpu' package (Dawn): npm install webgpu");
  }
  Object.assign(globalThis, mod.globals);
  gpu ??= mod.create(['disable-dawn-features=timestamp_quantization']);
  return gpu;
}
