// forward_finalize.wgsl — per-channel batch statistics, second stage, for training mode.
//
// Computes, per channel c and ghost batch g (one ghost without virtualBatchSize), from the
//   ghost's spg = slices / ghosts Welford partials of v = x - pivot, over its M values:
//   mean = pivot + mean_v, var = M2 / M (biased, used to normalise), invstd = 1/sqrt(var + eps);
//   Batch Renorm (flag RENORM, Ioffe 2017 Alg. 1): r = clamp(sigmaB/sigma, rmin, rmax),
//   d = clamp((mean - mu)/sigma, -dmax, dmax) with sigmaB = sqrt(var + eps), and sigma the running
//   sigma, or sqrt(running_var + eps) with flag RENORM_VAR (Keras's weights: a variance is stored);
//   else r = 1, d = 0;
//   apply coefficients y = ((x - pivot) - mean_v)·scale + shift, scale = gamma·invstd·r,
//   shift = gamma·d + beta;
//   running update (flag UPDATE): running = (1 - factor)·running + factor·stat, where stat is the
//   mean and the unbiased (flag UNBIASED) or biased variance, or sigmaB for renorm without
//   RENORM_VAR, averaged over
//   the ghosts (Keras's virtual_batch_size: once per call, from the ghosts' mean). A channel whose
//   mean or variance is not finite (NaN or ±Inf in the batch, or a value beyond RANGE: see
//   prelude.wgsl) has NaN statistics, so NaN outputs, r and d, and keeps its running values.
//   factor, rmax, dmax and rmin are this step's values (step_state.wgsl for a module, constants for
//   a functional plan). With flag OUT_OF_PLACE the running statistics are only read, and their
//   updated (or kept) values go to running_mean_out and running_spread_out: frameworks whose
//   tensors are immutable (TF.js) swap in new ones.
// Bindings (group 0):
//   0 params         uniform  Params
//   1 partials       storage, read        vec4 (n, mean_v, M2, pivot), index s·C + c (ghost g's
//                                          slices are g·spg .. g·spg + spg - 1)
//   2 gamma          storage, read        [C] (read only with flag AFFINE)
//   3 beta           storage, read        [C] (read only with flag AFFINE)
//   4 running_mean   storage, read_write  [C] (used with UPDATE or RENORM)
//   5 running_spread storage, read_write  [C] running_var, or running sigma with RENORM
//   6 stats          storage, read_write  2 vec4 per channel and ghost (see prelude.wgsl), index
//                                          g·C + c, saved for backward
//   7 step           uniform              Step: (count, factor, rmax, dmax, rmin) (a uniform, so that
//                                          the kernel stays within 8 storage buffers)
//   8 running_mean_out   storage, read_write  [C] (written with OUT_OF_PLACE)
//   9 running_spread_out storage, read_write  [C] (written with OUT_OF_PLACE)
// Dispatch: ceil(C / WG) workgroups along x, one thread per channel.
// Method: chan_merge() of the partials in slice order, ghosts in order (deterministic, no
//   atomics); finiteness is
//   tested on the bit pattern (is_finite), which fast-math cannot fold away.

override WG: u32 = 64;

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

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.C) { return; }
  let G = params.ghosts;
  let spg = params.slices / G;
  let affine = (params.flags & AFFINE) != 0u;
  let renorm = (params.flags & RENORM) != 0u;
  let spread_is_var = (params.flags & RENORM_VAR) != 0u;
  let gm = select(1.0, gamma[min(c, arrayLength(&gamma) - 1u)], affine);
  let bt = select(0.0, beta[min(c, arrayLength(&beta) - 1u)], affine);
  var sum_mean = 0.0;
  var sum_stat = 0.0;
  var finite = true;
  for (var g = 0u; g < G; g++) {
    var p = partials[g * spg * params.C + c];
    for (var s = 1u; s < spg; s++) {
      p = chan_merge(p, partials[(g * spg + s) * params.C + c]);
    }
    let mean_v = p.y;
    let pivot = p.w;
    // NaN M2 (data beyond RANGE, ±Inf or NaN) makes the channel's statistics NaN, mean included.
    var var_b = select(p.z, max(p.z, 0.0), is_finite(p.z)) / params.M;
    var mean = pivot + mean_v;
    if (!is_finite(var_b) || !is_finite(mean)) {
      var_b = nan();
      mean = nan();
      finite = false;
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
    sum_mean += mean;
    sum_stat += stat;
  }

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
