// dx_rows.wgsl — the input gradient across the channels of each row: channels-last tensors with
// C % 4 == 0. Each thread keeps its four channels' coefficients in registers for a slice of rows.
//
// Computes: dx = A_c·dy + B_c·((x - pivot_c) - mean_v_c) + D_c, as dx_scalar.wgsl does.
//   Under an epilogue, dy is first masked by the forward output (dy where y > 0); with add_relu
//   (EPILOGUE 2) the masked dy is also written to dz.
// Bindings (group 0):
//   0 params uniform  Params
//   1 stats  storage, read        2 vec4 per channel (see prelude.wgsl)
//   2 coef   storage, read        (A, B) at index c, (D, 0) at index C + c (backward_finalize.wgsl)
//   3 x      storage, read        [M, C] xf read as vec4 (C4 = C/4 per row)
//   4 dy     storage, read        same shape
//   5 dx     storage, read_write  same shape
//   6 y      storage, read        same shape: the forward output, whose sign masks dy (EPILOGUE ≠ 0)
//   7 dz     storage, read_write  same shape: the residual's gradient, dy masked (EPILOGUE 2)
// Dispatch: one thread per (slice, c4), t = s·C4 + c4 = thread_index(), rows [s·chunk,
//   min((s+1)·chunk, M)) (the geometry of stats_rows.wgsl).
// Method: the coefficient gathers happen once per thread (coeffs4), not per vec4; two rows of x and
//   dy (four loads) in flight per iteration.

//! include rows_params.wgsl
//! include dx_io.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (t >= params.slices * params.C4) { return; }
  let C4 = params.C4;
  let C = 4u * C4;
  let c4 = t % C4;
  let s = t / C4;
  let c = 4u * c4;
  let k = coeffs4(&stats, c4);
  let a = vec4<f32>(coef[c].x, coef[c + 1u].x, coef[c + 2u].x, coef[c + 3u].x);
  let b = vec4<f32>(coef[c].y, coef[c + 1u].y, coef[c + 2u].y, coef[c + 3u].y);
  let d = vec4<f32>(coef[C + c].x, coef[C + c + 1u].x, coef[C + c + 2u].x, coef[C + c + 3u].x);
  let start = s * params.chunk;
  let end = min(start + params.chunk, params.M);
  var row = start;
  for (; row + 2u <= end; row += 2u) {
    let i = row * C4 + c4;
    let g0 = upstream_dz(i);
    let g1 = upstream_dz(i + C4);
    let x0 = vec4<f32>(x[i]);
    let x1 = vec4<f32>(x[i + C4]);
    dx[i] = vec4<xf>(a * g0 + b * ((x0 - k[0]) - k[1]) + d);
    dx[i + C4] = vec4<xf>(a * g1 + b * ((x1 - k[0]) - k[1]) + d);
  }
  if (row < end) {
    let i = row * C4 + c4;
    dx[i] = vec4<xf>(a * upstream_dz(i) + b * ((vec4<f32>(x[i]) - k[0]) - k[1]) + d);
  }
}
