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

const BATCH_STATS: u32 = 1u;
const AFFINE: u32 = 2u;

struct Params {
  C: u32,
  slices: u32,
  M: f32,
  flags: u32,
  ghosts: u32,
  coef_base: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> partials: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbeta: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= params.C) { return; }
  let G = params.ghosts;
  let spg = params.slices / G;
  let affine = (params.flags & AFFINE) != 0u;
  let gm = select(1.0, gamma[min(c, arrayLength(&gamma) - 1u)], affine);
  var dg = 0.0;
  var db = 0.0;
  for (var g = 0u; g < G; g++) {
    var sums = partials[g * spg * params.C + c];
    for (var s = 1u; s < spg; s++) {
      sums += partials[(g * spg + s) * params.C + c];
    }
    let v = g * params.C + c;
    let saved = stats[2u * v + 1u];
    let invstd = saved.x;
    let r = saved.y;
    let d = saved.z;
    let a = gm * invstd * r;
    var b = 0.0;
    var dd = 0.0;
    if ((params.flags & BATCH_STATS) != 0u) {
      b = -a * invstd * invstd * sums.y / params.M;
      dd = -a * sums.x / params.M;
    }
    // With one ghost coef_base is 0: the coefficients overwrite this channel's own partials, all
    // read above; with ghosts they go past every partial (coef_base = slices·C).
    partials[params.coef_base + v] = vec2<f32>(a, b);
    partials[params.coef_base + G * params.C + v] = vec2<f32>(dd, 0.0);
    dg += invstd * r * sums.y + d * sums.x;
    db += sums.x;
  }
  if (affine) {
    dgamma[c] = dg;
    dbeta[c] = db;
  }
}
