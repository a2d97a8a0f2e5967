// dx_scalar.wgsl — the input gradient, one element per thread: any layout.
//
// Computes: every element of dx from dy, x and its channel's coefficients (A, B, D) written by
//   backward_finalize.wgsl, with x - mean = (x - pivot) - mean_v from the saved statistics; with
//   ghost batches (blocks of `block` elements), each block's own.
//   Under an epilogue, dy is first masked by the forward output (dy where y > 0); with add_relu
//   (EPILOGUE 2) the masked dy is also written to dz.
// Bindings (group 0):
//   0 params uniform  Params
//   1 stats  storage, read        2 vec4 per channel (see prelude.wgsl)
//   2 coef   storage, read        (A, B) at coef_base + v, (D, 0) at coef_base + CG + v (v = g·C + c),
//                                  as backward_finalize leaves them in the workspace
//   3 x      storage, read        [outer, C, inner] xf, the forward input
//   4 dy     storage, read        same shape
//   5 dx     storage, read_write  same shape (a different buffer range)
//   6 y      storage, read        same shape: the forward output, whose sign masks dy (EPILOGUE ≠ 0)
//   7 dz     storage, read_write  same shape: the residual's gradient, dy masked (EPILOGUE 2)
// Dispatch: one thread per element, index thread_index(); threads past `count` do nothing.
// Method: centred form, so large offsets cancel exactly in x - pivot rather than in B·x + D.

//! include element.wgsl

struct Params {
  C: u32,
  inner: u32,
  count: u32,
  block: u32,
  coef_base: u32,
  CG: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> coef: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> x: array<xf>;
@group(0) @binding(4) var<storage, read> dy: array<xf>;
@group(0) @binding(5) var<storage, read_write> dx: array<xf>;
@group(0) @binding(6) var<storage, read> y: array<xf>;
@group(0) @binding(7) var<storage, read_write> dz: array<xf>;

/// The upstream gradient of bn's output: dy, or dy through the relu epilogue (mask from y).
fn upstream(i: u32) -> f32 {
  let g = f32(dy[i]);
  if (EPILOGUE == 0u) { return g; }
  return relu_grad4(vec4<f32>(g), vec4<f32>(f32(y[i]))).x;
}

/// The upstream gradient at i; the add_relu epilogue also writes it out as the residual's gradient.
fn upstream_dz(i: u32) -> f32 {
  let g = upstream(i);
  if (EPILOGUE == 2u) { dz[i] = xf(g); }
  return g;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = thread_index(gid, nwg, WG);
  if (idx >= params.count) { return; }
  // Ghost batch idx / block's coefficients (block = count without ghosts), as backward_finalize
  // left them: (A, B) at coef_base + v, (D, 0) at coef_base + CG + v, CG = ghosts·C.
  var v = (idx / params.inner) % params.C;
  // Uniform branch: only ghost plans pay for the division.
  if (params.block < params.count) { v += params.C * (idx / params.block); }
  let k = stats[2u * v];
  let ab = coef[params.coef_base + v];
  dx[idx] = xf(ab.x * upstream_dz(idx) + ab.y * ((f32(x[idx]) - k.x) - k.y) + coef[params.coef_base + params.CG + v].x);
}
