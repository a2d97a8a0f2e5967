// finalize.wgsl — what the forward finalize kernels (forward_finalize.wgsl, merging slices one
// after another, and forward_finalize_tree.wgsl, merging them as a tree in workgroup memory) share:
// flags, uniforms, bindings, and the per-channel work once a ghost's partials are merged.

const UPDATE: u32 = 1u;
const UNBIASED: u32 = 2u;
const RENORM: u32 = 4u;
const AFFINE: u32 = 8u;
const RENORM_VAR: u32 = 16u;
const OUT_OF_PLACE: u32 = 32u;

struct Params {
  C: u32,
  slices: u32,
  M: f32,
  eps: f32,
  flags: u32,
  ghosts: u32,
}

//! include step.wgsl

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_spread: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(7) var<uniform> step: Step;
@group(0) @binding(8) var<storage, read_write> running_mean_out: array<f32>;
@group(0) @binding(9) var<storage, read_write> running_spread_out: array<f32>;

/// Ghost g of channel c from its merged partial p: writes the saved statistics and coefficients,
/// and returns (mean, the running statistic it contributes, 1 if finite else 0).
fn finish_ghost(c: u32, g: u32, p: vec4<f32>) -> vec3<f32> {
  let affine = (params.flags & AFFINE) != 0u;
  let renorm = (params.flags & RENORM) != 0u;
  let spread_is_var = (params.flags & RENORM_VAR) != 0u;
  let gm = select(1.0, gamma[min(c, arrayLength(&gamma) - 1u)], affine);
  let bt = select(0.0, beta[min(c, arrayLength(&beta) - 1u)], affine);
  let mean_v = p.y;
  let pivot = p.w;
  // NaN M2 (data beyond RANGE, ±Inf or NaN) makes the channel's statistics NaN, mean included.
  var var_b = select(p.z, max(p.z, 0.0), is_finite(p.z)) / params.M;
  var mean = pivot + mean_v;
  var finite = 1.0;
  if (!is_finite(var_b) || !is_finite(mean)) {
    var_b = nan();
    mean = nan();
    finite = 0.0;
  }
  let sigma_b = sqrt(var_b + params.eps);
  let invstd = 1.0 / sigma_b;
  var r = 1.0;
  var d = 0.0;
  if (renorm) {
    let sigma = select(running_spread[c], sqrt(running_spread[c] + params.eps), spread_is_var);
    r = clamp_nan(sigma_b / sigma, step.rmin, step.rmax);
    d = clamp_nan((mean - running_mean[c]) / sigma, -step.dmax, step.dmax);
  }
  let v = g * params.C + c;
  stats[2u * v] = vec4<f32>(pivot, mean_v, gm * invstd * r, gm * d + bt);
  stats[2u * v + 1u] = vec4<f32>(invstd, r, d, 0.0);
  var stat = var_b;
  if (renorm && !spread_is_var) {
    stat = sigma_b;
  } else if ((params.flags & UNBIASED) != 0u) {
    stat = var_b * (params.M / (params.M - 1.0));
  }
  return vec3<f32>(mean, stat, finite);
}

/// The running update of channel c from the sums of its ghosts' means and statistics, in place or
/// out of place; a channel whose statistics are not finite keeps its running values.
fn update_running(c: u32, sum_mean: f32, sum_stat: f32, G: u32, finite: bool) {
  let update = (params.flags & UPDATE) != 0u && finite;
  var mu = running_mean[c];
  var spread = running_spread[c];
  if (update) {
    mu = (1.0 - step.factor) * mu + step.factor * (sum_mean / f32(G));
    spread = (1.0 - step.factor) * spread + step.factor * (sum_stat / f32(G));
  }
  if ((params.flags & OUT_OF_PLACE) != 0u) {
    running_mean_out[c] = mu;
    running_spread_out[c] = spread;
  } else if (update) {
    running_mean[c] = mu;
    running_spread[c] = spread;
  }
}
