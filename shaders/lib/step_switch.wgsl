// step_switch.wgsl — the statistics kernels' STEP variant (src/gpu/kernel.ts sets the constant per
// pipeline): with STEP = 1, thread 0 advances a module's step (lib/advance.wgsl) in the same pass
// as the reduction, which reads nothing of it, so the finalize in the next dispatch sees the new
// step and a training forward is three dispatches. With STEP = 0, bindings 3 and 4 are unused.

const STEP: u32 = 0u;

//! include advance.wgsl
