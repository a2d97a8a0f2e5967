// infer.wgsl — inference in the apply pass itself (kernel version 5): with INFER = 1
// (src/gpu/kernel.ts rewrites the constant per pipeline) a channel's coefficients come from γ, β
// and the running statistics, as eval_coeffs.wgsl computes them, and one thread per channel saves
// them to `stats` for a backward through constants. With INFER = 0 they are read from `stats`, which
// a finalize pass wrote. The including kernel declares Params with eps and flags, and `stats`.

const INFER: u32 = 0u;
const AFFINE: u32 = 1u;
const SPREAD_IS_STD: u32 = 2u;

@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;
@group(0) @binding(7) var<storage, read> running_mean: array<f32>;
@group(0) @binding(8) var<storage, read> running_spread: array<f32>;

/// The inference (invstd, scale, shift) of channel c from the running statistics.
fn infer_coeffs(c: u32) -> vec3<f32> {
  let affine = (params.flags & AFFINE) != 0u;
  let g = select(1.0, gamma[min(c, arrayLength(&gamma) - 1u)], affine);
  let b = select(0.0, beta[min(c, arrayLength(&beta) - 1u)], affine);
  var invstd = 1.0 / sqrt(running_spread[c] + params.eps);
  if ((params.flags & SPREAD_IS_STD) != 0u) {
    invstd = 1.0 / running_spread[c];
  }
  return vec3<f32>(invstd, g * invstd, b);
}

/// Channel c's (pivot, mean_v, scale, shift).
fn coeff(c: u32) -> vec4<f32> {
  if (INFER == 0u) { return stats[2u * c]; }
  let k = infer_coeffs(c);
  return vec4<f32>(running_mean[c], 0.0, k.y, k.z);
}

/// Saves channel c's inference coefficients as eval_coeffs.wgsl does (one thread per channel).
fn save_infer(c: u32) {
  let k = infer_coeffs(c);
  stats[2u * c] = vec4<f32>(running_mean[c], 0.0, k.y, k.z);
  stats[2u * c + 1u] = vec4<f32>(k.x, 1.0, 0.0, 0.0);
}
