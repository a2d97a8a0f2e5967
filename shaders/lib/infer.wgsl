// infer.wgsl — inference in the apply pass itself (kernel version 5): with INFER = 1
// (src/gpu/kernel.ts rewrites the constant per pipeline) a channel's coefficients come from γ, β
// and the running statistics, as eval_coeffs.wgsl computes them, and one thread per channel saves
// them to `stats` for a backward through constants. With INFER = 0 they are read from `stats`, which
// a finalize pass wrote. The including kernel declares Params with eps and flags, and `stats`.

const INFER: u32 = 0u;

@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;
@group(0) @binding(7) var<storage, read> running_mean: array<f32>;
@group(0) @binding(8) var<storage, read> running_spread: array<f32>;

//! include coeffs.wgsl

/// Channel c's (pivot, mean_v, scale, shift).
fn coeff(c: u32) -> vec4<f32> {
  if (INFER == 0u) { return stats[2u * c]; }
  let k = infer_coeffs(c);
  return vec4<f32>(running_mean[c], 0.0, k.y, k.z);
}
