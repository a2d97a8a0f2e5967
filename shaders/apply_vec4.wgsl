// apply_vec4.wgsl — the normalisation pass, four elements per thread, for tensors whose groups of
// four share a channel (inner % 4 == 0, e.g. NCHW with H·W % 4 == 0) or are four consecutive
// channels (channels-last with C % 4 == 0).
//
// Computes: y = ((x - pivot_c) - mean_v_c)·scale_c + shift_c, as apply_scalar.wgsl does, on vec4s.
// Epilogue (EPILOGUE, prelude.wgsl): y = relu(bn) for 1, relu(bn + z) for 2.
// Bindings (group 0):
//   0 params uniform  Params
//   1 stats  storage, read        2 vec4 per channel (see prelude.wgsl)
//   2 x      storage, read        [outer, C, inner] xf read as vec4
//   3 y      storage, read_write  same shape
//   4 z      storage, read        same shape: the residual of the add_relu epilogue (EPILOGUE 2)
// Dispatch: one thread per vec4, index thread_index(); threads past count4 do nothing.
// Method: 16-byte loads and stores; the coefficients of the vec4's channels (one, or four)
//   gathered once per thread.

struct Params {
  C: u32,
  inner: u32,
  count4: u32,
  eps: f32,
  flags: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
//! include apply_io.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg, WG);
  if (i >= params.count4) { return; }
  let c = ((4u * i) / params.inner) % params.C;
  // One channel for the four elements (inner % 4 == 0), or four consecutive channels (inner 1).
  let step = select(0u, 1u, params.inner == 1u);
  let k0 = coeff(c);
  var k1 = k0;
  var k2 = k0;
  var k3 = k0;
  if (step != 0u) {
    k1 = coeff(c + 1u);
    k2 = coeff(c + 2u);
    k3 = coeff(c + 3u);
  }
  // The first vec4 of each channel in the first sample saves its inference coefficients.
  if (INFER != 0u && 4u * i < params.C * params.inner && (4u * i) % params.inner == 0u) {
    for (var j = 0u; j <= 3u * step; j++) { save_infer(c + j); }
  }
  let pivot = vec4<f32>(k0.x, k1.x, k2.x, k3.x);
  let mean_v = vec4<f32>(k0.y, k1.y, k2.y, k3.y);
  let scale = vec4<f32>(k0.z, k1.z, k2.z, k3.z);
  let shift = vec4<f32>(k0.w, k1.w, k2.w, k3.w);
  y[i] = epilogue(i, ((vec4<f32>(x[i]) - pivot) - mean_v) * scale + shift);
}
