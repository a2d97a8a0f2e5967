// apply_rows.wgsl — the normalisation pass across the channels of each row: channels-last tensors
// with C % 4 == 0. Each thread keeps the coefficients of its four channels in registers for a
// slice of rows, instead of gathering them per element.
//
// Computes: y = ((x - pivot_c) - mean_v_c)·scale_c + shift_c, as apply_scalar.wgsl does.
// Epilogue (EPILOGUE, prelude.wgsl): y = relu(bn) for 1, relu(bn + z) for 2.
// Bindings (group 0):
//   0 params uniform  Params
//   1 stats  storage, read        2 vec4 per channel (see prelude.wgsl)
//   2 x      storage, read        [M, C] xf read as vec4 (C4 = C/4 per row)
//   3 y      storage, read_write  same shape
//   4 z      storage, read        same shape: the residual of the add_relu epilogue (EPILOGUE 2)
// Dispatch: one thread per (slice, c4), t = s·C4 + c4 = thread_index(), rows [s·chunk,
//   min((s+1)·chunk, M)) (the geometry of stats_rows.wgsl). Neighbouring threads touch neighbouring
//   16 bytes of a row.
// Method: four 16-byte coefficient gathers per thread (coeffs4), not per vec4 (in apply_vec4.wgsl
//   they cost more cache traffic than x itself when C4 ≥ 8); four rows in flight per iteration.

struct Params {
  C4: u32,
  M: u32,
  chunk: u32,
  slices: u32,
  eps: f32,
  flags: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
//! include apply_io.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = thread_index(gid, nwg, WG);
  if (t >= params.slices * params.C4) { return; }
  let C4 = params.C4;
  let c4 = t % C4;
  let s = t / C4;
  let c = 4u * c4;
  // Rows: pivot, mean_v, scale, shift of channels c .. c+3.
  let k = transpose(mat4x4<f32>(coeff(c), coeff(c + 1u), coeff(c + 2u), coeff(c + 3u)));
  if (INFER != 0u && s == 0u) {
    for (var j = 0u; j < 4u; j++) { save_infer(c + j); }
  }
  let start = s * params.chunk;
  let end = min(start + params.chunk, params.M);
  var row = start;
  for (; row + 4u <= end; row += 4u) {
    let i = row * C4 + c4;
    let a = vec4<f32>(x[i]);
    let b = vec4<f32>(x[i + C4]);
    let e = vec4<f32>(x[i + 2u * C4]);
    let d = vec4<f32>(x[i + 3u * C4]);
    y[i] = epilogue(i, ((a - k[0]) - k[1]) * k[2] + k[3]);
    y[i + C4] = epilogue(i + C4, ((b - k[0]) - k[1]) * k[2] + k[3]);
    y[i + 2u * C4] = epilogue(i + 2u * C4, ((e - k[0]) - k[1]) * k[2] + k[3]);
    y[i + 3u * C4] = epilogue(i + 3u * C4, ((d - k[0]) - k[1]) * k[2] + k[3]);
  }
  for (; row < end; row++) {
    let i = row * C4 + c4;
    y[i] = epilogue(i, ((vec4<f32>(x[i]) - k[0]) - k[1]) * k[2] + k[3]);
  }
}
