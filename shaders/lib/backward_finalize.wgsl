// backward_finalize.wgsl (lib) — what the backward finalize kernels (backward_finalize.wgsl, adding
// slices one after another, and backward_finalize_tree.wgsl, adding them as a tree in workgroup
// memory) share: flags, uniforms, bindings, and the per-channel work once a ghost's sums are added.

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

/// Ghost g of channel c from its sums (Σdy, Σdy·(x - mean)): writes dx's coefficients and returns
/// its contributions to dgamma and dbeta. The caller has read every partial this overwrites.
fn finish_ghost_grad(c: u32, g: u32, sums: vec2<f32>) -> vec2<f32> {
  let G = params.ghosts;
  let affine = (params.flags & AFFINE) != 0u;
  let gm = select(1.0, gamma[min(c, arrayLength(&gamma) - 1u)], affine);
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
  // With one ghost coef_base is 0: the coefficients overwrite this channel's own partials (slices
  // 0 and 1); with ghosts they go past every partial (coef_base = slices·C).
  partials[params.coef_base + v] = vec2<f32>(a, b);
  partials[params.coef_base + G * params.C + v] = vec2<f32>(dd, 0.0);
  return vec2<f32>(invstd * r * sums.y + d * sums.x, sums.x);
}

/// dgamma and dbeta of channel c (with flag AFFINE).
fn write_param_grads(c: u32, g: vec2<f32>) {
  if ((params.flags & AFFINE) != 0u) {
    dgamma[c] = g.x;
    dbeta[c] = g.y;
  }
}
