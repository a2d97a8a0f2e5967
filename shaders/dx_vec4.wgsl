// dx_vec4.wgsl — the input gradient, four elements per thread, for the shapes of apply_vec4.wgsl
// (groups of four share a channel, are four consecutive channels, or span two; lib/lanes.wgsl).
//
// Computes: dx = A_c·dy + B_c·((x - pivot_c) - mean_v_c) + D_c on vec4s.
//   Under an epilogue, dy is first masked by the forward output (dy where y > 0); with add_relu
//   (EPILOGUE 2) the masked dy is also written to dz.
// Bindings (group 0):
//   0 params uniform  Params
//   1 stats  storage, read        2 vec4 per channel (see prelude.wgsl)
//   2 coef   storage, read        (A, B) at index c, (D, 0) at index C + c (backward_finalize.wgsl)
//   3 x      storage, read        [outer, C, inner] xf read as vec4
//   4 dy     storage, read        same shape
//   5 dx     storage, read_write  same shape
//   6 y      storage, read        same shape: the forward output, whose sign masks dy (EPILOGUE ≠ 0)
//   7 dz     storage, read_write  same shape: the residual's gradient, dy masked (EPILOGUE 2)
// Dispatch: one thread per vec4, index thread_index(); threads past count4 do nothing.
// Method: the centred form of dx_scalar.wgsl; 16-byte loads and stores.

struct Params {
  C: u32,
  inner: u32,
  count4: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
//! include dx_io.wgsl
//! include lanes.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg, WG);
  if (i >= params.count4) { return; }
  let ca = lane_channels(i);
  let k0 = stats[2u * ca.x];
  let k1 = stats[2u * ca.y];
  let k2 = stats[2u * ca.z];
  let k3 = stats[2u * ca.w];
  let a0 = coef[ca.x];
  let a1 = coef[ca.y];
  let a2 = coef[ca.z];
  let a3 = coef[ca.w];
  let centre = vec4<f32>(k0.x, k1.x, k2.x, k3.x);
  let mean_v = vec4<f32>(k0.y, k1.y, k2.y, k3.y);
  let a = vec4<f32>(a0.x, a1.x, a2.x, a3.x);
  let b = vec4<f32>(a0.y, a1.y, a2.y, a3.y);
  let d = vec4<f32>(coef[params.C + ca.x].x, coef[params.C + ca.y].x, coef[params.C + ca.z].x, coef[params.C + ca.w].x);
  dx[i] = vec4<xf>(a * upstream_dz(i) + b * ((vec4<f32>(x[i]) - centre) - mean_v) + d);
}
