// backward_finalize.wgsl — per-channel gradient coefficients and dgamma/dbeta.
//
// Computes, per channel c and ghost batch g (one without virtualBatchSize), from Σdy and
//   Σdy·(x - mean) over the ghost's M values (the sums of its spg = slices / ghosts slices) and
//   its saved (invstd, r, d):
//   A = gamma·invstd·r;
//   with batch statistics (flag BATCH_STATS): B = -A·invstd²·Σdy(x-mean)/M, D = -A·Σdy/M,
//   the gradient through mean and variance (r and d are constants, as Batch Renorm requires);
//   with running statistics: B = D = 0;
//   dgamma = Σ_g invstd·r·Σdy(x-mean) + d·Σdy, dbeta = Σ_g Σdy (written with flag AFFINE).
//   dx_*.wgsl then computes dx = A·dy + B·(x - mean) + D with its ghost's coefficients.
// Bindings (group 0):
//   0 params   uniform  Params
//   1 partials storage, read_write  in: vec2 (Σdy, Σdy·(x - mean)) per (slice, channel), index s·C + c;
//                                    out: (A, B) at index coef_base + g·C + c and (D, 0) at
//                                    coef_base + (G + g)·C + c. With one ghost coef_base = 0 and
//                                    each thread reads all its channel's entries before writing
//                                    over them (race-free); with ghosts coef_base = slices·C, past
//                                    every partial (the workspace holds 2·slices·C vec2, slices ≥ 2G).
//   2 stats    storage, read        2 vec4 per channel and ghost (prelude.wgsl); [2v+1] = (invstd, r, d, 0)
//   3 gamma    storage, read        [C] (read only with flag AFFINE)
//   4 dgamma   storage, read_write  [C] (written only with flag AFFINE)
//   5 dbeta    storage, read_write  [C] (written only with flag AFFINE)
// Dispatch: ceil(C / WG) workgroups along x, one thread per channel.
// Method: sums the slices in order, ghosts in order (deterministic, no atomics). Writing the coefficients over the
//   partials keeps the workspace one buffer, which the next dispatch may then read.

override WG: u32 = 64;

//! include backward_finalize.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.C) { return; }
  let G = params.ghosts;
  let spg = params.slices / G;
  var grads = vec2<f32>(0.0);
  for (var g = 0u; g < G; g++) {
    var sums = partials[g * spg * params.C + c];
    for (var s = 1u; s < spg; s++) {
      sums += partials[(g * spg + s) * params.C + c];
    }
    grads += finish_ghost_grad(c, g, sums);
  }
  write_param_grads(c, grads);
}
