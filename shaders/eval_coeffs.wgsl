// eval_coeffs.wgsl — per-channel coefficients for inference mode (running statistics).
//
// Computes, per channel c: invstd = 1/sqrt(running_var + eps), or 1/sigma for Batch Renorm
//   (flag SPREAD_IS_STD); scale = gamma·invstd, shift = beta, with pivot = running_mean and
//   mean_v = 0, so the apply kernel computes y = (x - running_mean)·scale + beta.
// Bindings (group 0):
//   0 params         uniform  Params
//   1 gamma          storage, read        [C] (read only with flag AFFINE)
//   2 beta           storage, read        [C] (read only with flag AFFINE)
//   3 running_mean   storage, read        [C]
//   4 running_spread storage, read        [C] running_var, or running sigma
//   5 stats          storage, read_write  2 vec4 per channel (see prelude.wgsl), as
//                                          forward_finalize.wgsl writes them (r = 1, d = 0)
// Dispatch: ceil(C / WG) workgroups along x, one thread per channel.
// Method: computed once per channel (lib/coeffs.wgsl), so the per-element pass is a subtract and
//   a multiply-add.

override WG: u32 = 64;

struct Params {
  C: u32,
  eps: f32,
  flags: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> running_mean: array<f32>;
@group(0) @binding(4) var<storage, read> running_spread: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<vec4<f32>>;

//! include coeffs.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.C) { return; }
  save_infer(c);
}
