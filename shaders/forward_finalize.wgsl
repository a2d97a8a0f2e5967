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

//! include finalize.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.C) { return; }
  let G = params.ghosts;
  let spg = params.slices / G;
  var sum_mean = 0.0;
  var sum_stat = 0.0;
  var finite = true;
  for (var g = 0u; g < G; g++) {
    var p = partials[g * spg * params.C + c];
    for (var s = 1u; s < spg; s++) {
      p = chan_merge(p, partials[(g * spg + s) * params.C + c]);
    }
    let f = finish_ghost(c, g, p);
    sum_mean += f.x;
    sum_stat += f.y;
    finite = finite && f.z != 0.0;
  }
  update_running(c, sum_mean, sum_stat, G, finite);
}
