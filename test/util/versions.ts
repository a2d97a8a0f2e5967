/**
 * The numbered kernel versions (dev/kernels/versions.ts) as module options, for tests that run
 * each; '5-gpu' is version 5's GPU plan forced on any device, so that a fallback adapter
 * (SwiftShader) tests the tree finalize too.
 */
import { KERNEL_TABLE, type KernelTable } from '../../src/plan/table';
import type { BatchNormOptions } from '../../src/options';
import { KERNEL_VERSIONS, V5_GPU, VERSIONS } from '../../dev/kernels/versions';

export { VERSIONS } from '../../dev/kernels/versions';

export type TestVersion = `${(typeof KERNEL_VERSIONS)[number]}` | '5-gpu';
export const TEST_VERSIONS: readonly TestVersion[] = [...KERNEL_VERSIONS.map((v) => `${v}` as const), '5-gpu'];

function tableOf(v: TestVersion): KernelTable {
  return v === '5-gpu' ? V5_GPU : VERSIONS[Number(v) as (typeof KERNEL_VERSIONS)[number]];
}

/** `options` with the module running kernel version `v` (5 is what the library ships). */
export function versionOptions(v: TestVersion, options: BatchNormOptions = {}): BatchNormOptions {
  return { ...options, [KERNEL_TABLE]: tableOf(v) } as BatchNormOptions;
}
