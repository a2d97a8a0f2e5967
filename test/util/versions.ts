/** The numbered kernel versions (dev/kernels/versions.ts) as module options, for tests that run each. */
import { KERNEL_TABLE } from '../../src/plan/table';
import type { BatchNormOptions } from '../../src/options';
import { VERSIONS, type KernelVersion } from '../../dev/kernels/versions';

export { KERNEL_VERSIONS, VERSIONS, type KernelVersion } from '../../dev/kernels/versions';

/** `options` with the module running kernel version `v` (5 is what the library ships). */
export function versionOptions(v: KernelVersion, options: BatchNormOptions = {}): BatchNormOptions {
  return { ...options, [KERNEL_TABLE]: VERSIONS[v] } as BatchNormOptions;
}
