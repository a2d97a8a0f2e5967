// apply_vec4.wgsl — the normalisation pass, four elements per thread, for tensors of a multiple of
// four elements whose groups of four share a channel (inner % 4 == 0, e.g. NCHW with H·W % 4 == 0),
// are four consecutive channels (channels-last with C % 4 == 0), or span two channels (any other
// inner ≥ 2, e.g. NCHW 7×7; lib/lanes.wgsl).
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
// Method: 16-byte loads and stores; the coefficients of the vec4's channels (one, two or four)
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
//! include lanes.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = thread_index(gid, nwg, WG);
  if (i >= params.count4) { return; }
  let ca = lane_channels(i);
  // One coefficient gather (or inference) per distinct channel of the vec4.
  let k0 = coeff(ca.x);
  var k1 = k0;
  var k2 = k0;
  var k3 = k0;
  if (params.inner == 1u) {
    k1 = coeff(ca.y);
    k2 = coeff(ca.z);
    k3 = coeff(ca.w);
  } else if (ca.w != ca.x) {
    k3 = coeff(ca.w);
    k1 = select(k0, k3, ca.y != ca.x);
    k2 = select(k0, k3, ca.z != ca.x);
  }
  // Each channel's first element in the first sample saves its inference coefficients.
  if (INFER != 0u && 4u * i < params.C * params.inner) {
    for (var j = 0u; j < 4u; j++) {
      let e = 4u * i + j;
      if (e < params.C * params.inner && e % params.inner == 0u) { save_infer(ca[j]); }
    }
  }
  let pivot = vec4<f32>(k0.x, k1.x, k2.x, k3.x);
  let mean_v = vec4<f32>(k0.y, k1.y, k2.y, k3.y);
  let scale = vec4<f32>(k0.z, k1.z, k2.z, k3.z);
  let shift = vec4<f32>(k0.w, k1.w, k2.w, k3.w);
  y[i] = epilogue(i, ((vec4<f32>(x[i]) - pivot) - mean_v) * scale + shift);
}
