// coeffs.wgsl — a channel's inference coefficients from γ, β and the running statistics: what
// eval_coeffs.wgsl writes in a pass of its own and the apply kernels compute in theirs
// (lib/infer.wgsl). The including kernel declares Params (with eps and flags) and the bindings
// gamma, beta, running_mean, running_spread and stats.

const AFFINE: u32 = 1u;
const SPREAD_IS_STD: u32 = 2u;

/// The inference (invstd, scale, shift) of channel c: invstd = 1/sqrt(running_var + eps), or
/// 1/sigma for Batch Renorm (flag SPREAD_IS_STD); scale = γ·invstd, shift = β.
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

/// Writes channel c's coefficients to `stats` as forward_finalize.wgsl writes a batch's (pivot =
/// running_mean, mean_v = 0, r = 1, d = 0), for the apply pass and a backward through constants.
fn save_infer(c: u32) {
  let k = infer_coeffs(c);
  stats[2u * c] = vec4<f32>(running_mean[c], 0.0, k.y, k.z);
  stats[2u * c + 1u] = vec4<f32>(k.x, 1.0, 0.0, 0.0);
}
